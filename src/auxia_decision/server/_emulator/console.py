"""The console: static pages under ``/console/`` over the emulator admin API, and the explorer.

The pages are files of this package (``console_assets/``), served as they are with
a Content-Security-Policy that lets them load and call nothing but this
server. The explorer (RapiDoc, pinned and served from the package) tries the
API through ``/console/openapi.json``: the shipped document, pointed at this
server, with the documentation's samples as the request examples, and the
proto-name aliases of fields that hold messages, lists or maps shown by their
description alone (RapiDoc 9.3.8 renders such a ``patternProperties`` schema
into its own parent, and recurses without end).
"""

from __future__ import annotations

import importlib.resources
import json
from typing import Any, Final

from auxia_decision._routes import routes
from auxia_decision.server._transport.bindings import Document

PREFIX: Final = "/console/"
# Same origin only: scripts, styles, fonts, images and calls come from this
# server (no inline script, no eval); nothing may frame the pages or receive a form.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The explorer's RapiDoc sets style attributes as it renders: its page also
# allows inline styles (never inline scripts).
EXPLORER_POLICY: Final = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self';", "style-src 'self' 'unsafe-inline';"
)
_ASSETS: Final = importlib.resources.files(__package__ or __name__).joinpath("console_assets")
# The JSON types RapiDoc renders a patternProperties schema of without recursing.
_SCALAR_TYPES: Final = frozenset({"string", "integer", "number", "boolean", "null"})
_TYPES: Final = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".json": b"application/json",
}
# What the console serves, by path below PREFIX, and the file of console_assets/ it is.
_FILES: Final = {
    "": "index.html",
    "console.js": "console.js",
    "console.css": "console.css",
    "explorer.html": "explorer.html",
    "vendor/rapidoc-min.js": "vendor/rapidoc-min.js",
}


def _page_headers(policy: str = CONTENT_SECURITY_POLICY) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-cache"),
    )


def _with_examples(api_document: bytes) -> bytes:
    """Return the API's OpenAPI document pointed at this server, with the samples as examples.

    The aliases RapiDoc cannot render are reduced to their description.
    """
    document = json.loads(api_document)
    document["servers"] = [{"url": "/", "description": "this local server"}]
    examples = _ASSETS.joinpath("examples")
    for route in routes():
        sample = examples.joinpath(f"{route.name}.json")
        if not sample.is_file():
            continue
        operation = document["paths"][route.path][route.http_method.lower()]
        media = operation["requestBody"]["content"]["application/json"]
        media["examples"] = {
            "documentation": {
                "summary": "The API documentation's sample",
                "value": json.loads(sample.read_text()),
            }
        }
    _describe_structured_aliases(document)
    return json.dumps(document, indent=2).encode()


def _describe_structured_aliases(document: dict[str, Any]) -> None:
    """Reduce each proto-name alias of a message, list or map to its description, for RapiDoc."""
    for schema in document["components"]["schemas"].values():
        aliases = schema.get("patternProperties", {})
        for pattern, alias in aliases.items():
            kinds = alias.get("type")
            scalar = set(kinds if isinstance(kinds, list) else [kinds]) <= _SCALAR_TYPES
            if not scalar or "anyOf" in alias or "$ref" in alias:
                aliases[pattern] = {"description": alias.get("description", "")}


def console_documents(api_document: bytes | None) -> dict[str, Document]:
    """Return the console's documents by path: its pages, the explorer and its API document."""
    folder = _ASSETS
    headers = _page_headers()
    documents = {
        PREFIX.rstrip("/"): Document(b"", b"text/plain", 308, ((b"location", PREFIX.encode()),)),
    }
    for path, name in _FILES.items():
        suffix = name[name.rindex(".") :]
        body = folder.joinpath(name).read_bytes()
        page_headers = _page_headers(EXPLORER_POLICY) if name == "explorer.html" else headers
        documents[PREFIX + path] = Document(body, _TYPES[suffix], 200, page_headers)
    if api_document is not None:
        documents[PREFIX + "openapi.json"] = Document(
            _with_examples(api_document), _TYPES[".json"], 200, headers
        )
    return documents
