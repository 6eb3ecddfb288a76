"""The fast decoders' JSON backends: orjson, and the standard library reading as orjson does.

orjson is optional: importing the codec imports no parser, and without
orjson the fast decoders parse with ``json`` instead. Where ``json.loads``
reads a text differently from orjson (UTF-16 bytes, ``NaN``, lone
surrogates, numbers beyond 64 bits or beyond the double range, deep
nesting, and the serializer used to find repeated keys), the stdlib
backend reads it as orjson does, so that a fast decoder decides the same on
either backend, and the codec's outcome is the generic codec's.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia.decision.model import data_field_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision._fastjson import json_backend
from auxia_decision._fastjson.json_backend import JsonBackend
from tests._fixtures import PARSEABLE, Sample
from tests._repo import ROOT
from tests.unit.test_fast_codec import (
    BACKENDS,
    FAST,
    SINK,
    _dump,
    _Object,
    _Style,
    assert_decided_alike,
    fast_outcome,
)

_LOG = interactions.LogTreatmentInteractionRequest
_VALUE = data_field_pb2.DataFieldParams.PropertyValuePb


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Each: a text where json.loads and orjson differ, the mode it is read in,
# and whether the fast decoders (on both backends) accept it.
DIFFERENCES = [
    # Encodings: json.loads(bytes) guesses UTF-16 and UTF-32 and skips a UTF-8 BOM.
    pytest.param(_LOG, '{"projectId": "a"}'.encode("utf-16"), True, False, id="UTF-16 BOM"),
    pytest.param(_LOG, '{"projectId": "a"}'.encode("utf-16-le"), True, False, id="UTF-16-LE"),
    pytest.param(_LOG, '{"projectId": "a"}'.encode("utf-32"), True, False, id="UTF-32"),
    pytest.param(_LOG, b'\xef\xbb\xbf{"projectId": "a"}', True, False, id="UTF-8 BOM"),
    pytest.param(_LOG, b'{"projectId": "\xe9"}', True, False, id="Latin-1"),
    pytest.param(_LOG, '{"projectId": "é"}'.encode(), True, True, id="UTF-8"),
    # Constants: json.loads reads them, orjson refuses them.
    pytest.param(_VALUE, b'{"doubleValue": NaN}', True, False, id="NaN"),
    pytest.param(_VALUE, b'{"doubleValue": Infinity}', True, False, id="Infinity"),
    pytest.param(_VALUE, b'{"doubleValue": -Infinity}', True, False, id="-Infinity"),
    pytest.param(_LOG, b'{"bogus": [NaN]}', False, False, id="NaN ignored"),
    pytest.param(_VALUE, b'{"doubleValue": "NaN"}', True, True, id="NaN quoted"),
    # Surrogates: json.loads keeps a lone one in the string.
    pytest.param(_LOG, b'{"projectId": "\\ud800"}', True, False, id="lone surrogate"),
    pytest.param(_LOG, b'{"bogus": "\\uDFFF"}', False, False, id="lone surrogate ignored"),
    pytest.param(_LOG, b'{"\\ud800": 1}', False, False, id="lone surrogate in a key"),
    pytest.param(_LOG, b'{"bogus": "\\ud83d\\u0041"}', False, False, id="high surrogate alone"),
    pytest.param(_LOG, b'{"bogus": "\\udc00\\ud800"}', False, False, id="surrogates reversed"),
    pytest.param(_LOG, '{"bogus": "\ud800"}', False, False, id="surrogate in a str"),
    pytest.param(
        _LOG, b'{"bogus": "\\ud800", "bogus": 1}', False, False, id="lone surrogate dropped"
    ),
    pytest.param(_LOG, '{"projectId": "\U0001f600"}', True, True, id="astral in a str"),
    pytest.param(_LOG, b'{"projectId": "\\ud83d\\ude00"}', True, True, id="surrogate pair"),
    pytest.param(_LOG, b'{"projectId": "\\\\ud800"}', True, True, id="escaped backslash"),
    # Numbers: orjson reads integers beyond 64 bits as doubles and refuses infinite ones.
    pytest.param(_LOG, b'{"interactionTimeMicros": %d}' % 2**70, True, False, id="70-bit int64"),
    pytest.param(_VALUE, b'{"doubleValue": %d}' % 2**70, True, True, id="70-bit double"),
    pytest.param(_VALUE, b'{"doubleValue": %d}' % (2**70 + 1), True, True, id="70-bit rounded"),
    pytest.param(_LOG, b'{"bogus": %d}' % -(2**70), False, True, id="70-bit ignored"),
    pytest.param(SINK, b'{"uint64Value": %d}' % (2**64 - 1), True, True, id="uint64 max"),
    pytest.param(SINK, b'{"uint64Value": %d}' % 2**64, True, False, id="uint64 max + 1"),
    pytest.param(SINK, b'{"int64Value": %d}' % -(2**63), True, True, id="int64 min"),
    pytest.param(SINK, b'{"int64Value": %d}' % (-(2**63) - 1), True, False, id="int64 min - 1"),
    pytest.param(_VALUE, b'{"doubleValue": %s}' % (b"9" * 400), True, False, id="400 digits"),
    pytest.param(_LOG, b'{"bogus": %s}' % (b"9" * 400), False, False, id="400 digits ignored"),
    pytest.param(_LOG, b'{"bogus": 1e400}', False, False, id="1e400 ignored"),
    pytest.param(_LOG, b'{"bogus": -1E+400}', False, False, id="-1E+400 ignored"),
    pytest.param(_LOG, b'{"bogus": 1e-400}', False, True, id="1e-400 ignored"),
    pytest.param(_VALUE, b'{"doubleValue": 1e-400}', True, True, id="1e-400"),
    pytest.param(_VALUE, b'{"doubleValue": -1e-400}', True, True, id="-1e-400"),
    # Repeated keys: both parsers keep the last value; counting colons finds them.
    pytest.param(_LOG, b'{"projectId": "a", "projectId": "b"}', True, False, id="repeated key"),
    pytest.param(_LOG, b'{"bogus": {"a": 1, "a": 1}}', False, False, id="repeated key ignored"),
    pytest.param(
        SINK, b'{"stringByInt32": {"1": "a", "1": "b"}}', True, False, id="repeated map key"
    ),
    pytest.param(
        _LOG,
        b'{"projectId": "x", "projectId": "\\u003a"}',
        True,
        False,
        id="escaped colon repeated",
    ),
    pytest.param(
        _LOG, b'{"bogus": {"k": "\\u003A", "k": 1}}', False, False, id="escaped colon ignored"
    ),
    pytest.param(
        _LOG, b'{"projectId": "\\u003a", "userId": "a:b"}', True, True, id="escaped colon"
    ),
    pytest.param(_LOG, b'{"projectId": "\\\\u003a:"}', True, True, id="escaped backslash colon"),
    # Nesting: orjson stops at 1024 levels, json.loads at Python's recursion limit.
    pytest.param(_LOG, b'{"bogus": %s}' % _nested(31), False, True, id="depth 32"),
    pytest.param(_LOG, b'{"bogus": %s}' % _nested(33), False, False, id="depth 34"),
    pytest.param(_LOG, b'{"bogus": %s}' % _nested(1000), False, False, id="depth 1001"),
    pytest.param(_LOG, b'{"bogus": %s}' % _nested(1024), False, False, id="depth 1025"),
    pytest.param(_LOG, _nested(100_000), True, False, id="depth 100000"),
]


@pytest.mark.parametrize(("message_type", "text", "strict", "accepted"), DIFFERENCES)
def test_where_json_differs_from_orjson_both_backends_decide_alike(
    message_type: type[Message], text: bytes | str, strict: bool, accepted: bool
) -> None:
    on_orjson = fast_outcome(json_backend.ORJSON, text, message_type, strict=strict)
    on_stdlib = fast_outcome(json_backend.STDLIB, text, message_type, strict=strict)
    assert on_stdlib == on_orjson
    assert (on_stdlib[0] == "message") is accepted
    assert_decided_alike(text, message_type)


# ---------------------------------------------------------------------------
# The parsers themselves: the stdlib backend reads every text as orjson does.


def _typed(value: Any) -> Any:
    """Return a value in a form that equals another only if their types and values are equal."""
    if isinstance(value, dict):
        return ("object", [(key, _typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("array", [_typed(item) for item in value])
    if isinstance(value, float):
        return ("float", repr(value))  # -0.0 is not 0.0
    return (type(value).__name__, value)


def _parsed(loads: Callable[[bytes | str], Any], text: bytes | str) -> Any:
    try:
        return ("document", _typed(loads(text)))
    except Exception:  # a refusal, however worded
        return ("refused",)


def _orjson_loads(text: bytes | str) -> Any:
    return json_backend.ORJSON.parser().loads(text)


def _stdlib_loads(text: bytes | str) -> Any:
    return json_backend.STDLIB.parser().loads(text)


def _json_loads(text: bytes | str) -> Any:
    return json.loads(text)


PARSER_DIFFERENCES = [
    pytest.param('{"a": 1}'.encode("utf-16"), id="UTF-16 BOM"),
    pytest.param('{"a": 1}'.encode("utf-32-be"), id="UTF-32-BE"),
    pytest.param(b'\xef\xbb\xbf{"a": 1}', id="UTF-8 BOM"),
    pytest.param(b'{"a": NaN}', id="NaN"),
    pytest.param(b"[Infinity, -Infinity]", id="Infinity"),
    pytest.param(b'"\\ud800"', id="escaped lone surrogate"),
    pytest.param('"\udfff"', id="lone surrogate in a str"),
    pytest.param(b'{"\\ud83d\\u0041": 1}', id="lone surrogate in a key"),
    pytest.param(b'{"a": {"\\ud800": 1}, "a": 2}', id="lone surrogate dropped"),
    pytest.param(b"%d" % 2**70, id="70-bit integer"),
    pytest.param(b"[%d]" % -(2**64), id="65-bit integer"),
    pytest.param(b"9" * 309, id="309 digits"),
    pytest.param(b"1e400", id="1e400"),
    pytest.param(b"-1.5e309", id="-1.5e309"),
]


@pytest.mark.parametrize("text", PARSER_DIFFERENCES)
def test_the_stdlib_backend_parses_as_orjson_where_json_loads_does_not(
    text: bytes | str,
) -> None:
    assert _parsed(_json_loads, text) != _parsed(_orjson_loads, text)  # a real difference
    assert _parsed(_stdlib_loads, text) == _parsed(_orjson_loads, text)


@pytest.mark.parametrize("depth", [1000, 1024])
def test_nesting_within_orjsons_limit_is_read_alike_unless_the_stdlib_stops(depth: int) -> None:
    # The stdlib may stop sooner (RecursionError at depth 1000 on Python 3.11):
    # the one text the backends read differently, which the decoders refuse
    # either way (DIFFERENCES "depth 1001" and "depth 1025").
    document = _orjson_loads(_nested(depth))
    with contextlib.suppress(RecursionError):
        assert _stdlib_loads(_nested(depth)) == document


_CHARACTERS = st.sampled_from(
    [":", "\\", '"', "/", "é", "\u2028", "\x00", "\x7f", "\U0001f600", "\ud800", "\udc00"]
) | st.characters(exclude_categories=())
_KEYS = st.text(st.sampled_from(["a", ":", "\\", "é", "\ud800"]), max_size=3)


class _Literal(str):
    """A number written as it is (``1e400``, 330 digits)."""

    __slots__ = ()


_NUMBER_LITERALS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,330})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?", fullmatch=True
).map(_Literal)
_SPECIAL_NUMBERS = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        -0.0,
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        2**70,
        _Literal("-0"),
        _Literal("1e400"),
        _Literal("-1E+309"),
        _Literal("1e-400"),
        _Literal("9" * 309),
    ]
)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | _SPECIAL_NUMBERS
    | st.text(_CHARACTERS, max_size=6)
    | _NUMBER_LITERALS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(st.tuples(_KEYS, children), max_size=4).map(_Object)
    ),  # keys may repeat
    max_leaves=16,
)


def _write(value: Any, style: _Style) -> str:
    """Write a value as JSON text: keys may repeat, numbers are as given, NaN is a literal."""
    comma, colon = (",", ":") if style.compact else (", ", ": ")
    if isinstance(value, _Literal):
        return str(value)
    if isinstance(value, _Object):
        members = (f"{_dump(key, style)}{colon}{_write(item, style)}" for key, item in value)
        return "{" + comma.join(members) + "}"
    if isinstance(value, list):
        return "[" + comma.join(_write(item, style) for item in value) + "]"
    return _dump(value, style)


# None: the text as a str.
_ENCODINGS = [None, "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"]


def _repeated_keys_found(backend: JsonBackend, text: bytes | str) -> Any:
    parser = backend.parser()
    return _parsed(lambda text: parser.check_no_repeated_keys(text, parser.loads(text)), text)


@given(value=_VALUES, data=st.data())
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_backends_parse_every_text_alike(value: Any, data: st.DataObject) -> None:
    style = _Style(
        compact=data.draw(st.booleans(), label="compact"),
        ensure_ascii=data.draw(st.booleans(), label="ensure_ascii"),
        escape_colons=data.draw(st.booleans(), label="escape colons"),
    )
    text = _write(value, style)
    if data.draw(st.booleans(), label="damaged"):
        position = data.draw(st.integers(0, len(text)), label="position")
        edit = data.draw(st.sampled_from(list(':,"\\{}[]u0d8e9-. ')), label="edit")
        text = text[:position] + edit + text[position + 1 :]
    encoding = data.draw(st.sampled_from(_ENCODINGS), label="encoding")
    raw = text if encoding is None else text.encode(encoding, "surrogatepass")
    on_orjson = _parsed(_orjson_loads, raw)
    assert _parsed(_stdlib_loads, raw) == on_orjson
    if on_orjson[0] == "document":
        # The same repeated keys found, by the colons of the document written again.
        on_stdlib = _repeated_keys_found(json_backend.STDLIB, raw)
        assert on_stdlib == _repeated_keys_found(json_backend.ORJSON, raw)


# ---------------------------------------------------------------------------
# orjson is optional: imported on first need, and replaced by the stdlib without it.


def _run(code: str) -> str:
    """Run Python code in a fresh interpreter, from the repository, and return its output."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_codec_does_not_import_orjson() -> None:
    code = "import sys, auxia_decision._codec; print('orjson' in sys.modules)"
    assert _run(code).split() == ["False"]


def test_orjson_is_imported_by_the_first_fast_decoder_not_by_encoding() -> None:
    code = """if True:
        import sys
        from auxia_decision._codec import RestCodec
        from auxia.decision.model import treatment_interaction_service_pb2 as interactions
        codec = RestCodec()
        message = interactions.LogTreatmentInteractionRequest(project_id="p")
        codec.encode(message)
        print("orjson" in sys.modules)
        codec.decode_request(b'{"projectId": "p"}', type(message))
        print("orjson" in sys.modules)
    """
    assert _run(code).split() == ["False", "True"]


_WITHOUT_ORJSON = """if True:
    import json, sys
    sys.modules["orjson"] = None  # import orjson raises ImportError
    from auxia_decision._codec import RestCodec
    from auxia_decision import _fastjson
    from auxia_decision._fastjson import json_backend
    from tests._fixtures import PARSEABLE
    codec = RestCodec()
    results = {}
    for sample in PARSEABLE:
        text = sample.path.read_bytes()
        decode = codec.decode_request if sample.is_request else codec.decode_response
        message = decode(text, sample.message_type)
        fast = _fastjson.decoder(sample.message_type, strict=sample.is_request)
        results[sample.name] = {
            "message": message.SerializeToString(deterministic=True).hex(),
            "decided by the fast decoder": fast(text) == message,
            "encoded": codec.encode(message).decode(),
        }
    print(json.dumps({"backend": json_backend.in_use().name, "results": results}))
"""


@pytest.fixture(scope="module")
def without_orjson() -> dict[str, Any]:
    """What a fresh interpreter in which orjson cannot be imported decodes and encodes."""
    found: dict[str, Any] = json.loads(_run(_WITHOUT_ORJSON))
    return found


def test_without_orjson_the_stdlib_backend_is_in_use(without_orjson: dict[str, Any]) -> None:
    assert without_orjson["backend"] == json_backend.STDLIB.name
    assert json_backend.in_use() is json_backend.ORJSON  # here, where orjson is installed


@pytest.mark.parametrize("sample", PARSEABLE, ids=lambda sample: sample.name)
def test_without_orjson_fixtures_decode_and_encode_the_same(
    without_orjson: dict[str, Any], sample: Sample
) -> None:
    decode = FAST.decode_request if sample.is_request else FAST.decode_response
    message = decode(sample.path.read_bytes(), sample.message_type)
    assert without_orjson["results"][sample.name] == {
        "message": message.SerializeToString(deterministic=True).hex(),
        "decided by the fast decoder": True,
        "encoded": FAST.encode(message).decode(),
    }


def test_a_backend_is_loaded_once() -> None:
    for backend in BACKENDS:
        assert backend.parser() is backend.parser()
    assert json_backend.in_use() is json_backend.in_use()
    assert repr(json_backend.STDLIB) == "JsonBackend('stdlib')"
