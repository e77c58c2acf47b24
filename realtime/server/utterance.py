"""One utterance through the session protocol: the pump of ``POST /v1/audio/speech`` and
``realtime say``.

It drives a ``SessionProtocol`` as a WebSocket client and ``ws.SessionPump`` together would:
``start`` (voice, speed, language; PCM16 at the engine's 24 kHz, no timestamps), the text (or
``phonemes``) and ``end`` go in; ``Submit`` actions go to the ``EngineClient``, each outcome
comes back through ``chunk_done``; the PCM of the ``audio`` messages is yielded in order until
``done``. Chunking, chunk deadlines, the seed and input validation are therefore the session's
own, with nothing re-implemented here. An ``error`` from the session is raised as our exception:
the engine's own where it refused or failed a chunk, ``VoiceError`` for ``unknown_voice``,
``MessageError`` (an ``InputError``, the protocol's code) for other refused input.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast, get_args

import msgpack

from realtime.codecs import INPUT_RATE
from realtime.engine.client import EngineClient
from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.errors import ChunkCancelled, InputError, RealtimeError, VoiceError
from realtime.session.messages import ErrorCode, Limits, MessageError
from realtime.session.protocol import (
    CancelChunks,
    Close,
    Send,
    SessionProtocol,
    SessionSettings,
    Submit,
)
from realtime.session.scheduler import SchedulerConfig
from realtime.text.languages import AUTO
from realtime.text.phonemize import Phonemizer

__all__ = ["Utterance", "speak", "synthesize"]

FRAME_MS = 100  # PCM16's longest frame: the fewest messages
CONTEXT = "utterance"
NOTHING_TO_SAY = "nothing to say: the input has no speakable words"


@dataclass(frozen=True, slots=True)
class Utterance:
    """What to say and how; the fields of the protocol's ``start`` and ``text``/``phonemes``."""

    text: str
    voice: str | None = None  # None: the engine's default voice
    speed: float = 1.0
    language: str = AUTO  # the G2P; auto: the voice's own
    phonemes: bool = False  # ``text`` is Kokoro phonemes (sent as a ``phonemes`` message)
    seed: int | None = None  # harmonic-source noise (None: off); SessionSettings.seed

    def messages(self) -> list[dict[str, Any]]:
        """What a client sends for it."""
        start = {"type": "start", "context_id": CONTEXT,
                 "voice": self.voice, "speed": self.speed, "language": self.language,
                 "codec": "pcm16", "sample_rate": INPUT_RATE, "frame_ms": FRAME_MS,
                 "timestamps": "none"}
        body = ({"type": "phonemes", "phonemes": self.text} if self.phonemes
                else {"type": "text", "text": self.text})
        return [start, {**body, "context_id": CONTEXT}, {"type": "end", "context_id": CONTEXT}]


async def speak(utterance: Utterance, engine: EngineClient,
                phonemizer: Callable[[str], Phonemizer], *,
                observe: Callable[[Mapping[str, Any]], None] | None = None,
                on_result: Callable[[ChunkResult], None] | None = None,
                plan_rtf: Callable[[], float | None] | None = None,
                owner: str = "utterance") -> AsyncGenerator[bytes, None]:
    """PCM16-LE at 24 kHz, in order, as the engine makes it (the end's frame padding trimmed).

    ``phonemizer(language)``, ``observe`` (each ``metrics`` message) and ``plan_rtf`` are the
    protocol's; ``on_result`` sees each engine result. The engine work is the owner
    ``{owner}-<id>``; it is cancelled when the generator ends early (``aclose``, cancel, error).
    Raises ``InputError("nothing to say ...")`` when nothing in the input has audio.
    """
    voice = utterance.voice or engine.info.default_voice
    utterance = replace(utterance, voice=voice)
    proto = SessionProtocol(_settings(utterance, engine), f"{owner}-{uuid.uuid4().hex[:12]}",
                            phonemizer=phonemizer, check_voice=engine.info.check_voice,
                            now=engine.clock(), observe=observe, plan_rtf=plan_rtf)
    pump = _Pump(proto, engine, on_result)
    try:
        for message in utterance.messages():
            proto.receive(msgpack.packb(message, use_bin_type=True), engine.clock())
            if pcm := pump.execute():
                yield pcm
        while not pump.done:
            if pcm := await pump.step():
                yield pcm
    finally:
        pump.stop()


async def synthesize(utterance: Utterance, engine: EngineClient,
                     phonemizer: Callable[[str], Phonemizer], **kwargs: Any) -> bytes:
    """The whole of ``speak``'s audio (PCM16-LE, 24 kHz)."""
    return b"".join([pcm async for pcm in speak(utterance, engine, phonemizer, **kwargs)])


def _settings(utterance: Utterance, engine: EngineClient) -> SessionSettings:
    # The caller has bounded the input (HTTP: max_input_chars); it goes in one message.
    n, default = len(utterance.text), Limits()
    limits = replace(default, max_message_bytes=max(default.max_message_bytes, 4 * n + 4096),
                     max_text_chars=max(default.max_text_chars, n),
                     max_buffered_chars=max(default.max_buffered_chars, n),
                     max_id_chars=max(default.max_id_chars, len(utterance.voice or "")))
    return SessionSettings(voices=engine.info.voices, voice=engine.info.default_voice,
                           codec="pcm16", sample_rate=INPUT_RATE, frame_ms=FRAME_MS,
                           timestamps="none", limits=limits, seed=utterance.seed,
                           scheduler=SchedulerConfig(window_s=engine.info.window_s))


class _Pump:
    """Executes the protocol's actions (see ``ws.SessionPump``, of which this is the one-context,
    in-order, no-socket case)."""

    def __init__(self, proto: SessionProtocol, engine: EngineClient,
                 on_result: Callable[[ChunkResult], None] | None) -> None:
        self.proto = proto
        self.engine = engine
        self.on_result = on_result
        self.waiting: dict[asyncio.Future[ChunkResult], ChunkRequest] = {}
        self.failed: dict[int, BaseException] = {}  # chunk_id -> what the engine raised
        self.audio_in = 0  # engine samples given to the protocol: the audio, without padding
        self.audio_out = 0  # samples yielded
        self.done = False

    def execute(self) -> bytes:
        """Run the queued actions; the PCM of the audio messages among them."""
        pcm: list[bytes] = []
        while actions := self.proto.actions():
            for action in actions:
                if isinstance(action, Send):
                    pcm.append(self._receive(msgpack.unpackb(action.frame, raw=False)))
                elif isinstance(action, Submit):
                    self._submit(action.request)
                elif isinstance(action, CancelChunks):
                    self.engine.cancel(action.session, action.context_id)
                elif isinstance(action, Close) and not self.done:
                    raise RealtimeError(f"the session closed: {action.reason}")
        return b"".join(pcm)

    async def step(self) -> bytes:
        """Wait for the next engine outcome (or the protocol's timer) and feed it in."""
        deadline = self.proto.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - self.engine.clock())
        if not self.waiting:
            if timeout is None:  # a bug: nothing would ever wake us
                raise RealtimeError("the session waits for nothing before its done")
            await asyncio.sleep(timeout)
            done: set[asyncio.Future[ChunkResult]] = set()
        else:
            done, _ = await asyncio.wait(self.waiting, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        now = self.engine.clock()
        if not done:
            self.proto.poll(now)
        for future in done:
            request = self.waiting.pop(future)
            self._chunk_done(request, _outcome(future), now)
        return self.execute()

    def stop(self) -> None:
        """Cancel whatever the engine still has of this utterance."""
        for future in self.waiting:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" log
            else:
                future.cancel()
        self.waiting.clear()
        self.engine.cancel(self.proto.session_id)

    def _submit(self, request: ChunkRequest) -> None:
        try:
            future = self.engine.submit(request)
        except Exception as exc:  # refused (busy, stopped) or invalid: the protocol says so
            self._chunk_done(request, exc, self.engine.clock())
            return
        self.waiting[asyncio.wrap_future(future)] = request

    def _chunk_done(self, request: ChunkRequest, outcome: ChunkResult | BaseException,
                    now: float) -> None:
        if isinstance(outcome, BaseException):
            self.failed[request.chunk_id] = outcome
        else:
            self.audio_in += len(outcome.audio)
            if self.on_result is not None:
                self.on_result(outcome)
            if outcome.next is not None:  # windowed decoding: the chunk's next piece
                self.waiting[asyncio.wrap_future(outcome.next)] = request
        self.proto.chunk_done(request, outcome, now)

    def _receive(self, message: dict[str, Any]) -> bytes:
        kind = message.get("type")
        if kind == "error":
            raise self._error(message.get("code"), str(message.get("message", "")))
        if kind == "done":
            self.done = True
            if not message.get("chunks"):
                raise InputError(NOTHING_TO_SAY)
        if kind != "audio":
            return b""
        data: bytes = message["data"]
        # Only the end pads (its last frame): keep the samples the engine gave.
        keep = max(0, min(len(data) // 2, self.audio_in - self.audio_out))
        self.audio_out += keep
        return data[:2 * keep]

    def _error(self, code: object, reason: str) -> BaseException:
        if code in ("overloaded", "engine_lost", "internal") and self.failed:
            # Chunks are reported in order, and chunk ids grow in that order: the first failed.
            exc = self.failed[min(self.failed)]
            return exc if isinstance(exc, RealtimeError) else RealtimeError(
                f"synthesis failed: {exc}")
        if code == "unknown_voice":
            return VoiceError(reason)
        if code in ("overloaded", "engine_lost", "internal"):
            return RealtimeError(reason)
        return MessageError(_code(code), reason)


def _outcome(future: asyncio.Future[ChunkResult]) -> ChunkResult | BaseException:
    if future.cancelled():
        return ChunkCancelled("cancelled")
    return future.exception() or future.result()


def _code(code: object) -> ErrorCode:
    return cast(ErrorCode, code) if code in get_args(ErrorCode) else "bad_value"
