"""The server's verdict on a request body, and how a validator's must match it.

The server's is its validation, run in this process exactly as the gateway
runs it before an RPC (``RestCodec.decode_request``, then ``check_request``).
"""

from __future__ import annotations

import json
from typing import Any, cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from auxia_decision import ApiError, RestCodec, check_request
from tests._fixtures import REQUESTS
from tests._request_forms import GAP_WIDE_NUMBER, ValueBank, Variant, variants

Verdict = tuple[bool, str]
"""Whether a body is taken, and why not."""

_CODEC = RestCodec()


def server_verdict(body: Any, request_type: type[Message]) -> Verdict:
    """Return whether the server's validation takes a body, and why not."""
    try:
        check_request(_CODEC.decode_request(json.dumps(body).encode(), request_type))
    except ApiError as error:
        return False, str(error)
    return True, ""


def descriptor(message_type: type[Message]) -> Descriptor:
    """Return the descriptor of a message type."""
    return cast(Descriptor, message_type.DESCRIPTOR)


def request_variants(method: str) -> list[Variant]:
    """Return the variants of the request sample of a method (valid values from every sample)."""
    bank = ValueBank()
    for sample in REQUESTS.values():
        bank.learn(json.loads(sample.text()), descriptor(sample.message_type))
    sample = REQUESTS[method]
    return list(variants(json.loads(sample.text()), descriptor(sample.message_type), bank))


def disagreement(variant: Variant, ours: Verdict, theirs: Verdict, validator: str) -> str:
    """Return how a validator's verdict on a variant differs from the server's ("" if it does not).

    The verdicts must be one; but on a variant holding what JSON Schema cannot
    check (``variant.gap``), the server refuses and the validator accepts, and
    on a 64-bit JSON number of 2^53 or more the validator's verdict is its own.
    """
    (server, why), (document, their_why) = ours, theirs
    server_says = "accepts" if server else f"refuses ({why})"
    validator_says = "accepts" if document else f"refuses ({their_why})"
    if variant.gap == GAP_WIDE_NUMBER:
        return ""  # the validator's own: rounded as a double, or refused as format int64
    if variant.gap:
        if not server and document:
            return ""
        return (
            f"{variant.label} ({variant.gap}): the server should refuse and {validator} "
            f"accept, but the server {server_says}, {validator} {validator_says}"
        )
    if server == document:
        return ""
    return (
        f"{variant.label}: the server {server_says}, {validator} {validator_says}: "
        f"{json.dumps(variant.body)[:300]}"
    )
