#!/usr/bin/env python3
"""A protoc plugin that writes the OpenAPI 3.1 document of the REST API.

The document is derived from the descriptors only, never from hand-kept
tables, so it cannot drift from the ``.proto`` files:

    plugins:
      - local: [python, tools/buf_plugins/protoc_gen_openapi.py]
        out: generated
        strategy: all

It writes one file, ``openapi.json``, in the folder of the files that declare
services with HTTP rules (``auxia/decision/model/openapi.json``), and nothing
when no method has a rule:

- one path per ``google.api.http`` rule (and additional binding) of the
  services in those files, whose operation ``operationId`` is the RPC name and
  whose request body and ``200`` response reference the RPC's messages;
- one schema per message and enum that the operations reach (and no other
  type of the request), named by its full proto name, in proto3 JSON form:
  properties keyed by ``json_name``, ``required`` from
  ``(google.api.field_behavior) = REQUIRED``, ``readOnly`` from
  ``OUTPUT_ONLY``, oneof exclusivity as ``x-oneof`` and an ``allOf``
  constraint, and the proto comments as descriptions;
- the ``x-api-key`` header and ``api-key``/``api_key`` query API keys as
  alternative security schemes (or the ``x-admin-key`` header), and
  ``google.rpc.Status`` as the error body.

Options (``google.api.http``, ``google.api.field_behavior`` and our rules)
are read through a descriptor pool built from the request's files, so the
plugin reads the extensions the files declare, whether or not their Python
modules are imported.
Parameters (``opt``, ``key=value`` separated by commas) override the
document's ``title``, ``version`` and ``server``, its path (``output``), the
proto ``package`` whose services it describes (by default every file's;
one document per API) and how calls authenticate (``auth``: ``api-key``, or
``admin-key`` for the emulator's admin API).
The output is deterministic: sorted keys, two-space indent and a trailing
newline.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import posixpath
import sys
from collections.abc import Iterator, Sequence
from typing import Any, cast

from google.api import http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# Run by buf as a script: the package it belongs to is found from the repository's root.
if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tools.buf_plugins.openapi_forms import (
    DOUBLE_NOTE,
    INT64_NOTE,
    INT64_PATTERN,
    INTEGER_NOTE,
    INTEGER_RANGES,
    NONZERO_PATTERN,
    SET_VALUES,
    TIMESTAMP_NOTE,
    UINT64_PATTERN,
    WRAPPERS,
    FieldLabel,
    FieldType,
    PluginError,
    both_schemas,
    enum_texts,
    given_under,
    integer_pattern,
    nullable,
    request_scalar_schema,
    request_well_known_schema,
    scalar_schema,
    well_known_schema,
)

JsonObject = dict[str, object]

OUTPUT_NAME = "openapi.json"
# The extensions the document reads, found by name in the request's files.
# google.api.http, on MethodOptions: the REST binding of a method.
HTTP_EXTENSION = "google.api.http"
# google.api.field_behavior, a repeated enum on FieldOptions.
FIELD_BEHAVIOR_EXTENSION = "google.api.field_behavior"
# Our OneofOptions extension marking oneofs of which exactly one member must be set.
ONEOF_REQUIRED_EXTENSION = "io.auxia.decision.model.oneof_required"
# Our rules on values and across fields (auxia/decision/model/field_rules.proto).
FIELD_RULES_EXTENSION = "io.auxia.decision.model.field_rules"
MESSAGE_RULES_EXTENSION = "io.auxia.decision.model.message_rules"
# Request schemas are components of their own: `request.<full name>`.
REQUEST_PREFIX = "request."

_DEFAULTS = {
    "title": "Auxia Decision API",
    "version": "v1",
    "server": "https://apis.auxia.io",
    # The proto package whose HTTP-bound services the document describes
    # (empty: every file's): one document per API, so that the emulator's
    # admin API stays out of the Auxia API's.
    "package": "",
    # How calls authenticate: `api-key` (the Auxia API's x-api-key header or
    # api-key query parameter) or `admin-key` (the emulator's x-admin-key header).
    "auth": "api-key",
    # Where to write the document; empty: openapi.json in the folder of the
    # files that declare the HTTP-bound services.
    "output": "",
}

_INTRODUCTIONS = {
    "api-key": """\
The Auxia decisioning REST API: every call is a `POST` of a JSON request body \
to `/v1/<Method>`, authenticated by an API key in the `x-api-key` header or the \
`api-key` query parameter.
""",
    "admin-key": """\
The admin API of the local reference server when it stands in for the Auxia API \
in tests (it is not part of the Auxia API): every call is a `POST` of a JSON \
request body to `/emulator/v1/<Method>`, authenticated by an admin key of the \
server's seed in the `x-admin-key` header. An Auxia API key is refused.
""",
}

_INFO_DESCRIPTION = """
This document is generated from the Protobuf schema (package \
`{package}`); each schema is named by the full name of its \
message or enum. Bodies are proto3 JSON:

- Properties are keyed by the fields' lowerCamelCase JSON names, which \
responses use.
- Fields holding their default value (empty string, 0, false, the zero enum \
value, an empty list) are omitted by emitters, except proto3 `optional` fields \
that are set.
- 64-bit integers (`format: int64`) are written as decimal strings, because \
JSON numbers lose precision past 2^53.
- Floating-point values are JSON numbers, or the strings `NaN`, `Infinity` \
and `-Infinity`.
- Enums are written as their value names.
- `google.protobuf.Timestamp` values are RFC 3339 strings in UTC \
(`2024-05-30T11:32:44.279Z`), from 0001-01-01T00:00:00Z to \
9999-12-31T23:59:59.999999999Z.
- `required` lists the fields marked `REQUIRED` (a request must set them to a \
non-default value); `readOnly` marks `OUTPUT_ONLY` fields, which the server \
sets and clients leave unset.
- Request bodies have schemas of their own, `request.<full name>`: closed \
(`additionalProperties: false`), with REQUIRED values other than their \
default and the schema's other rules (`pattern`, `minimum`, fields of which \
at least one is set as `anyOf`). A body valid against them is one the \
server's validation accepts, but for the few checks listed below. Response \
schemas, `<full name>`, stay open: clients should accept members added later.
- At most one member of a oneof may be set (exactly one when the oneof is \
required); `x-oneof` lists each oneof's members.

A request may use every form proto3 JSON reads, and its schema takes them: \
a field under its JSON name or its proto field name (`project_id`, as \
`patternProperties`), never both; `null` for a field that is not REQUIRED \
(its default); an integer as a JSON number or a string of one (`"10"`, \
`"1.5e3"`, `"10.0"`); an enum by its value's name, its number, or its number \
in a string; a floating-point value as a number, a string of one, or `NaN`, \
`Infinity`, `-Infinity`; a timestamp as RFC 3339 text with any offset \
(`2024-05-30T17:02:44+05:30`). The server checks a few things JSON Schema \
cannot say (the descriptions of the fields they concern say so): an integer string with \
an exponent must hold an integer within the field's range, at most 2^53 in \
magnitude; a floating-point string must be finite; a 64-bit integer given as \
a JSON number of 2^53 or more is read exactly (a validator reading JSON \
numbers as doubles rounds it, one checking `format: int64` refuses it: write \
such values as strings, as emitters do); a timestamp's offset must not take it past the \
years 0001 and 9999. Nor can it say that strings must not hold unpaired \
UTF-16 surrogates (which are no Unicode text), which the server refuses too.

Errors are `google.rpc.Status` bodies.
"""

_STATUS_SCHEMA: JsonObject = {
    "type": "object",
    "description": (
        "An error (google.rpc.Status): a gRPC status code, a developer-facing message and details."
    ),
    "properties": {
        "code": {
            "type": "integer",
            "format": "int32",
            "description": "The status code, a value of `google.rpc.Code` (3 is INVALID_ARGUMENT).",
        },
        "message": {
            "type": "string",
            "description": "A developer-facing error message, in English.",
        },
        "details": {
            "type": "array",
            "description": "Messages that carry the error details.",
            "items": {
                "type": "object",
                "description": "A `google.protobuf.Any` in proto3 JSON form.",
                "properties": {
                    "@type": {
                        "type": "string",
                        "description": "The type URL of the detail message.",
                    },
                },
                "required": ["@type"],
            },
        },
    },
}


class _Options:
    """Reads the options of the request's descriptors, our extensions and Google's included.

    The request's files (every file buf sends: the ones to generate and all
    they import) make a descriptor pool of their own. An options message is
    parsed again by the pool's class of its type, where the extensions the
    files declare are fields like any other: read the same way whether or
    not this process imported their Python modules.
    """

    def __init__(self, files: Sequence[descriptor_pb2.FileDescriptorProto]) -> None:
        self._pool = descriptor_pool.DescriptorPool()
        for file in files:
            try:
                self._pool.Add(file)
            except (TypeError, ValueError) as error:
                raise PluginError(f"{file.name}: {error}") from None
        self._classes: dict[str, type[Message]] = {}

    def extension(self, full_name: str) -> FieldDescriptor | None:
        """Return the extension of that name, or None when no file of the request declares it."""
        try:
            return self._pool.FindExtensionByName(full_name)
        except KeyError:
            return None

    def get(self, options: Message, extension: FieldDescriptor | None) -> Any:  # noqa: ANN401 - a value of any extension
        """Return the value of an extension in an options message, or None when it is not set.

        A repeated extension's value is its list (empty when not set).
        """
        if extension is None:
            return None
        name = options.DESCRIPTOR.full_name
        options_class = self._classes.get(name)
        if options_class is None:
            options_type = self._pool.FindMessageTypeByName(name)
            options_class = self._classes[name] = message_factory.GetMessageClass(options_type)
        parsed: Any = options_class.FromString(options.SerializeToString())
        if extension.is_repeated:
            return list(parsed.Extensions[extension])
        return parsed.Extensions[extension] if parsed.HasExtension(extension) else None


@dataclasses.dataclass(frozen=True)
class _FieldRules:
    """A field's ``field_rules`` option."""

    pattern: str = ""
    minimum: int | None = None

    @classmethod
    def parse(cls, rules: Any) -> _FieldRules:  # noqa: ANN401 - the pool's FieldRules
        """Read the option's message (None when the field has none)."""
        if rules is None:
            return cls()
        return cls(rules.pattern, rules.minimum if rules.HasField("minimum") else None)


def _clean_comment(comment: str) -> str:
    """Turn a leading proto comment into description text: no comment indent, no blank ends."""
    lines = [line.removeprefix(" ").rstrip() for line in comment.split("\n")]
    return "\n".join(lines).strip()


def _summary(description: str) -> str:
    """Return the first sentence of the first paragraph of a description, on one line."""
    paragraph = " ".join(description.split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


def _ref(full_name: str) -> JsonObject:
    """Return a reference to the component schema of a message or enum."""
    return {"$ref": f"#/components/schemas/{full_name}"}


@dataclasses.dataclass(frozen=True)
class _Declaration:
    """A message or enum of the request, with where its comments are."""

    full_name: str
    file: descriptor_pb2.FileDescriptorProto
    path: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _MessageDecl(_Declaration):
    proto: descriptor_pb2.DescriptorProto


@dataclasses.dataclass(frozen=True)
class _EnumDecl(_Declaration):
    proto: descriptor_pb2.EnumDescriptorProto


def _declarations(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[_MessageDecl | _EnumDecl]:
    """Yield every message and enum of a file, nested ones included."""
    prefix = f"{file.package}." if file.package else ""

    def nested(
        scope: str, path: tuple[int, ...], message: descriptor_pb2.DescriptorProto
    ) -> Iterator[_MessageDecl | _EnumDecl]:
        name = f"{scope}{message.name}"
        yield _MessageDecl(name, file, path, message)
        for index, enum in enumerate(message.enum_type):
            yield _EnumDecl(f"{name}.{enum.name}", file, (*path, 4, index), enum)
        for index, child in enumerate(message.nested_type):
            yield from nested(f"{name}.", (*path, 3, index), child)

    for index, enum in enumerate(file.enum_type):
        yield _EnumDecl(f"{prefix}{enum.name}", file, (5, index), enum)
    for index, message in enumerate(file.message_type):
        yield from nested(prefix, (4, index), message)


class _Builder:
    """Builds the OpenAPI document from the request's descriptors."""

    def __init__(self, request: plugin_pb2.CodeGeneratorRequest, settings: dict[str, str]) -> None:
        self._settings = settings
        self._messages: dict[str, _MessageDecl] = {}
        self._enums: dict[str, _EnumDecl] = {}
        self._comments: dict[tuple[str, tuple[int, ...]], str] = {}
        self._options = _Options(request.proto_file)
        self._http = self._options.extension(HTTP_EXTENSION)
        self._field_behavior = self._options.extension(FIELD_BEHAVIOR_EXTENSION)
        self._oneof_required = self._options.extension(ONEOF_REQUIRED_EXTENSION)
        self._field_rules = self._options.extension(FIELD_RULES_EXTENSION)
        self._message_rules_option = self._options.extension(MESSAGE_RULES_EXTENSION)
        # The numbers of the behaviors the document shows, read from their enum.
        behavior = self._field_behavior.enum_type if self._field_behavior else None
        self._required_behavior = behavior.values_by_name["REQUIRED"].number if behavior else None
        self._output_only_behavior = (
            behavior.values_by_name["OUTPUT_ONLY"].number if behavior else None
        )
        for file in request.proto_file:
            for declaration in _declarations(file):
                if isinstance(declaration, _MessageDecl):
                    self._messages[declaration.full_name] = declaration
                else:
                    self._enums[declaration.full_name] = declaration
            for location in file.source_code_info.location:
                if location.leading_comments:
                    key = (file.name, tuple(location.path))
                    self._comments[key] = _clean_comment(location.leading_comments)
        self._to_generate = [
            f
            for f in request.proto_file
            if f.name in request.file_to_generate and settings["package"] in ("", f.package)
        ]
        # The files declaring services with HTTP rules, filled by build().
        self.api_files: list[str] = []
        # Component schemas, filled by _add_schema as types are reached.
        self._schemas: dict[str, JsonObject] = {}

    def _comment(self, file: descriptor_pb2.FileDescriptorProto, path: tuple[int, ...]) -> str:
        return self._comments.get((file.name, path), "")

    def build(self) -> JsonObject | None:
        """Return the whole OpenAPI document, or None when no method has an HTTP rule.

        The document holds the schemas of the types that the operations reach,
        and no others: messages of the files that no HTTP method uses (a
        server's own records, say) are not part of the REST API.
        """
        paths: dict[str, JsonObject] = {}
        tags: list[JsonObject] = []
        for file in self._to_generate:
            for service_index, service in enumerate(file.service):
                service_path = (6, service_index)
                bound = False
                for method_index, method in enumerate(service.method):
                    comment = self._comment(file, (*service_path, 2, method_index))
                    bound |= self._add_operations(paths, service.name, method, comment)
                if not bound:
                    continue
                if file.name not in self.api_files:
                    self.api_files.append(file.name)
                tag: JsonObject = {"name": service.name}
                if comment := self._comment(file, service_path):
                    tag["description"] = comment
                tags.append(tag)
        if not paths:
            return None
        schemas = dict(self._schemas)
        schemas["google.rpc.Status"] = _STATUS_SCHEMA
        security_schemes, security = _security(self._settings["auth"])
        packages = sorted(
            {file.package for file in self._to_generate if file.name in self.api_files}
        )
        description = _INTRODUCTIONS[self._settings["auth"]] + _INFO_DESCRIPTION.replace(
            "{package}", "`, `".join(packages)
        )
        return {
            "openapi": "3.1.0",
            "info": {
                "title": self._settings["title"],
                "version": self._settings["version"],
                "description": description,
            },
            "servers": [{"url": self._settings["server"]}],
            "tags": sorted(tags, key=lambda t: str(t["name"])),
            "security": security,
            "paths": paths,
            "components": {
                "schemas": schemas,
                "responses": {
                    "Error": {
                        "description": "An error, as a `google.rpc.Status`.",
                        "content": {"application/json": {"schema": _ref("google.rpc.Status")}},
                    },
                },
                "securitySchemes": security_schemes,
            },
        }

    def _add_operations(
        self,
        paths: dict[str, JsonObject],
        service: str,
        method: descriptor_pb2.MethodDescriptorProto,
        comment: str,
    ) -> bool:
        """Add one operation per HTTP rule of a method; return whether it has any."""
        found = self._options.get(method.options, self._http)
        if found is None:
            return False
        rule = http_pb2.HttpRule.FromString(found.SerializeToString())
        if method.client_streaming or method.server_streaming:
            raise PluginError(f"{service}.{method.name}: streaming methods have no REST mapping")
        bindings = [rule, *rule.additional_bindings]
        for index, binding in enumerate(bindings):
            verb, path = self._verb_and_path(service, method.name, binding)
            operation_id = method.name if index == 0 else f"{method.name}_{index}"
            operations = paths.setdefault(path, {})
            if verb in operations:
                raise PluginError(f"{service}.{method.name}: {verb.upper()} {path} is bound twice")
            operations[verb] = self._operation(service, method, comment, operation_id)
        return True

    @staticmethod
    def _verb_and_path(service: str, method: str, rule: http_pb2.HttpRule) -> tuple[str, str]:
        """Return the lowercase HTTP method and the path of one HTTP rule."""
        pattern = rule.WhichOneof("pattern")
        if pattern is None:
            raise PluginError(f"{service}.{method}: an HTTP rule has no method and path")
        if pattern == "custom":
            verb, path = rule.custom.kind.lower(), rule.custom.path
        else:
            verb, path = pattern, str(getattr(rule, pattern))
        where = f"{service}.{method}: {verb.upper()} {path}"
        if verb not in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
            raise PluginError(f"{where}: not an HTTP method OpenAPI can describe")
        if "{" in path:
            raise PluginError(f"{where}: path variables are not supported")
        if rule.body != "*" or rule.response_body:
            raise PluginError(f'{where}: only body: "*" and a whole-message response are supported')
        return verb, path

    def _operation(
        self,
        service: str,
        method: descriptor_pb2.MethodDescriptorProto,
        comment: str,
        operation_id: str,
    ) -> JsonObject:
        """Return the operation of one HTTP binding of a method."""
        request_type = method.input_type.removeprefix(".")
        response_type = method.output_type.removeprefix(".")
        self._add_schema(request_type, request=True)
        self._add_schema(response_type)
        response = self._messages.get(response_type)
        response_comment = self._comment(response.file, response.path) if response else ""
        operation: JsonObject = {
            "operationId": operation_id,
            # The method's name: what API explorers list their navigation by.
            "summary": method.name,
            "tags": [service],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(REQUEST_PREFIX + request_type)}},
            },
            "responses": {
                "200": {
                    "description": _summary(response_comment) or "OK",
                    "content": {"application/json": {"schema": _ref(response_type)}},
                },
                "default": {"$ref": "#/components/responses/Error"},
            },
        }
        if comment:
            operation["description"] = comment
        return operation

    def _add_schema(self, full_name: str, *, request: bool = False) -> None:
        """Add the component schema of a message or enum and of every type it reaches.

        A request's types get schemas of their own (``request.<full name>``),
        closed and carrying the rules a valid request follows; a response's
        stay open, so that clients accept what later versions add.
        """
        name = REQUEST_PREFIX + full_name if request else full_name
        if name in self._schemas or well_known_schema(full_name) is not None:
            return
        if full_name in self._enums:
            self._schemas[name] = self._enum_schema(self._enums[full_name], request=request)
        elif full_name in self._messages:
            # Reserve the name first: message types may be recursive.
            self._schemas[name] = {}
            self._schemas[name] = self._message_schema(self._messages[full_name], request=request)
        else:
            raise PluginError(f"type {full_name} is not in the request")

    def _enum_schema(self, enum: _EnumDecl, *, request: bool = False) -> JsonObject:
        """Return the schema of an enum: its value names, each described."""
        lines = []
        for index, value in enumerate(enum.proto.value):
            text = " ".join(self._comment(enum.file, (*enum.path, 2, index)).split())
            lines.append(f"- `{value.name}`: {text}" if text else f"- `{value.name}`")
        description = "\n\n".join(
            part for part in (self._comment(enum.file, enum.path), "\n".join(lines)) if part
        )
        schema: JsonObject = {
            "type": "string",
            "enum": list(dict.fromkeys(value.name for value in enum.proto.value)),
            "description": description,
        }
        if request:
            # A request may give a defined value by its name, its number, or its
            # number in a string (leading zeros and -0 included).
            numbers = list(dict.fromkeys(value.number for value in enum.proto.value))
            schema = {
                "anyOf": [
                    {"type": "string", "enum": schema["enum"]},
                    {"type": "integer", "enum": numbers},
                    {"type": "string", "pattern": enum_texts(numbers)},
                ],
                "description": description,
            }
        if enum.full_name == "google.protobuf.NullValue":
            schema = {"type": "null"}
        return schema

    def _message_schema(self, message: _MessageDecl, *, request: bool = False) -> JsonObject:
        """Return the schema of a message: its fields, their behaviors and its oneofs.

        A request's schema also takes each field under its proto name
        (``patternProperties``, never both names), null for a field that is
        not REQUIRED, and holds the rules: no other properties, REQUIRED values
        other than their default, ``field_rules`` as ``pattern`` and
        ``minimum``, ``message_rules`` as ``anyOf``.
        """
        properties: JsonObject = {}
        aliases: JsonObject = {}
        required: list[str] = []
        constraints: list[JsonObject] = []
        for index, field in enumerate(message.proto.field):
            prop, is_required = self._property(message, index, field, request=request)
            properties[field.json_name] = prop
            names = _names(field) if request else [field.json_name]
            if len(names) > 1:
                alias = {**prop, "description": f"`{field.json_name}`, by its proto field name."}
                aliases[f"^{field.name}$"] = alias
            if is_required and len(names) == 1:
                required.append(field.json_name)
            elif is_required:
                # Given by its proto name, or else by its JSON name (an if, not an anyOf:
                # explorers show the alternatives of an anyOf as schemas of the body).
                constraints.append(
                    {
                        "$comment": f"{field.json_name} is required, by either name",
                        "if": {"required": [field.name]},
                        "else": {"required": [field.json_name]},
                    }
                )
        schema: JsonObject = {"type": "object", "properties": properties}
        if aliases:
            schema["patternProperties"] = aliases
        if required:
            schema["required"] = required
        if request:
            schema["additionalProperties"] = False
        twice = [_names(field) for field in message.proto.field if len(_names(field)) > 1]
        if request and twice:
            constraints.insert(
                0,
                {
                    "$comment": "a field is given once: by its JSON name or by its proto name",
                    "not": {"anyOf": [{"required": names} for names in twice]},
                },
            )
        notes, oneofs, oneof_constraints = self._oneofs(message, request=request)
        constraints += oneof_constraints
        if request:
            constraints += self._message_rules(message)
        description = "\n\n".join(
            part for part in (self._comment(message.file, message.path), *notes) if part
        )
        if description:
            schema["description"] = description
        if oneofs:
            schema["x-oneof"] = oneofs
        if constraints:
            schema["allOf"] = constraints
        return schema

    def _property(
        self,
        message: _MessageDecl,
        index: int,
        field: descriptor_pb2.FieldDescriptorProto,
        *,
        request: bool,
    ) -> tuple[JsonObject, bool]:
        """Return the schema of a field as a property of its message, and whether it is REQUIRED.

        In a request, a REQUIRED field's value must not be its default; any
        other may be null.
        """
        prop = self._field_schema(field, request=request)
        behaviors = self._options.get(field.options, self._field_behavior) or []
        is_required = self._required_behavior in behaviors
        if request and not is_required:
            prop = nullable(prop)
        elif request and not _tracks_presence(field):
            # Null is no value of the property's schema; the default is none either.
            prop = self._not_default(field) | prop
        if self._output_only_behavior in behaviors:
            prop["readOnly"] = True
        comment = self._comment(message.file, (*message.path, 2, index))
        if request and (note := self._note(field)):
            comment = f"{comment}\n\n{note}" if comment else note
        if comment:
            prop["description"] = comment
        return prop, is_required

    def _oneofs(
        self, message: _MessageDecl, *, request: bool
    ) -> tuple[list[str], JsonObject, list[JsonObject]]:
        """Return the description notes, ``x-oneof`` and constraints of a message's oneofs.

        Synthetic oneofs (of proto3 ``optional`` fields) are not oneofs of the
        API and are left out. In a request, a member is set when it is given,
        by either name, and not null.
        """
        notes: list[str] = []
        oneofs: JsonObject = {}
        constraints: list[JsonObject] = []
        for index, oneof in enumerate(message.proto.oneof_decl):
            fields = [
                field
                for field in message.proto.field
                if field.HasField("oneof_index")
                and field.oneof_index == index
                and not field.proto3_optional
            ]
            if not fields:
                continue
            members = [field.json_name for field in fields]
            oneofs[oneof.name] = members
            names = ", ".join(f"`{member}`" for member in members)
            # A member is set given a value of its types (not null): so explorers show
            # each way to set one.
            given = [
                given_under(_names(field), {"type": self._json_types(field)})
                if request
                else given_under([field.json_name], None)
                for field in fields
            ]
            if self._options.get(oneof.options, self._oneof_required):
                notes.append(f"Oneof `{oneof.name}` (required): exactly one of {names}.")
                constraints.append(
                    {
                        "$comment": f"oneof {oneof.name}: exactly one member is set",
                        "oneOf": [way for member_ways in given for way in member_ways],
                    }
                )
                continue
            notes.append(f"Oneof `{oneof.name}`: at most one of {names}.")
            # In a "not", a member given is one not null (a complement generators spell).
            not_null: JsonObject = {"not": {"type": "null"}}
            barred = [
                given_under(_names(field), not_null)
                if request
                else given_under([field.json_name], None)
                for field in fields
            ]
            pairs = [
                both_schemas(first, second)
                for position, ways in enumerate(barred)
                for other_ways in barred[position + 1 :]
                for first in ways
                for second in other_ways
            ]
            if pairs:
                constraints.append(
                    {
                        "$comment": f"oneof {oneof.name}: at most one member is set",
                        "not": {"anyOf": pairs},
                    }
                )
        return notes, oneofs, constraints

    def _message_rules(self, message: _MessageDecl) -> list[JsonObject]:
        """Return the constraints of a message's ``message_rules`` (at least one of a group)."""
        rules = self._options.get(message.proto.options, self._message_rules_option)
        if rules is None:
            return []
        fields = {field.name: field for field in message.proto.field}
        constraints: list[JsonObject] = []
        for group in rules.at_least_one_of:
            members = [fields[name] for name in group.fields]
            names = ", ".join(member.json_name for member in members)
            options = [
                way
                for member in members
                for way in given_under(_names(member), self._not_default(member))
            ]
            constraints.append({"$comment": f"at least one of {names} is set", "anyOf": options})
        return constraints

    def _not_default(self, field: descriptor_pb2.FieldDescriptorProto) -> JsonObject:
        """Return what a field's value must be to count as set: not null, nor its default.

        A message is set by any value but null.
        """
        if field.label == FieldLabel.LABEL_REPEATED:
            entry = self._messages.get(field.type_name.removeprefix("."))
            if entry is not None and entry.proto.options.map_entry:
                return {"type": "object", "minProperties": 1}
            return {"type": "array", "minItems": 1}
        if field.type == FieldType.TYPE_MESSAGE:
            return {"type": self._json_types(field)}
        if field.type in SET_VALUES:
            return dict(SET_VALUES[field.type])
        if field.type == FieldType.TYPE_ENUM:
            # The enum's values but zero, each way a request may give one.
            enum = self._enums[field.type_name.removeprefix(".")]
            values = [value for value in enum.proto.value if value.number != 0]
            numbers = list(dict.fromkeys(value.number for value in values))
            return {
                "anyOf": [
                    {"type": "string", "enum": list(dict.fromkeys(v.name for v in values))},
                    {"type": "integer", "enum": numbers},
                    {"type": "string", "pattern": enum_texts(numbers)},
                ]
            }
        # A number other than 0: above or below it, or a text with a digit other than 0.
        return {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "number", "exclusiveMaximum": 0},
                {"type": "string", "pattern": NONZERO_PATTERN},
            ]
        }

    def _json_types(self, field: descriptor_pb2.FieldDescriptorProto) -> str | list[str]:
        """Return the JSON types a request may give a field's value in, null aside."""
        type_name = field.type_name.removeprefix(".")
        if field.label == FieldLabel.LABEL_REPEATED:
            entry = self._messages.get(type_name)
            return "object" if entry is not None and entry.proto.options.map_entry else "array"
        if type_name in WRAPPERS:
            return self._json_types(descriptor_pb2.FieldDescriptorProto(type=WRAPPERS[type_name]))
        if field.type == FieldType.TYPE_MESSAGE:
            return _WELL_KNOWN_TYPES.get(type_name, "object")
        if field.type in INTEGER_RANGES or field.type in (
            FieldType.TYPE_DOUBLE,
            FieldType.TYPE_FLOAT,
        ):
            return cast(list[str], request_scalar_schema(field.type)["type"])
        if field.type == FieldType.TYPE_ENUM:
            return ["string", "integer"]
        return "boolean" if field.type == FieldType.TYPE_BOOL else "string"

    def _note(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        """Return what a request field's description adds: what JSON Schema cannot check."""
        if field.type in INTEGER_RANGES:
            wide = INTEGER_RANGES[field.type][0].endswith("64")
            return INTEGER_NOTE + (INT64_NOTE if wide else "")
        if field.type in (FieldType.TYPE_DOUBLE, FieldType.TYPE_FLOAT):
            return DOUBLE_NOTE
        if field.type_name == ".google.protobuf.Timestamp":
            return TIMESTAMP_NOTE
        return ""

    def _rules_of(self, field: descriptor_pb2.FieldDescriptorProto) -> _FieldRules:
        return _FieldRules.parse(self._options.get(field.options, self._field_rules))

    def _field_schema(
        self, field: descriptor_pb2.FieldDescriptorProto, *, request: bool = False
    ) -> JsonObject:
        """Return the schema of a field: a value, a list of values or a map."""
        if field.label != FieldLabel.LABEL_REPEATED:
            return self._value_schema(field, request=request)
        entry = self._messages.get(field.type_name.removeprefix("."))
        if field.type == FieldType.TYPE_MESSAGE and entry and entry.proto.options.map_entry:
            key, value = entry.proto.field
            schema: JsonObject = {
                "type": "object",
                "additionalProperties": self._value_schema(value, request=request),
            }
            if key.type == FieldType.TYPE_BOOL:
                schema["propertyNames"] = {"enum": ["true", "false"]}
            elif key.type != FieldType.TYPE_STRING and request:
                _, low, high = INTEGER_RANGES[key.type]
                schema["propertyNames"] = {"pattern": integer_pattern(low, high)}
            elif key.type != FieldType.TYPE_STRING:
                unsigned = key.type in (
                    FieldType.TYPE_UINT32,
                    FieldType.TYPE_UINT64,
                    FieldType.TYPE_FIXED32,
                )
                unsigned = unsigned or key.type == FieldType.TYPE_FIXED64
                pattern = UINT64_PATTERN if unsigned else INT64_PATTERN
                schema["propertyNames"] = {"pattern": pattern}
            return schema
        return {"type": "array", "items": self._value_schema(field, request=request)}

    def _value_schema(
        self, field: descriptor_pb2.FieldDescriptorProto, *, request: bool = False
    ) -> JsonObject:
        """Return the schema of one value of a field (with its rules, in a request)."""
        if field.type in (FieldType.TYPE_MESSAGE, FieldType.TYPE_ENUM):
            type_name = field.type_name.removeprefix(".")
            well_known = (
                request_well_known_schema(type_name) if request else well_known_schema(type_name)
            )
            if well_known is not None:
                return well_known
            self._add_schema(type_name, request=request)
            return _ref(REQUEST_PREFIX + type_name if request else type_name)
        if field.type == FieldType.TYPE_GROUP:
            raise PluginError(f"field {field.name}: groups have no proto3 JSON form")
        if not request:
            return scalar_schema(field.type)
        schema = request_scalar_schema(field.type)
        _apply_rules(schema, self._rules_of(field), field)
        return schema


def _tracks_presence(field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """Return whether a field is set by any value (a message, an ``optional``, a oneof member)."""
    singular = field.label != FieldLabel.LABEL_REPEATED
    return singular and (field.type == FieldType.TYPE_MESSAGE or field.HasField("oneof_index"))


# The JSON types of the values of well-known messages, which are no objects.
_WELL_KNOWN_TYPES: dict[str, str | list[str]] = {
    "google.protobuf.Timestamp": "string",
    "google.protobuf.Duration": "string",
    "google.protobuf.FieldMask": "string",
    "google.protobuf.ListValue": "array",
    "google.protobuf.Value": ["string", "number", "boolean", "object", "array"],
}


def _names(field: descriptor_pb2.FieldDescriptorProto) -> list[str]:
    """Return the names a request may give a field under: its JSON name, then its proto name."""
    return list(dict.fromkeys([field.json_name, field.name]))


def _apply_rules(
    schema: JsonObject, rules: _FieldRules, field: descriptor_pb2.FieldDescriptorProto
) -> None:
    """Add a field's ``field_rules`` to the schema of one of its values."""
    if rules.pattern:
        if field.type != FieldType.TYPE_STRING:
            raise PluginError(f"field {field.name}: a pattern applies to strings only")
        schema["pattern"] = rules.pattern
    if rules.minimum is not None:
        if field.type not in INTEGER_RANGES:
            raise PluginError(f"field {field.name}: a minimum applies to integers only")
        _, low, high = INTEGER_RANGES[field.type]
        if rules.minimum > 0:
            # The strings of such a range would need a pattern of their own.
            raise PluginError(f"field {field.name}: a minimum above 0 is not supported")
        schema["minimum"] = max(low, rules.minimum)
        schema["pattern"] = integer_pattern(max(low, rules.minimum), high)


def _security(auth: str) -> tuple[JsonObject, list[JsonObject]]:
    """Return the security schemes and requirements of an ``auth`` setting."""
    if auth == "admin-key":
        schemes: JsonObject = {
            "adminKey": {
                "type": "apiKey",
                "in": "header",
                "name": "x-admin-key",
                "description": "An admin key of the server's seed, in the `x-admin-key` header.",
            },
        }
        return schemes, [{"adminKey": []}]
    if auth != "api-key":
        raise PluginError(f"unknown auth {auth!r}; known: admin-key, api-key")
    schemes = {
        "apiKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "x-api-key",
            "description": "The project's API key, in the `x-api-key` header.",
        },
        "apiKeyQuery": {
            "type": "apiKey",
            "in": "query",
            "name": "api-key",
            "description": "The project's API key, in the `api-key` query parameter.",
        },
        "apiKeyUnderscoreQuery": {
            "type": "apiKey",
            "in": "query",
            "name": "api_key",
            "description": (
                "The project's API key, in the `api_key` query parameter (the name "
                "the GetTreatments documentation uses)."
            ),
        },
    }
    # Any one key authenticates a call: the requirements are alternatives.
    return schemes, [{name: []} for name in schemes]


def _settings(parameter: str) -> dict[str, str]:
    """Parse the plugin parameter (``key=value,...``) over the defaults."""
    settings = dict(_DEFAULTS)
    for item in filter(None, parameter.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in settings:
            raise PluginError(f"unknown parameter {item!r}; known: {', '.join(sorted(settings))}")
        settings[key] = value
    return settings


def _output_name(files: Sequence[str]) -> str:
    """Return the default output path: openapi.json in the folder of the given files."""
    if not files:
        return OUTPUT_NAME
    folder = posixpath.commonpath([posixpath.dirname(name) for name in files])
    return posixpath.join(folder, OUTPUT_NAME) if folder else OUTPUT_NAME


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Return the response holding the OpenAPI document of the request's files."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL,
    )
    try:
        settings = _settings(request.parameter)
        builder = _Builder(request, settings)
        document = builder.build()
    except PluginError as error:
        response.error = str(error)
        return response
    if document is not None:
        content = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        name = settings["output"] or _output_name(builder.api_files)
        response.file.add(name=name, content=content)
    return response


def main() -> None:
    """Read a CodeGeneratorRequest on stdin and write the response to stdout."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
