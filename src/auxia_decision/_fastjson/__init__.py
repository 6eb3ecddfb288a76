"""Proto3 JSON encoders and decoders specialised per message type.

``google.protobuf.json_format`` walks descriptors field by field for every
message. Here each message type gets, once, Python source generated from its
descriptors (one function per reachable message type, for encoding and for
decoding, exec'd once and cached), so a call does only the work its fields
need: no descriptor is read, no JSON object built as a dict first.

Encoding is byte-identical to ``json_format.MessageToJson(indent=None)``
(:mod:`._encoders`); decoding gives a message equal to what the generic
codec gives, or the arguments of its constructor with every value checked
(a fields decoder, for a caller that reads plain values rather than a
message), and decides only what it is sure of (:mod:`._decoders`),
parsing with orjson when it is installed, else with the standard library
(:mod:`.json_backend`). The generated code calls the helpers of
:mod:`._runtime`; :mod:`._kinds` reads what each field is from its
descriptor, and :mod:`._compiler` walks the message types into generated
source (:mod:`auxia_decision._source`).

Message types using a feature without a specialised form here (``bytes`` or
``float`` fields, groups, well-known types other than Timestamp, extensions,
recursive types, fields named like a method of protobuf's ``Message``) get
no fast functions: :func:`encoder` and :func:`decoder` return ``None`` for
them, and the generic path does all the work. Any other schema, proto2
included (defaults, closed enums, ``required``), enums with aliases and
fields named like Python keywords, has them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar, cast

from google.protobuf.message import Message

from auxia_decision._fastjson import json_backend
from auxia_decision._fastjson._decoders import (
    Decoder,
    FieldsDecoder,
    build_decoder,
    build_fields_decoder,
)
from auxia_decision._fastjson._encoders import (
    Encoder,
    FieldsEncoder,
    build_encoder,
    build_fields_encoder,
)
from auxia_decision._fastjson._kinds import Unsupported
from auxia_decision._fastjson._runtime import Fallback

__all__ = [
    "Decoder",
    "Encoder",
    "Fallback",
    "FieldsDecoder",
    "FieldsEncoder",
    "Unsupported",
    "decoder",
    "encoder",
    "fields_decoder",
    "fields_encoder",
]

M = TypeVar("M", bound=Message)
_K = TypeVar("_K")
_V = TypeVar("_V")

_lock = threading.Lock()
_MISSING = object()
_built_encoders: dict[tuple[type[Message], bool], Encoder | None] = {}
_built_decoders: dict[
    tuple[type[Message], bool, bool, json_backend.JsonBackend], Decoder[Message] | None
] = {}
_built_fields_encoders: dict[type[Message], FieldsEncoder | None] = {}
_built_fields_decoders: dict[
    tuple[type[Message], json_backend.JsonBackend], FieldsDecoder | None
] = {}


def _built_once(cache: dict[_K, _V], key: _K, build: Callable[[], _V]) -> _V:
    """Return ``cache[key]``, built by ``build()`` the first time (once across threads)."""
    found = cache.get(key, _MISSING)
    if found is _MISSING:
        with _lock:
            found = cache.get(key, _MISSING)
            if found is _MISSING:
                found = cache[key] = build()
    return cast(_V, found)


def encoder(message_type: type[Message], *, proto_field_names: bool) -> Encoder | None:
    """Return the specialised encoder of a message type, or None if it has none.

    The encoder returns exactly the bytes of ``json_format.MessageToJson(message,
    indent=None, preserving_proto_field_name=proto_field_names)`` encoded as
    UTF-8, or raises where json_format would raise (or where it is unsure).
    """
    build = functools.partial(build_encoder, message_type, proto_field_names)
    return _built_once(_built_encoders, (message_type, proto_field_names), build)


def fields_encoder(message_type: type[Message]) -> FieldsEncoder | None:
    """Return the specialised fields encoder of a message type, or None if it has none.

    It writes, from the arguments of the type's constructor (as a fields
    decoder returns them), exactly what the encoder writes for the message
    they build, with JSON names; or raises where the encoder would, and for
    a map of more than one entry (whose order only the message knows).
    Types holding a Timestamp, in a map too, have none.
    """
    build = functools.partial(build_fields_encoder, message_type)
    return _built_once(_built_fields_encoders, message_type, build)


def decoder(
    message_type: type[M],
    *,
    strict: bool,
    known_enums: bool = False,
    backend: json_backend.JsonBackend | None = None,
) -> Decoder[M] | None:
    """Return the specialised decoder of a message type, or None if it has none.

    The decoder returns a message equal to what the generic codec returns for
    the same text (strictly or leniently read), or raises when the generic
    codec must decide: for every document it rejects, and for some unusual
    ones it accepts. It parses with the backend in use (orjson if installed,
    else the standard library), chosen when the first decoder is built. With
    ``known_enums``, it also raises for an open enum given by a number that
    is none of its values (and for a singular one given by any number), so
    that what it accepts strictly holds nothing the schema does not know.
    ``backend`` names another backend to parse with (tests name each).
    """
    chosen = backend or json_backend.in_use()
    return _decoder_on(chosen, message_type, strict=strict, known_enums=known_enums)


def _decoder_on(
    backend: json_backend.JsonBackend,
    message_type: type[M],
    *,
    strict: bool,
    known_enums: bool = False,
) -> Decoder[M] | None:
    """Return the specialised decoder of a message type parsing with a given backend.

    What :func:`decoder` builds (once) once the backend is settled.
    """
    root = cast(type[Message], message_type)
    build = functools.partial(build_decoder, root, strict, backend, known_enums=known_enums)
    found = _built_once(_built_decoders, (root, strict, known_enums, backend), build)
    return cast("Decoder[M] | None", found)


def fields_decoder(
    message_type: type[Message], *, backend: json_backend.JsonBackend | None = None
) -> FieldsDecoder | None:
    """Return the specialised fields decoder of a request type, or None if it has none.

    It reads what the strict decoder reads, into the keyword arguments of the
    type's constructor with every value checked (``message_type(**fields)``
    is the message the decoder returns), so that a caller may read plain
    values rather than a message; it raises where the decoder would. It parses
    as ``decoder`` does, with ``backend`` when one is named.
    """
    return _fields_decoder_on(backend or json_backend.in_use(), message_type)


def _fields_decoder_on(
    backend: json_backend.JsonBackend, message_type: type[Message]
) -> FieldsDecoder | None:
    """Return the fields decoder of a request type parsing with a given backend (built once)."""
    build = functools.partial(build_fields_decoder, message_type, backend)
    return _built_once(_built_fields_decoders, (message_type, backend), build)
