"""Futures of the server's event loop, handed on from one to another."""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


def forward(outcome: asyncio.Future[T], answer: asyncio.Future[T]) -> None:
    """Resolve ``answer`` as ``outcome`` ends; cancel ``outcome`` if ``answer`` is cancelled."""

    def resolve(outcome: asyncio.Future[T]) -> None:
        if answer.done():
            return
        if outcome.cancelled():
            answer.cancel()
        elif (error := outcome.exception()) is not None:
            answer.set_exception(error)
        else:
            answer.set_result(outcome.result())

    def cancel(answer: asyncio.Future[T]) -> None:
        if answer.cancelled():
            outcome.cancel()

    outcome.add_done_callback(resolve)
    answer.add_done_callback(cancel)
