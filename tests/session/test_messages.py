"""Wire messages: frame decoding (close codes), client validation (error codes), encoding."""

from __future__ import annotations

import base64
import contextlib
import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.session.messages import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_TOO_BIG,
    FrameError,
    Limits,
    MessageError,
    decode_frame,
    encode,
    parse_client,
    parse_query,
)

LIMITS = Limits()


# decode_frame

def test_decode_both_framings() -> None:
    msg = {"type": "text", "text": "héllo"}
    assert decode_frame(msgpack.packb(msg), 1000) == msg
    assert decode_frame(json.dumps(msg), 1000) == msg


@pytest.mark.parametrize("frame", [b"\x81" + b"x" * 100, "x" * 101, "é" * 51])
def test_too_big_is_1009(frame: bytes | str) -> None:
    with pytest.raises(FrameError) as e:
        decode_frame(frame, 100)
    assert e.value.close_code == CLOSE_TOO_BIG


@pytest.mark.parametrize("frame", [
    b"\xc1",  # never used in msgpack
    b"\x82\xa4type",  # truncated map
    msgpack.packb({"type": "ping"}) + b"\x00",  # trailing data
    b"\xa2\xff\xfe",  # a str that is not UTF-8
    b"\x81\x91\x01\x01",  # a list as a map key
    "{not json",
    '{"type": "ping"} extra',
    '{"speed": NaN}',
    "[" * 100000 + "]" * 100000,
    "\ud800",  # a lone surrogate cannot be UTF-8
])
def test_unreadable_is_1007(frame: bytes | str) -> None:
    with pytest.raises(FrameError) as e:
        decode_frame(frame, 10**6)
    assert e.value.close_code == CLOSE_INVALID_PAYLOAD


def test_bytes_like_and_other_frames() -> None:
    assert decode_frame(bytearray(msgpack.packb({"type": "ping"})), 100) == {"type": "ping"}
    with pytest.raises(FrameError) as e:
        decode_frame(42, 100)  # type: ignore[arg-type]
    assert e.value.close_code == 1003


# parse_client

@pytest.mark.parametrize("raw, expected", [
    ({"type": "text", "text": "hi"}, {"type": "text", "context_id": "default", "text": "hi"}),
    ({"type": "phonemes", "context_id": "a", "phonemes": "hˈI"},
     {"type": "phonemes", "context_id": "a", "phonemes": "hˈI"}),
    ({"type": "start", "context_id": "c", "voice": "af_heart", "speed": 1, "codec": "opus",
      "sample_rate": 48000, "frame_ms": 20, "language": "en-gb", "timestamps": "none",
      "max_buffer_delay_ms": 200, "extra": [1, 2]},
     {"type": "start", "context_id": "c", "voice": "af_heart", "speed": 1.0, "codec": "opus",
      "sample_rate": 48000, "frame_ms": 20, "language": "en-gb", "timestamps": "none",
      "max_buffer_delay_ms": 200.0}),
    ({"type": "flush", "flush_id": 7}, {"type": "flush", "context_id": "default", "flush_id": 7}),
    ({"type": "flush", "flush_id": "f"},
     {"type": "flush", "context_id": "default", "flush_id": "f"}),
    ({"type": "flush"}, {"type": "flush", "context_id": "default"}),
    ({"type": "update", "speed": 1.5}, {"type": "update", "context_id": "default", "speed": 1.5}),
    ({"type": "cancel", "played_ms": 120},
     {"type": "cancel", "context_id": "default", "played_ms": 120.0}),
    ({"type": "cancel", "played_ms": None}, {"type": "cancel", "context_id": "default"}),
    ({"type": "end", "context_id": "x"}, {"type": "end", "context_id": "x"}),
    ({"type": "end", "context_id": None}, {"type": "end", "context_id": "default"}),
    ({"type": "ping", "id": "p1"}, {"type": "ping", "id": "p1"}),
    ({"type": "ping"}, {"type": "ping"}),
])
def test_parse_valid(raw: dict[str, object], expected: dict[str, object]) -> None:
    assert parse_client(raw, LIMITS) == expected


@pytest.mark.parametrize("raw, code", [
    ([1, 2], "bad_message"),
    ("text", "bad_message"),
    (None, "bad_message"),
    ({"text": "no type"}, "bad_message"),
    ({"type": 3}, "bad_message"),
    ({"type": "speak"}, "unknown_type"),
    ({"type": "text"}, "bad_message"),
    ({"type": "text", "text": 5}, "bad_value"),
    ({"type": "text", "text": b"bytes"}, "bad_value"),
    ({"type": "text", "text": None}, "bad_value"),
    ({"type": "text", "text": "x" * (LIMITS.max_text_chars + 1)}, "too_long"),
    ({"type": "text", "text": "\ud83d"}, "bad_value"),
    ({"type": "text", "text": "a", "context_id": 5}, "bad_value"),
    ({"type": "text", "text": "a", "context_id": ""}, "bad_value"),
    ({"type": "text", "text": "a", "context_id": "c" * 129}, "too_long"),
    ({"type": "start", "speed": "fast"}, "bad_value"),
    ({"type": "start", "speed": True}, "bad_value"),
    ({"type": "start", "speed": 9.0}, "bad_value"),
    ({"type": "start", "speed": float("nan")}, "bad_value"),
    ({"type": "start", "speed": 10**400}, "bad_value"),
    ({"type": "start", "sample_rate": 8000.0}, "bad_value"),
    ({"type": "start", "frame_ms": "20"}, "bad_value"),
    ({"type": "start", "voice": ["af"]}, "bad_value"),
    ({"type": "start", "voice": "v" * 500}, "too_long"),
    ({"type": "start", "timestamps": "char"}, "bad_value"),
    ({"type": "start", "max_buffer_delay_ms": -1}, "bad_value"),
    ({"type": "cancel", "played_ms": -5}, "bad_value"),
    ({"type": "cancel", "played_ms": "5"}, "bad_value"),
    ({"type": "flush", "flush_id": 1.5}, "bad_value"),
    ({"type": "flush", "flush_id": {"a": 1}}, "bad_value"),
    ({"type": "ping", "id": "i" * 1000}, "too_long"),
])
def test_parse_refused(raw: object, code: str) -> None:
    with pytest.raises(MessageError) as e:
        parse_client(raw, LIMITS)
    assert e.value.code == code
    assert e.value.reason


def test_refusal_names_the_context() -> None:
    with pytest.raises(MessageError) as e:
        parse_client({"type": "text", "context_id": "c7", "text": 1}, LIMITS)
    assert e.value.context_id == "c7"


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
_FIELD_NAMES = st.sampled_from(["type", "context_id", "text", "phonemes", "voice", "speed",
                                "codec", "sample_rate", "frame_ms", "flush_id", "played_ms",
                                "id", "timestamps", "max_buffer_delay_ms", "language"])
_TYPES = st.sampled_from(["start", "text", "phonemes", "flush", "update", "cancel", "end",
                          "ping", "nope"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_FIELD_NAMES, _VALUES, max_size=6), _TYPES)
def test_parse_never_raises_anything_else(raw: dict[str, object], kind: str) -> None:
    raw = {**raw, "type": kind} if "type" not in raw else raw
    with contextlib.suppress(MessageError):
        parse_client(raw, LIMITS)


# encode

def test_encode_msgpack_keeps_bytes() -> None:
    msg = {"type": "audio", "context_id": "c", "seq": 0, "offset_ms": 0, "duration_ms": 20,
           "data": b"\x00\x01\xff"}
    frame = encode(msg, "msgpack")
    assert isinstance(frame, bytes)
    assert msgpack.unpackb(frame) == msg


@pytest.mark.parametrize("framing", ["json", "twilio"])
def test_encode_json_base64_bytes(framing: str) -> None:
    msg = {"type": "audio", "context_id": "c", "seq": 0, "offset_ms": 0, "duration_ms": 20,
           "data": b"\x00\x01\xff"}
    frame = encode(msg, framing)  # type: ignore[arg-type]
    assert isinstance(frame, str)
    back = json.loads(frame)
    assert base64.b64decode(back["data"]) == b"\x00\x01\xff"
    assert {**back, "data": msg["data"]} == msg


def test_encode_json_keeps_unicode() -> None:
    frame = encode({"type": "pong", "id": "é—"}, "json")
    assert frame == '{"type":"pong","id":"é—"}'


def test_parse_query() -> None:
    assert parse_query({"speed": "1.5", "sample_rate": "8000", "codec": "mulaw",
                        "framing": "twilio", "token": "secret"}, LIMITS) == {
        "speed": 1.5, "sample_rate": 8000, "codec": "mulaw", "framing": "twilio"}
    for bad in ({"framing": "xml"}, {"sample_rate": "8k"}, {"speed": "nan"},
                {"voice": "v" * 200}):
        with pytest.raises(MessageError):
            parse_query(bad, LIMITS)
