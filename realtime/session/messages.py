"""Protocol v1 wire messages: typed shapes, client-message validation, both framings.

Every message is a map with a ``type``. Binary frames carry one msgpack map, text frames one
JSON object (byte fields as base64). ``decode_frame`` turns a frame into a plain value or raises
``FrameError`` (the connection must close with its ``close_code``); ``parse_client`` turns that
value into a typed client message or raises ``MessageError`` (an ``error`` answers it and the
session goes on); ``encode`` writes a server message in a framing.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast, get_args

import msgpack

from realtime.errors import InputError, RealtimeError
from realtime.kokoro import MAX_SPEED, MIN_SPEED

__all__ = [
    "CLIENT_TYPES", "DEFAULT_CONTEXT", "PROTOCOL_VERSION", "AlignmentMessage", "AudioMessage",
    "CancelMessage", "CancelledMessage", "ClientMessage", "DoneMessage", "EndMessage",
    "ErrorCode", "ErrorMessage", "FlushMessage", "FlushedMessage", "FrameError", "Framing",
    "Limits", "MessageError", "MetricsMessage", "PhonemesMessage", "PingMessage", "PongMessage",
    "ReadyMessage", "ServerMessage", "StartMessage", "TextMessage", "UpdateMessage",
    "WordMessage", "decode_frame", "encode", "parse_client", "parse_query",
]

PROTOCOL_VERSION = 1
DEFAULT_CONTEXT = "default"

Framing = Literal["msgpack", "json", "twilio"]
ErrorCode = Literal["bad_message", "unknown_type", "unknown_voice", "bad_value", "too_long",
                    "rate_limited", "too_many_contexts", "context_refused", "overloaded",
                    "engine_lost", "internal"]
Timestamps = Literal["word", "none"]
MessageId = str | int

# Close codes of the contract.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013


class MessageError(InputError):
    """A client message refused with an ``error`` message; the session stays open."""

    code: ErrorCode

    def __init__(self, code: ErrorCode, reason: str, context_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.context_id = context_id


class FrameError(RealtimeError):
    """A frame that cannot be read at all: the connection closes with ``close_code``."""

    code = "bad_frame"

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code


@dataclass(frozen=True, slots=True)
class Limits:
    """What one session may send; sent to the client in ``ready``."""

    max_message_bytes: int = 65536  # a bigger frame closes the connection with 1009
    max_text_chars: int = 10000  # one text/phonemes field; longer: error too_long
    max_buffered_chars: int = 20000  # per context, text received but not yet voiced
    max_contexts: int = 16  # open at once; one more: error too_many_contexts
    max_id_chars: int = 128  # context_id, flush_id, ping id, voice, names
    rate_messages_per_s: float = 100.0  # token bucket refill
    rate_burst: int = 200  # token bucket size
    rate_close_after: int = 100  # refused messages in a row before close 1008
    min_speed: float = MIN_SPEED
    max_speed: float = MAX_SPEED
    max_buffer_delay_ms: float = 10000.0
    idle_timeout_s: float | None = None  # no message and nothing to synthesise: close 1000

    def as_wire(self) -> dict[str, int | float]:
        """The limits a client needs to know (``ready``'s ``limits``)."""
        return {
            "max_message_bytes": self.max_message_bytes,
            "max_text_chars": self.max_text_chars,
            "max_buffered_chars": self.max_buffered_chars,
            "max_contexts": self.max_contexts,
            "max_id_chars": self.max_id_chars,
            "rate_messages_per_s": self.rate_messages_per_s,
            "rate_burst": self.rate_burst,
            "min_speed": self.min_speed,
            "max_speed": self.max_speed,
            **({} if self.idle_timeout_s is None else {"idle_timeout_s": self.idle_timeout_s}),
        }


# Client -> server. ``context_id`` is always filled in (``"default"`` when absent).

class StartMessage(TypedDict):
    type: Literal["start"]
    context_id: str
    voice: NotRequired[str]
    speed: NotRequired[float]
    codec: NotRequired[str]
    sample_rate: NotRequired[int]
    frame_ms: NotRequired[int]
    language: NotRequired[str]
    timestamps: NotRequired[Timestamps]
    max_buffer_delay_ms: NotRequired[float]


class TextMessage(TypedDict):
    type: Literal["text"]
    context_id: str
    text: str


class PhonemesMessage(TypedDict):
    type: Literal["phonemes"]
    context_id: str
    phonemes: str


class FlushMessage(TypedDict):
    type: Literal["flush"]
    context_id: str
    flush_id: NotRequired[MessageId]


class UpdateMessage(TypedDict):
    type: Literal["update"]
    context_id: str
    voice: NotRequired[str]
    speed: NotRequired[float]


class CancelMessage(TypedDict):
    type: Literal["cancel"]
    context_id: str
    played_ms: NotRequired[float]


class EndMessage(TypedDict):
    type: Literal["end"]
    context_id: str


class PingMessage(TypedDict):
    type: Literal["ping"]
    id: NotRequired[MessageId]


ClientMessage = (StartMessage | TextMessage | PhonemesMessage | FlushMessage | UpdateMessage
                 | CancelMessage | EndMessage | PingMessage)

# Server -> client.

class ReadyMessage(TypedDict):
    type: Literal["ready"]
    session_id: str
    protocol: int
    codecs: list[str]
    sample_rates: dict[str, list[int]]
    voices: list[str]
    limits: dict[str, int | float]
    defaults: dict[str, str | int | float]  # an extension: the session's defaults


class AudioMessage(TypedDict):
    type: Literal["audio"]
    context_id: str
    seq: int
    offset_ms: float
    duration_ms: float
    data: bytes


class WordMessage(TypedDict):
    word: str
    start_ms: float
    end_ms: float
    char_start: int
    char_end: int


class AlignmentMessage(TypedDict):
    type: Literal["alignment"]
    context_id: str
    chunk: int  # an extension: the chunk it describes
    words: list[WordMessage]


class MetricsMessage(TypedDict):
    type: Literal["metrics"]
    context_id: str
    chunk: int
    text: str
    queued_ms: float
    inference_ms: float
    batch_size: int
    audio_ms: float
    rtf: float
    first_audio_ms: NotRequired[float]


class FlushedMessage(TypedDict):
    type: Literal["flushed"]
    context_id: str
    flush_id: MessageId | None


class CancelledMessage(TypedDict):
    type: Literal["cancelled"]
    context_id: str
    audio_sent_ms: float
    text_spoken: str
    text_unspoken: str


class DoneMessage(TypedDict):
    type: Literal["done"]
    context_id: str
    audio_ms: float
    chunks: int


class ErrorMessage(TypedDict):
    type: Literal["error"]
    code: ErrorCode
    message: str
    context_id: NotRequired[str]


class PongMessage(TypedDict):
    type: Literal["pong"]
    id: MessageId | None


ServerMessage = (ReadyMessage | AudioMessage | AlignmentMessage | MetricsMessage
                 | FlushedMessage | CancelledMessage | DoneMessage | ErrorMessage | PongMessage)


# Framing.

def decode_frame(frame: bytes | str, max_bytes: int) -> object:
    """One frame -> the value it carries.

    Raises ``FrameError``: 1009 too big, 1007 unreadable (bad msgpack, JSON or UTF-8), 1003
    neither bytes nor text.
    """
    if isinstance(frame, bytearray | memoryview):
        frame = bytes(frame)
    if not isinstance(frame, bytes | str):
        raise FrameError(CLOSE_UNSUPPORTED, f"a frame is bytes or text, not {_kind(frame)}")
    size = len(frame) if isinstance(frame, bytes) else _utf8_size(frame)
    if size > max_bytes:
        raise FrameError(CLOSE_TOO_BIG, f"message of {size} bytes; the limit is {max_bytes}")
    try:
        if isinstance(frame, bytes):
            return msgpack.unpackb(frame, raw=False, strict_map_key=False)
        return json.loads(frame, parse_constant=_no_constant)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as e:
        kind = "msgpack" if isinstance(frame, bytes) else "JSON"
        raise FrameError(CLOSE_INVALID_PAYLOAD, f"invalid {kind}: {e}"[:120]) from e


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise FrameError(CLOSE_INVALID_PAYLOAD, "text frame is not valid UTF-8") from e


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def encode(message: ServerMessage | dict[str, Any], framing: Framing) -> bytes | str:
    """A server message as a frame: msgpack bytes, or JSON text (``json``, ``twilio``)."""
    if framing == "msgpack":
        return cast(bytes, msgpack.packb(message, use_bin_type=True))
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=_b64)


def _b64(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__}")


# Validation of client messages.

CLIENT_TYPES = ("start", "text", "phonemes", "flush", "update", "cancel", "end", "ping")
_Check = Literal["text", "id", "name", "speed", "int", "ms", "delay", "timestamps"]
_FIELDS: dict[str, dict[str, _Check]] = {
    "start": {"voice": "name", "speed": "speed", "codec": "name", "sample_rate": "int",
              "frame_ms": "int", "language": "name", "timestamps": "timestamps",
              "max_buffer_delay_ms": "delay"},
    "text": {"text": "text"},
    "phonemes": {"phonemes": "text"},
    "flush": {"flush_id": "id"},
    "update": {"voice": "name", "speed": "speed"},
    "cancel": {"played_ms": "ms"},
    "end": {},
    "ping": {"id": "id"},
}
_REQUIRED = {"text": "text", "phonemes": "phonemes"}


def parse_client(value: object, limits: Limits) -> ClientMessage:
    """Validate a decoded frame as a client message; raises ``MessageError`` with the code."""
    if not isinstance(value, dict):
        raise MessageError("bad_message", f"a message is a map, not {_kind(value)}")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise MessageError("bad_message", "a message needs a string 'type'")
    if kind not in _FIELDS:
        raise MessageError("unknown_type", f"unknown message type {kind[:40]!r}")
    out: dict[str, object] = {"type": kind}
    context_id: str | None = None
    if kind != "ping":
        raw = value.get("context_id")
        if raw is None:
            raw = DEFAULT_CONTEXT
        context_id = _string(raw, "context_id", limits.max_id_chars, None)
        if not context_id:
            raise MessageError("bad_value", "context_id must not be empty")
        out["context_id"] = context_id
    required = _REQUIRED.get(kind)
    if required is not None and required not in value:
        raise MessageError("bad_message", f"'{kind}' needs a '{required}' field", context_id)
    for field, check in _FIELDS[kind].items():
        if field in value and (value[field] is not None or check == "id" or field == required):
            out[field] = _check(check, field, value[field], limits, context_id)
    return cast(ClientMessage, out)


def parse_query(query: Mapping[str, str], limits: Limits) -> dict[str, Any]:
    """Session defaults from the connection's query (strings), checked as ``start`` fields.

    Returns the fields given (``voice``, ``speed``, ``codec``, ``sample_rate``, ``frame_ms``,
    ``language``, ``framing``); raises ``MessageError`` (``bad_value``) for a bad one.
    """
    out: dict[str, Any] = {}
    framing = query.get("framing")
    if framing is not None:
        if framing not in get_args(Framing):
            raise MessageError("bad_value", "framing must be msgpack, json or twilio")
        out["framing"] = framing
    raw: dict[str, object] = {"type": "start"}
    for key, kind in (("voice", str), ("codec", str), ("language", str), ("speed", float),
                      ("sample_rate", int), ("frame_ms", int)):
        if key in query:
            try:
                raw[key] = kind(query[key])
            except ValueError as e:
                raise MessageError("bad_value", f"{key} must be a number") from e
    fields = parse_client(raw, limits)
    out.update((k, v) for k, v in fields.items() if k not in ("type", "context_id"))
    return out


def _check(check: _Check, field: str, v: object, limits: Limits, ctx: str | None) -> object:
    if check == "text":
        return _string(v, field, limits.max_text_chars, ctx)
    if check == "name":
        return _string(v, field, limits.max_id_chars, ctx)
    if check == "id":
        if v is None or _is_int(v):
            return v
        return _string(v, field, limits.max_id_chars, ctx)
    if check == "timestamps":
        if v not in ("word", "none"):
            raise MessageError("bad_value", "timestamps must be 'word' or 'none'", ctx)
        return v
    if check == "int":
        if not _is_int(v):
            raise MessageError("bad_value", f"{field} must be an integer", ctx)
        return v
    number = _number(v, field, ctx)
    if check == "speed":
        if not limits.min_speed <= number <= limits.max_speed:
            raise MessageError("bad_value", f"speed must be {limits.min_speed}.."
                               f"{limits.max_speed}", ctx)
    elif check == "delay":
        if not 0 <= number <= limits.max_buffer_delay_ms:
            raise MessageError("bad_value", f"{field} must be 0..{limits.max_buffer_delay_ms}",
                               ctx)
    elif number < 0:
        raise MessageError("bad_value", f"{field} must be >= 0", ctx)
    return number


def _string(v: object, field: str, limit: int, ctx: str | None) -> str:
    if not isinstance(v, str):
        raise MessageError("bad_value", f"{field} must be a string, not {_kind(v)}", ctx)
    if len(v) > limit:
        raise MessageError("too_long", f"{field} has {len(v)} characters; the limit is {limit}",
                           ctx)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates from JSON "\ud800"
        raise MessageError("bad_value", f"{field} is not valid Unicode", ctx) from e
    return v


def _number(v: object, field: str, ctx: str | None) -> float:
    if _is_int(v) or isinstance(v, float):
        try:
            number = float(cast(float, v))
        except OverflowError:  # a JSON integer of hundreds of digits
            number = math.inf
        if math.isfinite(number):
            return number
    raise MessageError("bad_value", f"{field} must be a finite number", ctx)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _kind(v: object) -> str:
    return {dict: "a map", list: "a list", str: "a string", bytes: "bytes", bool: "a boolean",
            type(None): "null"}.get(type(v), type(v).__name__)
