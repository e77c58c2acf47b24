"""``POST /v1/audio/speech``, OpenAI-compatible: text in, audio out, whole or streamed.

The body is validated here; the audio takes a WebSocket session's path (``utterance.speak``:
the session protocol's chunks and deadlines, the same engine client) and its 24 kHz PCM is
re-encoded in the response format as it comes. A client that goes away cancels what is left.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from realtime.codecs import INPUT_RATE, make_encoder
from realtime.codecs.ogg import OggOpusStream
from realtime.codecs.wav import wav_header
from realtime.engine.info import EngineClient
from realtime.engine.request import ChunkResult
from realtime.errors import InputError, RealtimeError
from realtime.kokoro import MAX_SPEED, MIN_SPEED
from realtime.text.languages import AUTO, LANGUAGES
from realtime.text.phonemize import Phonemizer
from realtime.voice_names import blend_language

from .metrics import ServerMetrics
from .utterance import Utterance, speak

log = logging.getLogger("realtime.server")

# response_format -> media type. OpenAI's mp3/aac/flac are not offered (no encoder here).
FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm", "opus": "audio/ogg", "mulaw": "audio/basic"}
SPEED_RANGE = (MIN_SPEED, MAX_SPEED)


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    input: str
    voice: str
    response_format: str
    speed: float
    stream: bool
    language: str  # the G2P language, resolved (never auto)


def parse_speech(body: Any, default_voice: str, max_chars: int,
                 known_voice: Callable[[str], object],
                 default_language: str = AUTO) -> SpeechRequest:
    """Validate the JSON body; raises InputError (or VoiceError) naming the bad field.

    ``language`` (our extension to OpenAI's body) picks the G2P; absent or ``auto``, the
    voice's own."""
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise InputError("'input' must be a non-empty string")
    if len(text) > max_chars:
        raise InputError(f"'input' has {len(text)} characters; the limit is {max_chars}")
    voice = body.get("voice", default_voice)
    if not isinstance(voice, str) or not voice:
        raise InputError("'voice' must be a voice name or a blend like a(2)+b(1)")
    known_voice(voice)
    fmt = body.get("response_format", "wav")
    if fmt not in FORMATS:
        raise InputError(f"response_format {fmt!r} is not supported; use one of "
                         + ", ".join(FORMATS))
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        raise InputError("'speed' must be a number")
    if not SPEED_RANGE[0] <= float(speed) <= SPEED_RANGE[1]:
        raise InputError(f"'speed' must be within {SPEED_RANGE[0]}..{SPEED_RANGE[1]}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InputError("'stream' must be true or false")
    language = body.get("language", default_language)
    if language != AUTO and language not in LANGUAGES:
        raise InputError(f"'language' must be {AUTO} (the voice's) or one of "
                         f"{', '.join(LANGUAGES)}")
    if language == AUTO:
        language = blend_language(voice)
    return SpeechRequest(text, voice, fmt, float(speed), stream, language)


class _Encoder:
    """One response's bytes from the utterance's PCM16 (24 kHz): a header (streamed WAV), then
    encoded audio, then a tail."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self._ogg = OggOpusStream(sample_rate=48_000) if fmt == "opus" else None
        self._mulaw = make_encoder("mulaw", 8000, 20) if fmt == "mulaw" else None

    def head(self, streaming: bool) -> bytes:
        if self._ogg is not None:
            return self._ogg.header()
        return wav_header(INPUT_RATE, None) if self.fmt == "wav" and streaming else b""

    def push(self, pcm: bytes) -> bytes:
        if self._ogg is not None:
            return self._ogg.push(_samples(pcm))
        if self._mulaw is not None:
            return b"".join(f.data for f in self._mulaw.push(_samples(pcm)))
        return pcm  # wav, pcm: as it comes

    def tail(self) -> bytes:
        if self._ogg is not None:
            return self._ogg.finish()
        if self._mulaw is not None:
            return b"".join(f.data for f in self._mulaw.flush())
        return b""


async def synthesize_speech(req: SpeechRequest, engine: EngineClient,
                            phonemizer: Callable[[str], Phonemizer], metrics: ServerMetrics,
                            plan_rtf: Callable[[], float | None] | None = None
                            ) -> AsyncGenerator[bytes, None]:
    """Bytes of the response body, in order, as the engine makes the audio (streamed WAV has a
    header with unknown sizes; the whole-file WAV is built by the caller from ``pcm``). Nothing
    is yielded before the first audio, so an error before it can still get its own status."""
    utterance = Utterance(req.input, req.voice, req.speed, req.language)

    def first_audio(message: Mapping[str, Any]) -> None:
        first = message.get("first_audio_ms")
        if isinstance(first, int | float):
            metrics.first_audio.observe(first / 1000.0)

    audio = speak(utterance, engine, phonemizer, observe=first_audio, plan_rtf=plan_rtf,
                  on_result=lambda res: observe_chunk(metrics, res, engine.clock()),
                  owner="http")
    encoder = _Encoder(req.response_format)
    head = encoder.head(req.stream)
    try:
        async with contextlib.aclosing(audio):  # a client gone mid-way: nothing more runs
            async for pcm in audio:
                data, head = head + encoder.push(pcm), b""
                if data:
                    yield data
        tail = encoder.tail()
        if tail:
            yield tail
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
