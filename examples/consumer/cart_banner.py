"""The banner of a shop's cart page, chosen by Auxia: a service that calls the API."""

from __future__ import annotations

import time
from dataclasses import dataclass

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision import ApiError, Client

Interaction = interactions.LogTreatmentInteractionRequest


@dataclass(frozen=True)
class Banner:
    """A treatment shown on the cart page."""

    treatment_id: str
    tracking_id: str
    content: str


class CartBanners:
    """Asks Auxia for the cart page's banner and tells it what the user did with it.

    Args:
        client: a client of the Auxia API.
        project_id: the Auxia project.

    """

    def __init__(self, client: Client, project_id: str) -> None:
        self._client = client
        self._project_id = project_id

    def banner_for(self, user_id: str) -> Banner | None:
        """Return the banner to show a user, logged as VIEWED; None if Auxia has none or fails."""
        try:
            response = self._client.get_treatments(
                decisions.GetTreatmentsRequest(
                    project_id=self._project_id,
                    user_id=user_id,
                    surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
                )
            )
        except ApiError:
            return None  # the page works without a banner
        if not response.user_treatments:
            return None
        chosen = response.user_treatments[0]
        banner = Banner(chosen.treatment_id, chosen.treatment_tracking_id, chosen.treatment_content)
        self._log(user_id, banner, Interaction.VIEWED)
        return banner

    def dismiss(self, user_id: str, banner: Banner) -> None:
        """Tell Auxia the user closed the banner."""
        self._log(user_id, banner, Interaction.DISMISSED)

    def _log(
        self, user_id: str, banner: Banner, kind: Interaction.InteractionType.ValueType
    ) -> None:
        self._client.log_treatment_interaction(
            Interaction(
                project_id=self._project_id,
                user_id=user_id,
                treatment_id=banner.treatment_id,
                treatment_tracking_id=banner.tracking_id,
                interaction_type=kind,
                interaction_time_micros=time.time_ns() // 1000,
                surface="CART_SCREEN",
            )
        )
