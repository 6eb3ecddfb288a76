"""Property tests: for arbitrary messages of every API type, the codec round-trips."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia_decision import JsonProfile, RestCodec
from auxia_decision._routes import routes
from tests._strategies import messages

CODEC = RestCodec()
SNAKE = RestCodec(JsonProfile(use_proto_field_names=True))
TYPES: list[type[Message]] = sorted(
    {t for route in routes() for t in (route.request_type, route.response_type)},
    key=lambda t: t.DESCRIPTOR.full_name,
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.DESCRIPTOR.name)
def test_encode_then_decode_is_the_identity(message_type: type[Message]) -> None:
    @SETTINGS
    @given(message=messages(message_type), snake=st.booleans())
    def check(message: Message, snake: bool) -> None:
        codec = SNAKE if snake else CODEC
        encoded = codec.encode(message)
        assert CODEC.decode_request(encoded, message_type) == message
        assert CODEC.decode_response(encoded, message_type) == message

    check()


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.DESCRIPTOR.name)
def test_decoding_agrees_with_json_format(message_type: type[Message]) -> None:
    @SETTINGS
    @given(message=messages(message_type))
    def check(message: Message) -> None:
        text = json_format.MessageToJson(message)
        assert CODEC.decode_request(text, message_type) == json_format.Parse(text, message_type())

    check()


def test_every_api_type_is_covered() -> None:
    assert [t.DESCRIPTOR.name for t in TYPES] == [
        "GetAllTreatmentsRequest",
        "GetAllTreatmentsResponse",
        "GetDataFieldsByParamsRequest",
        "GetDataFieldsByParamsResponse",
        "GetTreatmentRequest",
        "GetTreatmentResponse",
        "GetTreatmentsRequest",
        "GetTreatmentsResponse",
        "InsertTreatmentRequest",
        "InsertTreatmentResponse",
        "LogTreatmentInteractionRequest",
        "LogTreatmentInteractionResponse",
        "UpdateTreatmentRequest",
        "UpdateTreatmentResponse",
    ]
