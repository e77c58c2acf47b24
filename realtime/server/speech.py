"""``POST /v1/audio/speech``, OpenAI-compatible: text in, audio out, whole or streamed.

The body is validated here; the audio takes a WebSocket session's path (``utterance.speak``:
the session protocol's chunks and deadlines, the same engine client) and its 24 kHz PCM is
re-encoded in the response format as it comes. A client that goes away cancels what is left.

What OpenAI's own clients send works as it is: its voice names through a table
(``realtime.voice_names.openai_voices``), ``pcm`` and ``mp3`` streamed, ``stream_format: sse``
as OpenAI's events, any ``model``, ``instructions`` ignored.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from realtime.codecs import INPUT_RATE, make_encoder
from realtime.codecs.mp3 import Mp3Stream
from realtime.codecs.ogg import OggOpusStream
from realtime.codecs.wav import wav_header
from realtime.engine.client import EngineClient
from realtime.engine.info import ModelInfo
from realtime.engine.request import ChunkResult
from realtime.errors import InputError, RealtimeError, VoiceError
from realtime.kokoro import MAX_SPEED, MIN_SPEED
from realtime.text.languages import AUTO, LANGUAGES
from realtime.text.phonemize import Phonemizer
from realtime.voice_names import blend_language, parse_blend

from .metrics import ServerMetrics
from .utterance import Utterance, speak

log = logging.getLogger("realtime.server")

# response_format -> media type. OpenAI's aac and flac are not offered (no encoder here).
FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm", "mp3": "audio/mpeg", "opus": "audio/ogg",
           "mulaw": "audio/basic"}
# Streamed unless the body says "stream": false: OpenAI streams them, and its clients read them
# as they come (pipecat's pcm, LiveKit's mp3).
STREAMED = frozenset({"pcm", "mp3"})
STREAM_FORMATS = ("audio", "sse")  # OpenAI's stream_format: the bytes, or its SSE events
SSE_MEDIA = "text/event-stream"
SPEED_RANGE = (MIN_SPEED, MAX_SPEED)
OPENAI_SPEED_RANGE = (0.25, 4.0)


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    input: str
    voice: str  # the model's voice or blend (an OpenAI name already resolved)
    response_format: str
    speed: float
    stream: bool  # the body sent as it is made (chunked) rather than whole
    language: str  # the G2P language, resolved (never auto)
    sse: bool = False  # stream_format sse: the audio as OpenAI's speech.audio.* events

    @property
    def media_type(self) -> str:
        return SSE_MEDIA if self.sse else FORMATS[self.response_format]


def resolve_voice(spec: str, info: ModelInfo, aliases: Mapping[str, str]) -> str:
    """The voice or blend to speak for ``spec``: the model's own voices (and blends) as they
    are; otherwise an OpenAI name (``aliases``) as its Kokoro voice. ``VoiceError`` names what
    is missing."""
    if spec in aliases and spec not in info.voices:
        mapped = aliases[spec]
        if not _has(info, mapped):
            raise VoiceError(f"voice {spec!r} maps to {mapped!r}, which model {info.name} does "
                             "not have; set REALTIME_OPENAI_VOICES (e.g. "
                             f"{spec}={info.default_voice})")
        return mapped
    info.check_voice(spec)
    return spec


def available_aliases(info: ModelInfo, aliases: Mapping[str, str]) -> dict[str, str]:
    """The OpenAI names this model can speak (``/v1/voices``)."""
    return {name: voice for name, voice in aliases.items() if _has(info, voice)}


def _has(info: ModelInfo, spec: str) -> bool:
    return all(name in info.voices for name, _ in parse_blend(spec))


def parse_speech(body: Any, default_voice: str, max_chars: int,
                 resolve: Callable[[str], str],
                 default_language: str = AUTO) -> SpeechRequest:
    """Validate the JSON body; raises InputError (or VoiceError) naming the bad field.

    ``resolve`` turns the body's voice into the model's (``resolve_voice``). ``language`` (our
    extension to OpenAI's body) picks the G2P; absent or ``auto``, the voice's own. ``model``
    and ``instructions`` are accepted (strings) and ignored: there is one model, and Kokoro
    takes no style prompt."""
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise InputError("'input' must be a non-empty string")
    if len(text) > max_chars:
        raise InputError(f"'input' has {len(text)} characters; the limit is {max_chars}")
    for ignored in ("model", "instructions"):
        if body.get(ignored) is not None and not isinstance(body[ignored], str):
            raise InputError(f"'{ignored}' must be a string (it is accepted and ignored)")
    voice = body.get("voice", default_voice)
    if not isinstance(voice, str) or not voice:
        raise InputError("'voice' must be a voice name or a blend like a(2)+b(1)")
    voice = resolve(voice)
    fmt = body.get("response_format", "wav")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise InputError(f"response_format {fmt!r} is not supported; use one of "
                         + ", ".join(FORMATS))
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        raise InputError("'speed' must be a number")
    if not SPEED_RANGE[0] <= float(speed) <= SPEED_RANGE[1]:
        raise InputError(f"'speed' must be within {SPEED_RANGE[0]}..{SPEED_RANGE[1]} on this "
                         f"server (OpenAI's range is {OPENAI_SPEED_RANGE[0]}.."
                         f"{OPENAI_SPEED_RANGE[1]}), got {speed}")
    stream_format = body.get("stream_format", "audio")
    if stream_format not in STREAM_FORMATS:
        raise InputError(f"'stream_format' must be {' or '.join(STREAM_FORMATS)}, "
                         f"got {stream_format!r}")
    stream = body.get("stream", fmt in STREAMED or stream_format == "sse")
    if not isinstance(stream, bool):
        raise InputError("'stream' must be true or false")
    language = body.get("language", default_language)
    if language != AUTO and (not isinstance(language, str) or language not in LANGUAGES):
        raise InputError(f"'language' must be {AUTO} (the voice's) or one of "
                         f"{', '.join(LANGUAGES)}")
    if language == AUTO:
        language = blend_language(voice)
    return SpeechRequest(text, voice, fmt, float(speed), stream, language,
                         stream_format == "sse")


class _Codec(Protocol):
    """One response format's bytes from 24 kHz PCM16: a header, the audio as it comes, a tail."""

    def head(self) -> bytes: ...

    def push(self, pcm: bytes) -> bytes: ...

    def tail(self) -> bytes: ...


class _Raw:  # pcm, and wav's data after its header
    def __init__(self, header: bytes = b"") -> None:
        self._header = header

    def head(self) -> bytes:
        return self._header

    def push(self, pcm: bytes) -> bytes:
        return pcm

    def tail(self) -> bytes:
        return b""


class _OggOpus:
    def __init__(self) -> None:
        self._ogg = OggOpusStream(sample_rate=48_000)

    def head(self) -> bytes:
        return self._ogg.header()

    def push(self, pcm: bytes) -> bytes:
        return self._ogg.push(_samples(pcm))

    def tail(self) -> bytes:
        return self._ogg.finish()


class _Mp3:
    def __init__(self) -> None:
        self._mp3 = Mp3Stream(INPUT_RATE)

    def head(self) -> bytes:
        return b""

    def push(self, pcm: bytes) -> bytes:
        return self._mp3.push(_samples(pcm))

    def tail(self) -> bytes:
        return self._mp3.finish()


class _Mulaw:
    def __init__(self) -> None:
        self._frames = make_encoder("mulaw", 8000, 20)

    def head(self) -> bytes:
        return b""

    def push(self, pcm: bytes) -> bytes:
        return b"".join(f.data for f in self._frames.push(_samples(pcm)))

    def tail(self) -> bytes:
        return b"".join(f.data for f in self._frames.flush())


def _codec(fmt: str, unknown_length: bool) -> _Codec:
    """A whole WAV gets its header from the caller, who knows the length; one of unknown
    length (streamed, or inside SSE events) starts with the header of unknown sizes."""
    if fmt == "wav":
        return _Raw(wav_header(INPUT_RATE, None) if unknown_length else b"")
    return {"pcm": _Raw, "mp3": _Mp3, "opus": _OggOpus, "mulaw": _Mulaw}[fmt]()


def _sse_delta(data: bytes) -> bytes:
    return _sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})


def _sse(event: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


# No tokens are counted here; zeros rather than no usage, for clients that read the fields.
SSE_DONE = _sse({"type": "speech.audio.done",
                 "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}})


async def synthesize_speech(req: SpeechRequest, engine: EngineClient,
                            phonemizer: Callable[[str], Phonemizer], metrics: ServerMetrics,
                            plan_rtf: Callable[[], float | None] | None = None
                            ) -> AsyncGenerator[bytes, None]:
    """Bytes of the response body, in order, as the engine makes the audio (streamed WAV has a
    header with unknown sizes; the whole-file WAV is built by the caller from ``pcm``); with
    ``sse``, each encoded piece as a ``speech.audio.delta`` event, then ``speech.audio.done``.
    Nothing is yielded before the first audio, so an error before it can still get its own
    status."""
    utterance = Utterance(req.input, req.voice, req.speed, req.language)

    def first_audio(message: Mapping[str, Any]) -> None:
        first = message.get("first_audio_ms")
        if isinstance(first, int | float):
            metrics.first_audio.observe(first / 1000.0)

    audio = speak(utterance, engine, phonemizer, observe=first_audio, plan_rtf=plan_rtf,
                  on_result=lambda res: observe_chunk(metrics, res, engine.clock()),
                  owner="http")
    codec = _codec(req.response_format, req.stream or req.sse)
    frame: Callable[[bytes], bytes] = _sse_delta if req.sse else bytes
    head = codec.head()
    try:
        async with contextlib.aclosing(audio):  # a client gone mid-way: nothing more runs
            async for pcm in audio:
                data, head = head + codec.push(pcm), b""
                if data:
                    yield frame(data)
        tail = codec.tail()
        if tail:
            yield frame(tail)
        if req.sse:
            yield SSE_DONE
        metrics.requests.labels("ok").inc()
    except RealtimeError:
        metrics.requests.labels("error").inc()
        raise


def _samples(pcm: bytes) -> np.ndarray:
    """PCM16-LE -> float32 in [-1, 1] (the inverse of ``codecs.wav.to_int16``)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767.0


def observe_chunk(metrics: ServerMetrics, res: ChunkResult, now: float) -> None:
    """A chunk's result, or one of its pieces (windowed decoding): audio counts per piece;
    the deadline is the first piece's; queue, batch and inference time are the chunk's."""
    metrics.audio_seconds.inc(res.audio_s)
    if res.offset == 0 and res.request.chunk_id > 0 and now > res.request.deadline:
        metrics.underrun_risk.inc()  # done after the audio before it would have run out
    if res.next is None:
        metrics.inference.observe(res.inference_s)
        metrics.queued.observe(res.queued_s)
        metrics.batch_size.observe(res.batch_size)
