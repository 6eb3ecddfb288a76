"""The REST JSON codec: messages to proto3 JSON and back, with JSON-path errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from auxia_decision import _fastjson
from auxia_decision._drift import Drift, find_drift
from auxia_decision._errors import ApiError, FieldViolation, violation
from auxia_decision._fastjson.json_backend import JsonBackend
from auxia_decision._json import json_path, load_json, map_member_path
from auxia_decision._json_checker import JsonChecker

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class JsonProfile:
    """How messages are written as JSON and how strictly JSON is read.

    The default profile, ``PROTO3_JSON``, is the API's wire format: proto3 JSON
    with lowerCamelCase names, int64 values as strings, enums by name, RFC 3339
    timestamps and unset fields omitted. Reading accepts both lowerCamelCase and
    proto field names, and integers as JSON numbers or as strings holding a
    JSON number's text (``"10"``, ``"1.5e3"``; an integer, at most 2^53 in
    magnitude when written with a fraction or an exponent).
    """

    use_proto_field_names: bool = False
    """Write proto field names (``project_id``, as the docs' cURL samples do)."""


PROTO3_JSON = JsonProfile()


class RestCodec:
    """Encodes messages as proto3 JSON and decodes JSON into messages.

    Requests are decoded strictly: unknown fields, unknown enum names, wrong
    types, duplicate keys and malformed JSON are errors. Responses are decoded
    leniently: unknown fields and unknown enum values from a newer server are
    ignored. Decoding reads what ``json_format.Parse`` reads, into the same
    message, but for the few cases where it is deliberately stricter (a field
    given under both its names, a number beyond its type's range, ``NaN``
    literals, ...: docs/python.md lists them). Whatever the bytes, decoding
    returns a message or raises an ``ApiError`` (INVALID_ARGUMENT) whose
    ``google.rpc.BadRequest`` names each bad value by its JSON path
    (``dataFieldParams[1].eventDataFieldParams.dailyCountAggregation``), and,
    for malformed JSON, its line and column. Encoding writes exactly the
    bytes of ``json_format.MessageToJson(indent=None)``, or raises an
    ``ApiError`` naming the value json_format cannot write (a Timestamp
    after year 9999, an infinite ``Value``).

    By default each message type gets an encoder and decoders specialised from
    its descriptors (decoding parses with orjson when it is installed, else with
    the standard library; bench/results/codec.md has the timings): the encoder
    writes the very bytes the generic path writes, and the decoders read what
    the generic path reads into equal messages and hand anything they are not
    sure of (every bad document among others) to the generic path, which then
    decides and words the errors. ``fast=False`` keeps to the generic path
    (json_format behind the JSON-path checks), the oracle of the fast one.
    """

    def __init__(self, profile: JsonProfile = PROTO3_JSON, *, fast: bool = True) -> None:
        self._profile = profile
        self._fast = fast
        # The encoding of each type, and the decoding of each (type, strict), built once.
        self._encoders: dict[type[Message], Callable[[Message], bytes]] = {}
        self._decoders: dict[tuple[type[Message], bool], Callable[[bytes | str], Any]] = {}
        self._drift_decoders: dict[type[Message], Callable[[bytes | str], Any]] = {}

    def _json_backend(self) -> JsonBackend | None:
        """Return the JSON backend its fast decoders parse with; None: the one in use.

        The tests' codecs name each backend in turn (``tests/_codecs.py``).
        """
        return None

    @property
    def profile(self) -> JsonProfile:
        """Return how this codec writes and reads JSON."""
        return self._profile

    @property
    def fast(self) -> bool:
        """Return whether this codec uses the specialised encoders and decoders."""
        return self._fast

    def encode(self, message: Message) -> bytes:
        """Return the message as compact proto3 JSON (UTF-8).

        Raises ApiError (INVALID_ARGUMENT) naming the value that has no proto3
        JSON form, where json_format cannot write the message.
        """
        encode = self._encoders.get(type(message)) or self.encoder(type(message))
        return encode(message)

    def encoder(self, message_type: type[Message]) -> Callable[[Message], bytes]:
        """Return ``encode`` for messages of one type, with its encoder looked up once."""
        try:
            return self._encoders[message_type]
        except KeyError:
            found = self._encoders[message_type] = self._build_encoder(message_type)
            return found

    def _build_encoder(self, message_type: type[Message]) -> Callable[[Message], bytes]:
        use_proto_field_names = self._profile.use_proto_field_names

        def encode_generic(message: Message) -> bytes:
            try:
                text = json_format.MessageToJson(
                    message,
                    preserving_proto_field_name=use_proto_field_names,
                    indent=None,
                )
            except Exception as error:  # whatever json_format raises, it cannot
                raise _unwritable(message, error, use_proto_field_names) from None
            return text.encode()

        fast = (
            _fastjson.encoder(message_type, proto_field_names=use_proto_field_names)
            if self._fast
            else None
        )
        if fast is None:
            return encode_generic
        if not message_type.DESCRIPTOR.fields:
            return fast  # a type without fields always writes {}: nothing to be unsure of
        specialised: _fastjson.Encoder = fast

        def encode(message: Message) -> bytes:
            try:
                return specialised(message)
            except Exception:  # unsure, or json_format would fail:
                return encode_generic(message)  # it writes the JSON or raises its error

        return encode

    def fields_encoder(self, message_type: type[Message]) -> Callable[[Mapping[str, Any]], bytes]:
        """Return ``encode`` for messages of one type given as their constructor's arguments.

        ``encode_fields(fields)`` is ``encode(message_type(**fields))``, written
        from the fields without building the message where a specialised
        fields encoder exists (a field absent or None is unset, a message is a
        dict of its fields, an enum a number).
        """
        encode = self.encoder(message_type)
        fast = None
        if self._fast and not self._profile.use_proto_field_names:
            fast = _fastjson.fields_encoder(message_type)

        def encode_message(fields: Mapping[str, Any]) -> bytes:
            return encode(message_type(**fields))

        if fast is None:
            return encode_message
        specialised: _fastjson.FieldsEncoder = fast

        def encode_fields(fields: Mapping[str, Any]) -> bytes:
            try:
                return specialised(fields)
            except Exception:  # where the encoder would be unsure, or fail: as it does
                return encode_message(fields)

        return encode_fields

    def decode_request(self, data: bytes | str, message_type: type[M]) -> M:
        """Parse a request strictly; raise ApiError naming every bad field."""
        return self._decoder(message_type, strict=True)(data)

    def request_decoder(self, message_type: type[M]) -> Callable[[bytes | str], M]:
        """Return ``decode_request`` for one message type, with its decoder looked up once."""
        return self._decoder(message_type, strict=True)

    def request_fields_decoder(
        self, message_type: type[Message]
    ) -> Callable[[bytes | str], dict[str, Any] | None] | None:
        """Return a decoding of requests into their constructor's arguments, or None.

        The decoding returns the keyword arguments with which
        ``message_type(**fields)`` builds the message ``decode_request``
        returns, every value checked (a field absent or None is unset), so
        that a caller may read plain values rather than the message; or None
        when it is not sure (every bad document among others): then
        ``decode_request`` decides, and words the errors. None instead of a
        decoding for a type without a specialised one, or with ``fast=False``.
        """
        fast = (
            _fastjson.fields_decoder(message_type, backend=self._json_backend())
            if self._fast
            else None
        )
        if fast is None:
            return None
        specialised: _fastjson.FieldsDecoder = fast

        def decode_fields(data: bytes | str) -> dict[str, Any] | None:
            try:
                return specialised(data)
            except Exception:  # every document it is not sure of: decode_request decides
                return None

        return decode_fields

    def decode_response(self, data: bytes | str, message_type: type[M]) -> M:
        """Parse a response leniently (unknown fields and enum values are ignored)."""
        return self._decoder(message_type, strict=False)(data)

    def decode_response_drift(
        self, data: bytes | str, message_type: type[M]
    ) -> tuple[M, list[Drift]]:
        """Parse a response leniently, and list what in it the schema does not know.

        Returns the message ``decode_response`` returns and the drift
        (:func:`auxia_decision._drift.find_drift`): unknown fields and enum
        values, by JSON path; empty when the schema knows everything in the
        response. Raises what ``decode_response`` raises.
        """
        try:
            decode = self._drift_decoders[message_type]
        except KeyError:
            decode = self._drift_decoders[message_type] = self._build_drift_decoder(message_type)
        return cast("tuple[M, list[Drift]]", decode(data))

    def _build_drift_decoder(
        self, message_type: type[Message]
    ) -> Callable[[bytes | str], tuple[Message, list[Drift]]]:
        # A document the strict fast decoder reads, its enums' numbers known,
        # has nothing the schema does not know, and reads as the lenient
        # decoder reads it: so the cost of the check, when nothing drifted, is
        # that of a strict decode rather than a lenient one. Anything else is
        # read leniently (raising as it raises), then walked for drift.
        lenient = self._decoder(message_type, strict=False)
        descriptor = cast(Descriptor, message_type.DESCRIPTOR)
        fast = (
            _fastjson.decoder(
                message_type, strict=True, known_enums=True, backend=self._json_backend()
            )
            if self._fast
            else None
        )

        def decode_checked(data: bytes | str) -> tuple[Message, list[Drift]]:
            message = lenient(data)
            return message, find_drift(load_json(data), descriptor)

        if fast is None:
            return decode_checked
        strict: _fastjson.Decoder[Message] = fast

        def decode(data: bytes | str) -> tuple[Message, list[Drift]]:
            try:
                message = strict(data)
            except Exception:  # unsure, or something unknown: read leniently, and look
                return decode_checked(data)
            return message, []

        return decode

    def _decoder(self, message_type: type[M], *, strict: bool) -> Callable[[bytes | str], M]:
        """Return the decoding of one type, read strictly or leniently, built once per codec."""
        key = (message_type, strict)
        try:
            found: Callable[[bytes | str], M] = self._decoders[key]
        except KeyError:
            found = self._decoders[key] = self._build_decoder(message_type, strict=strict)
        return found

    def _build_decoder(self, message_type: type[M], *, strict: bool) -> Callable[[bytes | str], M]:
        def decode_generic(data: bytes | str) -> M:
            return self._decode_generic(data, message_type, strict=strict)

        fast = (
            _fastjson.decoder(message_type, strict=strict, backend=self._json_backend())
            if self._fast
            else None
        )
        if fast is None:
            return decode_generic
        specialised: _fastjson.Decoder[M] = fast

        def decode(data: bytes | str) -> M:
            try:
                return specialised(data)
            except Exception:  # every document it does not accept:
                return decode_generic(data)  # the generic path decides, and words the errors

        return decode

    def _decode_generic(self, data: bytes | str, message_type: type[M], *, strict: bool) -> M:
        document = load_json(data)
        violations: list[FieldViolation] = []
        descriptor = cast(Descriptor, message_type.DESCRIPTOR)
        checker = JsonChecker(strict, violations.append)
        checker.message(document, descriptor, "")
        if violations:
            # Missing fields are reported with the errors, not after they are fixed.
            reported = {violation.field for violation in violations}
            violations += [v for v in checker.missing if v.field not in reported]
            raise ApiError.invalid_argument(violations)
        assert isinstance(document, dict)  # the checker reports anything else
        message = message_type()
        try:
            json_format.ParseDict(document, message, ignore_unknown_fields=not strict)
        except Exception as error:  # whatever json_format raises, it refuses
            # The checker accepts only what json_format accepts; should they
            # ever disagree, the request still gets a 400 rather than a 500.
            raise ApiError.invalid_argument([violation("", str(error))]) from None
        return message


def _unwritable(message: Message, error: Exception, proto_field_names: bool) -> ApiError:
    """Return the error of a message json_format cannot write, naming the value it cannot."""
    path, reason = _unwritable_value(message, "", str(error), proto_field_names)
    what = (
        "no proto3 JSON form" if path else f"a {message.DESCRIPTOR.name} without a proto3 JSON form"
    )
    return ApiError.invalid_argument([violation(path, f"{what}: {reason}")])


def _unwritable_value(
    message: Message, path: str, reason: str, proto_field_names: bool
) -> tuple[str, str]:
    """Return the JSON path of the innermost message json_format cannot write, and why not."""
    try:
        fields = message.ListFields()
    except Exception:  # a field named ListFields hides the method
        return path, reason
    for field, value in fields:
        if field.message_type is None:
            continue
        field_path = json_path(path, field.name if proto_field_names else field.json_name)
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = [(map_member_path(field_path, key), value[key]) for key in value]
        elif field.is_repeated:
            items = [(f"{field_path}[{index}]", item) for index, item in enumerate(value)]
        else:
            items = [(field_path, value)]
        for item_path, item in items:
            try:
                json_format.MessageToJson(item)
            except Exception as error:  # what json_format cannot write is there
                return _unwritable_value(item, item_path, str(error), proto_field_names)
    return path, reason
