"""The ceiling of the gRPC stack: a bare grpc.aio servicer of LogTreatmentInteraction.

It answers every call with an empty response and does nothing else, on a
``grpc.aio`` server with the reference server's settings and event loop.

Run: ``python -m bench.peers.bare_grpc --port 0``.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Sequence
from typing import Final

import grpc

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_interaction_service_pb2_grpc as interactions_grpc
from auxia_decision.server import run_event_loop
from bench.peers._serving import announce, parse_address, until_signalled

_GRACE_SECONDS: Final = 5.0


class BareServicer(interactions_grpc.TreatmentInteractionServiceServicer):
    """Answers every call with an empty response."""

    async def LogTreatmentInteraction(  # noqa: N802
        self,
        request: interactions.LogTreatmentInteractionRequest,
        context: grpc.aio.ServicerContext[
            interactions.LogTreatmentInteractionRequest,
            interactions.LogTreatmentInteractionResponse,
        ],
    ) -> interactions.LogTreatmentInteractionResponse:
        """Return an empty response."""
        return interactions.LogTreatmentInteractionResponse()


async def _serve(host: str, port: int, ready_file: pathlib.Path) -> None:
    server = grpc.aio.server()
    interactions_grpc.add_TreatmentInteractionServiceServicer_to_server(BareServicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    announce(ready_file, grpc_target=f"{host}:{bound}")
    await until_signalled()
    await server.stop(_GRACE_SECONDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the bare servicer until SIGTERM."""
    args = parse_address(__doc__ or "", argv)
    run_event_loop(_serve(args.host, args.port, args.ready_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
