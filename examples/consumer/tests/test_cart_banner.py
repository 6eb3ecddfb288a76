"""The cart banner against the local Auxia server: one fixture, no ports, no files."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from cart_banner import CartBanners

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_pb2
from auxia.decision.server import seed_pb2
from auxia_decision import Code
from auxia_decision.server import LocalServer

VIEWED = interactions.LogTreatmentInteractionRequest.VIEWED
DISMISSED = interactions.LogTreatmentInteractionRequest.DISMISSED


@pytest.fixture
def banners(auxia_server: LocalServer) -> Iterator[CartBanners]:
    with auxia_server.client() as client:
        yield CartBanners(client, auxia_server.project_id)


def test_the_banner_shown_is_logged_as_viewed(
    auxia_server: LocalServer, banners: CartBanners
) -> None:
    banner = banners.banner_for("shopper-1")

    assert banner is not None
    assert banner.treatment_id == "CART_REMINDER"
    (viewed,) = auxia_server.interactions(user_id="shopper-1")
    assert viewed.interaction_type == VIEWED
    assert viewed.treatment_tracking_id == banner.tracking_id
    (decision,) = auxia_server.decisions(user_id="shopper-1")
    assert decision.served_treatments[0].treatment_tracking_id == banner.tracking_id


def test_every_test_starts_from_the_seed(auxia_server: LocalServer) -> None:
    # The previous test's interactions and decisions are gone.
    assert auxia_server.interactions() == []
    assert auxia_server.decisions() == []


def test_a_dismissed_banner_stays_away_for_30_days(
    auxia_server: LocalServer, banners: CartBanners
) -> None:
    banner = banners.banner_for("shopper-2")
    assert banner is not None
    banners.dismiss("shopper-2", banner)

    assert banners.banner_for("shopper-2") is None
    assert [i.interaction_type for i in auxia_server.interactions(user_id="shopper-2")] == [
        VIEWED,
        DISMISSED,
    ]
    auxia_server.clock.advance(datetime.timedelta(days=31))
    assert banners.banner_for("shopper-2") is not None


def test_the_page_has_no_banner_while_auxia_is_down(
    auxia_server: LocalServer, banners: CartBanners
) -> None:
    # Every GetTreatments fails, retries included, until the fault is cleared.
    auxia_server.faults.fail_fraction("GetTreatments", 1.0, Code.UNAVAILABLE)

    assert banners.banner_for("shopper-3") is None
    auxia_server.faults.clear()
    assert banners.banner_for("shopper-3") is not None


def text_field(name: str) -> treatment_pb2.TreatmentContentFieldTypePb:
    return treatment_pb2.TreatmentContentFieldTypePb(
        field_name=name, value_length_limit=100, data_type=treatment_pb2.STRING
    )


def _closed_shop() -> seed_pb2.Seed:
    """A project whose cart page has no treatment yet."""
    return seed_pb2.Seed(
        projects=[
            seed_pb2.Project(
                project_id="SHOP",
                numeric_project_id=7,
                api_keys=["SHOP_KEY"],
                supported_language_codes=["en"],
                treatment_types=[
                    treatment_pb2.TreatmentTypePb(
                        name="BANNER",
                        delivery_type=treatment_pb2.IN_APP,
                        language_specific_content_field_types=[text_field("title")],
                        language_agnostic_content_field_types=[text_field("link")],
                        surfaces=[treatment_pb2.SurfacePb(name="CART_SCREEN")],
                    )
                ],
            )
        ]
    )


@pytest.mark.auxia_seed(_closed_shop())
def test_a_project_without_treatments_shows_no_banner(banners: CartBanners) -> None:
    assert banners.banner_for("shopper-4") is None
