"""Sync and async clients of the Auxia REST API, driven by the services' HTTP rules."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self, TypeVar, cast

import httpx
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from auxia.decision.model import (
    treatment_decision_service_pb2 as _decisions,
)
from auxia.decision.model import (
    treatment_interaction_service_pb2 as _interactions,
)
from auxia.decision.model import (
    treatment_management_service_pb2 as _management,
)
from auxia_decision._codec import PROTO3_JSON, RestCodec
from auxia_decision._drift import find_drift_in_text
from auxia_decision._drift_reports import DriftCallback, DriftReports
from auxia_decision._errors import ApiError, Code
from auxia_decision._retry import (
    DEFAULT_RETRY,
    RetryPolicy,
    protocol_mismatch,
    retry_after_seconds,
)
from auxia_decision._routes import DEFAULT_BASE_URL, Route, route_for
from auxia_decision._sendable import check_base_url, check_key
from auxia_decision._version import __version__

M = TypeVar("M", bound=Message)

API_KEY_ENV: Final = "AUXIA_API_KEY"
BASE_URL_ENV: Final = "AUXIA_BASE_URL"
DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
_USER_AGENT: Final = f"auxia-decision-api-python/{__version__}"


@dataclass
class _Call:
    """The transport-independent part of one API call: request, verdicts, retries."""

    route: Route
    request: Message
    codec: RestCodec
    retry: RetryPolicy
    drift: DriftReports
    attempt: int = field(default=1)

    def content(self) -> bytes:
        """Return the request as JSON; raise ApiError (nothing sent) if it has no JSON form."""
        try:
            return self.codec.encode(self.request)
        except ApiError as error:
            message = f"{self.route.name} was not sent: {error.message}"
            raise ApiError.without_answer(error.code, message, details=error.details) from None

    def result(self, response: httpx.Response) -> Message:
        if response.is_success:
            response_type = self.route.response_type
            try:
                message, drifts = self.codec.decode_response_drift(response.content, response_type)
            except ApiError as error:
                # Unreadable: counted and passed on as drift too (a JSON type the
                # schema does not expect), but no warning: the error says it.
                descriptor = cast(Descriptor, response_type.DESCRIPTOR)
                drifts = find_drift_in_text(response.content, descriptor)
                self.drift.report(self.route.name, drifts, warn=False)
                raise self.malformed(
                    response,
                    f"not a valid {response_type.DESCRIPTOR.name}: {error.message}",
                    error.details,
                ) from None
            if drifts:
                self.drift.report(self.route.name, drifts)
                if self.drift.strict:
                    raise self.drift.error(self.route.name, drifts, response.status_code)
            return message
        raise ApiError.from_http_response(
            response.status_code, response.headers.get("content-type", ""), response.content
        )

    def malformed(
        self, response: httpx.Response, why: str, details: tuple[Message, ...] = ()
    ) -> ApiError:
        """Return the error of an answer that cannot be read (UNKNOWN, with its HTTP status)."""
        message = f"the server's answer to {self.route.name} is malformed: {why}"
        return ApiError.answered(Code.UNKNOWN, message, response.status_code, details=details)

    def delay_after_status(self, response: httpx.Response) -> float | None:
        """Return how long to wait before retrying, or None to give up."""
        if response.status_code not in self.retry.retry_http_statuses:
            return None
        if self.attempt >= self.retry.max_attempts:
            return None
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        if retry_after is not None:
            return retry_after if retry_after <= self.retry.max_retry_after else None
        return self.retry.backoff(self.attempt)

    def delay_after_error(self, error: httpx.TransportError) -> float | None:
        """Return how long to wait before retrying after a transport error, or None."""
        if self.attempt >= self.retry.max_attempts or protocol_mismatch(error):
            return None
        not_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if not_sent or self.route.name in self.retry.safe_to_repeat:
            return self.retry.backoff(self.attempt)
        return None

    def transport_failure(self, error: httpx.TransportError) -> ApiError:
        code = (
            Code.DEADLINE_EXCEEDED
            if isinstance(error, httpx.TimeoutException)
            else (Code.UNAVAILABLE)
        )
        tries = f"after {self.attempt} attempt{'s' if self.attempt != 1 else ''}"
        message = f"{self.route.name} failed {tries}: {type(error).__name__}: {error}"
        mismatch = protocol_mismatch(error)
        if mismatch is not None:
            message = f"{self.route.name} failed: {mismatch}: {type(error).__name__}: {error}"
        return ApiError.without_answer(code, message)


class _ClientBase:
    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        retry: RetryPolicy,
        codec: RestCodec | None,
        on_drift: DriftCallback | None,
        strict_responses: bool,
    ) -> None:
        given = api_key is not None
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not api_key:
            msg = f"no API key: pass api_key= or set the {API_KEY_ENV} environment variable"
            raise ValueError(msg)
        check_key(api_key, "api_key" if given else f"the API key ({API_KEY_ENV})")
        self._headers: Mapping[str, str] = {
            "x-api-key": api_key,
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": _USER_AGENT,
        }
        base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        check_base_url(base_url)
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.codec = codec or RestCodec(PROTO3_JSON)
        self._drift = DriftReports(on_drift, strict=strict_responses)

    @property
    def drift(self) -> Mapping[tuple[str, str], int]:
        """Return how many answers held schema drift, by method and place (read-only, live).

        A place is a JSON path with ``[*]`` for every array index and map key
        (``("GetTreatments", "userTreatments[*].newField")``); see
        ``SchemaDriftWarning``.
        """
        return self._drift.counts

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _start(self, method: str, request: Message) -> _Call:
        route = route_for(method)
        if not isinstance(request, route.request_type):
            expected = route.request_type.DESCRIPTOR.full_name
            msg = f"{route.name} takes a {expected}, got {type(request).__name__}"
            raise TypeError(msg)
        return _Call(route, request, self.codec, self.retry, self._drift)


class Client(_ClientBase):
    """A synchronous client of the Auxia REST API.

    Every method raises ``ApiError`` on failure, and only ``ApiError``,
    whatever the server answers: an answer that cannot be read (malformed
    JSON, a value of the wrong type, a body its Content-Encoding does not
    decode) is an ``ApiError`` (UNKNOWN) saying the server's answer was
    malformed, with its HTTP status; a request without a proto3 JSON form is
    one (INVALID_ARGUMENT) before anything is sent. Use it as a context
    manager, or call ``close()``. Needs the ``[client]`` extra (httpx).

    An answer holding what the schema does not know (a field, an enum value
    or a JSON type: the API is newer than the schema) is read as ever, the
    unknown dropped, and reported: a ``SchemaDriftWarning`` once per method
    and place, ``on_drift``, and the counts of ``drift``.

    Args:
        api_key: the API key, sent only in the ``x-api-key`` header; by
            default the ``AUXIA_API_KEY`` environment variable. A key a
            header cannot carry (a line break, a control or non-ASCII
            character) is a ValueError that does not show it.
        base_url: where the API is served; by default the ``AUXIA_BASE_URL``
            environment variable, else ``https://apis.auxia.io``. An http(s)
            URL without credentials, query or fragment (else a ValueError).
        timeout: seconds, or an ``httpx.Timeout`` (10 s, 5 s to connect).
        retry: when to send a call again (see ``RetryPolicy``).
        codec: the JSON codec of requests and responses (proto3 JSON).
        http_client: an ``httpx.Client`` to send with (its timeout then
            applies); the client does not close it.
        on_drift: called with the method's name and a ``Drift`` (its JSON
            path, kind and detail) for every field, enum value or JSON type
            an answer holds that the schema does not know; what it raises,
            the call raises.
        strict_responses: make such drift an ``ApiError`` (UNKNOWN, with a
            ``BadRequest`` naming each path) rather than a
            ``SchemaDriftWarning``: for consumers' own tests.

    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        codec: RestCodec | None = None,
        http_client: httpx.Client | None = None,
        on_drift: DriftCallback | None = None,
        strict_responses: bool = False,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            retry=retry,
            codec=codec,
            on_drift=on_drift,
            strict_responses=strict_responses,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def call(self, method: str, request: Message) -> Message:
        """Call an RPC by name (``InsertTreatment``) and return its response message."""
        call = self._start(method, request)
        content = call.content()
        url = self.base_url + call.route.path
        while True:
            try:
                with self._http.stream(
                    call.route.http_method, url, content=content, headers=self._headers
                ) as response:
                    try:
                        response.read()
                    except httpx.DecodingError as error:  # its Content-Encoding lies
                        raise call.malformed(response, str(error)) from None
            except httpx.TransportError as error:
                delay = call.delay_after_error(error)
                if delay is None:
                    raise call.transport_failure(error) from error
            else:
                delay = call.delay_after_status(response)
                if delay is None:
                    return call.result(response)
            time.sleep(delay)
            call.attempt += 1

    def _typed(self, method: str, request: Message, response_type: type[M]) -> M:
        response = self.call(method, request)
        assert isinstance(response, response_type)
        return response

    def insert_treatment(
        self, request: _management.InsertTreatmentRequest
    ) -> _management.InsertTreatmentResponse:
        """Create a treatment with one version."""
        return self._typed("InsertTreatment", request, _management.InsertTreatmentResponse)

    def update_treatment(
        self, request: _management.UpdateTreatmentRequest
    ) -> _management.UpdateTreatmentResponse:
        """Update a treatment found by treatment_id or external_treatment_id."""
        return self._typed("UpdateTreatment", request, _management.UpdateTreatmentResponse)

    def get_data_fields(
        self, request: _management.GetDataFieldsByParamsRequest
    ) -> _management.GetDataFieldsByParamsResponse:
        """Resolve data field parameters to data field identifiers."""
        return self._typed("GetDataFields", request, _management.GetDataFieldsByParamsResponse)

    def log_treatment_interaction(
        self, request: _interactions.LogTreatmentInteractionRequest
    ) -> _interactions.LogTreatmentInteractionResponse:
        """Log one interaction of a user with a treatment."""
        return self._typed(
            "LogTreatmentInteraction", request, _interactions.LogTreatmentInteractionResponse
        )

    def get_treatments(
        self, request: _decisions.GetTreatmentsRequest
    ) -> _decisions.GetTreatmentsResponse:
        """Get the treatments to show a user on each requested surface."""
        return self._typed("GetTreatments", request, _decisions.GetTreatmentsResponse)

    def get_treatment(
        self, request: _management.GetTreatmentRequest
    ) -> _management.GetTreatmentResponse:
        """Get one treatment by identifier."""
        return self._typed("GetTreatment", request, _management.GetTreatmentResponse)

    def get_all_treatments(
        self, request: _management.GetAllTreatmentsRequest
    ) -> _management.GetAllTreatmentsResponse:
        """Get one page of the project's treatments that match the filters."""
        return self._typed("GetAllTreatments", request, _management.GetAllTreatmentsResponse)

    def close(self) -> None:
        """Close the client's connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """An asyncio client of the Auxia REST API; the async twin of ``Client``.

    Every method raises ``ApiError`` on failure, and only ``ApiError``, as
    ``Client``'s do, and reports schema drift as they do.

    Args:
        api_key: the API key, sent only in the ``x-api-key`` header; by
            default the ``AUXIA_API_KEY`` environment variable. A key a
            header cannot carry (a line break, a control or non-ASCII
            character) is a ValueError that does not show it.
        base_url: where the API is served; by default the ``AUXIA_BASE_URL``
            environment variable, else ``https://apis.auxia.io``. An http(s)
            URL without credentials, query or fragment (else a ValueError).
        timeout: seconds, or an ``httpx.Timeout`` (10 s, 5 s to connect).
        retry: when to send a call again (see ``RetryPolicy``).
        codec: the JSON codec of requests and responses (proto3 JSON).
        http_client: an ``httpx.AsyncClient`` to send with (its timeout then
            applies); the client does not close it.
        on_drift: as ``Client``'s: called with the method's name and each
            ``Drift`` of each answer.
        strict_responses: as ``Client``'s: drift is an ``ApiError``.

    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        codec: RestCodec | None = None,
        http_client: httpx.AsyncClient | None = None,
        on_drift: DriftCallback | None = None,
        strict_responses: bool = False,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            retry=retry,
            codec=codec,
            on_drift=on_drift,
            strict_responses=strict_responses,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def call(self, method: str, request: Message) -> Message:
        """Call an RPC by name (``InsertTreatment``) and return its response message."""
        call = self._start(method, request)
        content = call.content()
        url = self.base_url + call.route.path
        while True:
            try:
                async with self._http.stream(
                    call.route.http_method, url, content=content, headers=self._headers
                ) as response:
                    try:
                        await response.aread()
                    except httpx.DecodingError as error:  # its Content-Encoding lies
                        raise call.malformed(response, str(error)) from None
            except httpx.TransportError as error:
                delay = call.delay_after_error(error)
                if delay is None:
                    raise call.transport_failure(error) from error
            else:
                delay = call.delay_after_status(response)
                if delay is None:
                    return call.result(response)
            await asyncio.sleep(delay)
            call.attempt += 1

    async def _typed(self, method: str, request: Message, response_type: type[M]) -> M:
        response = await self.call(method, request)
        assert isinstance(response, response_type)
        return response

    async def insert_treatment(
        self, request: _management.InsertTreatmentRequest
    ) -> _management.InsertTreatmentResponse:
        """Create a treatment with one version."""
        return await self._typed("InsertTreatment", request, _management.InsertTreatmentResponse)

    async def update_treatment(
        self, request: _management.UpdateTreatmentRequest
    ) -> _management.UpdateTreatmentResponse:
        """Update a treatment found by treatment_id or external_treatment_id."""
        return await self._typed("UpdateTreatment", request, _management.UpdateTreatmentResponse)

    async def get_data_fields(
        self, request: _management.GetDataFieldsByParamsRequest
    ) -> _management.GetDataFieldsByParamsResponse:
        """Resolve data field parameters to data field identifiers."""
        return await self._typed(
            "GetDataFields", request, _management.GetDataFieldsByParamsResponse
        )

    async def log_treatment_interaction(
        self, request: _interactions.LogTreatmentInteractionRequest
    ) -> _interactions.LogTreatmentInteractionResponse:
        """Log one interaction of a user with a treatment."""
        return await self._typed(
            "LogTreatmentInteraction", request, _interactions.LogTreatmentInteractionResponse
        )

    async def get_treatments(
        self, request: _decisions.GetTreatmentsRequest
    ) -> _decisions.GetTreatmentsResponse:
        """Get the treatments to show a user on each requested surface."""
        return await self._typed("GetTreatments", request, _decisions.GetTreatmentsResponse)

    async def get_treatment(
        self, request: _management.GetTreatmentRequest
    ) -> _management.GetTreatmentResponse:
        """Get one treatment by identifier."""
        return await self._typed("GetTreatment", request, _management.GetTreatmentResponse)

    async def get_all_treatments(
        self, request: _management.GetAllTreatmentsRequest
    ) -> _management.GetAllTreatmentsResponse:
        """Get one page of the project's treatments that match the filters."""
        return await self._typed("GetAllTreatments", request, _management.GetAllTreatmentsResponse)

    async def aclose(self) -> None:
        """Close the client's connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
