"""ApiError: one type for every failure, with the shared code-to-HTTP table."""

from __future__ import annotations

import json

import pytest
from google.rpc import error_details_pb2

from auxia_decision import ApiError, Code
from auxia_decision._errors import HTTP_STATUS_BY_CODE, FieldViolation, violation


def test_every_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS_BY_CODE) == set(Code)
    assert HTTP_STATUS_BY_CODE[Code.INVALID_ARGUMENT] == 400
    assert HTTP_STATUS_BY_CODE[Code.UNAUTHENTICATED] == 401
    assert HTTP_STATUS_BY_CODE[Code.PERMISSION_DENIED] == 403
    assert HTTP_STATUS_BY_CODE[Code.NOT_FOUND] == 404
    assert HTTP_STATUS_BY_CODE[Code.ALREADY_EXISTS] == 409
    assert HTTP_STATUS_BY_CODE[Code.RESOURCE_EXHAUSTED] == 429
    assert HTTP_STATUS_BY_CODE[Code.UNAVAILABLE] == 503


def test_status_json_round_trips_with_bad_request_details() -> None:
    error = ApiError.invalid_argument(
        [FieldViolation(field="content.contentByLanguage[0].languageCode", description="required")]
    )
    document = json.loads(error.to_json())
    assert document["code"] == 3
    assert document["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    decoded = ApiError.from_http_response(400, "application/json", error.to_json())
    assert decoded.code is Code.INVALID_ARGUMENT
    assert decoded.http_status == 400
    assert isinstance(decoded.details[0], error_details_pb2.BadRequest)
    assert [v.field for v in decoded.field_violations] == [
        "content.contentByLanguage[0].languageCode"
    ]
    # One violation is said once; an error that came over HTTP names its status.
    assert str(decoded) == (
        "INVALID_ARGUMENT (HTTP 400): content.contentByLanguage[0].languageCode: required"
    )
    assert str(error) == "INVALID_ARGUMENT: content.contentByLanguage[0].languageCode: required"


def test_an_error_without_an_http_answer_says_so() -> None:
    error = ApiError.without_answer(Code.UNAVAILABLE, "InsertTreatment failed: ConnectError")
    assert error.http_status is None
    assert str(error) == "UNAVAILABLE (no HTTP answer): InsertTreatment failed: ConnectError"


def test_violations_quoting_lone_surrogates_stay_encodable() -> None:
    error = ApiError.invalid_argument([violation('["\ud800"]', 'unknown value "\udfff"')])
    assert json.loads(error.to_json())["message"] == '["\\ud800"]: unknown value "\\udfff"'


def test_a_retry_delay_is_read_from_the_details() -> None:
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromSeconds(3)
    assert ApiError(Code.UNAVAILABLE, "busy", details=[retry]).retry_delay == 3.0
    assert ApiError(Code.UNAVAILABLE, "busy").retry_delay is None


def test_html_error_page_of_a_proxy_still_gives_a_useful_error() -> None:
    body = b"<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"
    error = ApiError.from_http_response(502, "text/html; charset=utf-8", body)
    assert error.code is Code.UNAVAILABLE
    assert error.http_status == 502
    assert error.message == (
        "HTTP 502 with a non-Status body (text/html): <html><head><title>502 Bad Gateway"
        "</title></head> <body>nginx</body></html>"
    )


@pytest.mark.parametrize(
    ("http_status", "code"),
    [
        (401, Code.UNAUTHENTICATED),
        (404, Code.NOT_FOUND),
        (418, Code.FAILED_PRECONDITION),
        (500, Code.UNKNOWN),
        (504, Code.DEADLINE_EXCEEDED),
    ],
)
def test_non_status_bodies_map_http_status_to_a_code(http_status: int, code: Code) -> None:
    assert ApiError.from_http_response(http_status, "", b"").code is code


def test_unknown_detail_types_are_kept_packed() -> None:
    body = json.dumps(
        {
            "code": 7,
            "message": "no",
            "details": [{"@type": "type.googleapis.com/acme.Unknown", "x": 1}],
        }
    ).encode()
    error = ApiError.from_http_response(403, "application/json", body)
    assert error.code is Code.PERMISSION_DENIED
    assert error.message == "no"
