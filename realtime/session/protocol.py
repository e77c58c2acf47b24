"""The session protocol of v1, Sans-I/O: frames and engine results in, actions out.

``SessionProtocol`` is one WebSocket session's state machine. It does no I/O, starts no task and
imports no torch; the clock is passed in (seconds, ``time.monotonic()``). The endpoint pumps:

- each frame received -> ``receive(frame, now)``; each engine outcome ->
  ``chunk_done(request, result_or_exception, now)``; at ``next_deadline()`` -> ``poll(now)``
  (buffer delays, the idle timeout, and the audio each context held back for its lead bound);
  the socket gone -> ``connection_lost()``; egress above its high water mark -> ``pause()``,
  below the low one -> ``resume(now)``; server draining -> wait while ``busy``, then
  ``close(1001, ...)``;
- after each call it executes ``actions()`` in order: ``Send`` (write a frame; ``kind``
  ``"control"`` may overtake queued ``"audio"`` frames), ``Submit`` (give the chunk to the
  engine), ``CancelChunks`` (cancel the engine's chunks of that context and drop the context's
  ``"audio"`` Sends not yet written), ``Close`` (close the socket with the code).

With ``SessionSettings.max_lead_s`` set, each context's audio stream is paced here, not in the
endpoint: its ``"audio"`` Sends come out no more than ``max_lead_s`` of audio ahead of real-time
playback from its first frame, and its chunks are submitted only as far ahead as that needs
(see ``Context``). A Send is meant to be written at once.

See docs/protocol.md for the wire contract this implements, and docs/protocol-session.md
for its limits, pacing and the endpoint around it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from realtime.codecs import CODECS, SAMPLE_RATES, StreamEncoder, make_encoder
from realtime.codecs.twilio import TWILIO_RATE, TwilioFramer
from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.errors import ConfigError, RealtimeError
from realtime.session.context import Context, ContextSettings, StreamKind
from realtime.session.messages import (
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    DEFAULT_CONTEXT,
    PROTOCOL_VERSION,
    ClientMessage,
    ErrorCode,
    FrameError,
    Framing,
    Limits,
    MessageError,
    ServerMessage,
    StartMessage,
    Timestamps,
    decode_frame,
    encode,
    parse_client,
    parse_query,
)
from realtime.session.scheduler import Chunk, SchedulerConfig, TextScheduler
from realtime.text.languages import AUTO, language_codes
from realtime.text.phonemize import Phonemizer
from realtime.voice_names import blend_language, parse_blend, voice_info

__all__ = ["Action", "CancelChunks", "Close", "Send", "SessionProtocol", "SessionSettings",
           "Submit"]

_LOG = logging.getLogger("realtime.session")
RECENT_FINISHED = 8  # finished contexts a late `cancel` can still split (per session)
RECENT_REFUSED = 64  # ids whose `start` was refused, remembered (per session)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Server-side settings of every session, and the defaults a query or ``start`` overrides."""

    voices: tuple[str, ...] = ("af_heart",)
    voice: str = "af_heart"
    speed: float = 1.0
    codec: str = "opus"
    sample_rate: int = 24000
    frame_ms: int = 20
    language: str = AUTO  # a context's G2P; auto: its voice's (realtime.voice_names)
    timestamps: Timestamps = "word"
    framing: Framing = "msgpack"
    limits: Limits = field(default_factory=Limits)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    opus_bitrate: int | None = None
    opus_complexity: int = 9
    seed: int | None = None  # passed to every ChunkRequest
    # Each context's audio is sent at most this far (seconds) ahead of real-time playback, and
    # synthesised little further; None: as fast as it is made.
    max_lead_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_lead_s is not None and not self.max_lead_s > 0:
            raise ConfigError(f"max_lead_s must be positive (or None), got {self.max_lead_s}")


@dataclass(slots=True)
class _Refusal:
    """Why a context's ``start`` was refused; ``told``: a ``text``, ``phonemes`` or ``update``
    for it was answered (the ones after it are dropped silently)."""

    code: ErrorCode
    reason: str
    told: bool = False


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``frame`` (bytes: a binary frame; str: a text frame)."""

    frame: bytes | str
    kind: StreamKind
    context_id: str | None = None


@dataclass(frozen=True, slots=True)
class Submit:
    request: ChunkRequest


@dataclass(frozen=True, slots=True)
class CancelChunks:
    """Cancel the engine's chunks of (session, context) and drop its unwritten audio Sends."""

    session: str
    context_id: str


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Action = Send | Submit | CancelChunks | Close


class SessionProtocol:
    """One session (see the module doc). ``ready`` is queued on construction.

    ``phonemizer(language)`` gives the shared ``Phonemizer`` of a language (the caller caches
    them); ``check_voice(spec)`` raises a ``RealtimeError`` for a voice the engine cannot use
    (default: every name of a ``+``-blend must be in ``settings.voices``). ``query`` holds the
    connection's query parameters; a bad one is answered by ``error`` and close 1008.
    ``observe(metrics)`` sees every ``metrics`` message as it is queued (for server metrics).
    """

    def __init__(self, settings: SessionSettings, session_id: str, *,
                 phonemizer: Callable[[str], Phonemizer],
                 check_voice: Callable[[str], None] | None = None,
                 query: Mapping[str, str] | None = None, now: float = 0.0,
                 observe: Callable[[Mapping[str, Any]], None] | None = None,
                 plan_rtf: Callable[[], float | None] | None = None) -> None:
        self.session_id = session_id
        self._observe = observe
        self._plan_rtf = plan_rtf  # the real-time factor to plan a new context's chunks for
        self._phonemizer = phonemizer
        self._check_voice = check_voice or self._voice_in_list
        self._limits = settings.limits
        self._actions: list[Action] = []
        self._contexts: dict[str, Context] = {}
        # Contexts whose `done` was sent, newest last: the client may still be playing them,
        # so a late `cancel` still splits their text where playback stopped.
        self._finished: OrderedDict[str, Context] = OrderedDict()
        # Ids whose `start` was refused, newest last: their input must not open the context
        # with the session defaults (a typo in `codec` would get audio the client never asked
        # for); it is refused until a `start` succeeds, or `end` or `cancel` forgets the id.
        self._refusals: OrderedDict[str, _Refusal] = OrderedDict()
        self._inflight: dict[int, tuple[Context, Any]] = {}
        self._next_chunk_id = 0
        self._framing_set = False
        self._tokens = float(self._limits.rate_burst)
        self._refill_at = now
        self._refused = 0
        self._active_at = now  # last client message or engine result (idle timeout)
        self._paused = False
        self.closed = False
        self._log = logging.LoggerAdapter(_LOG, {"session_id": session_id})
        self.settings = settings
        self.framing: Framing = settings.framing
        try:
            self.settings = self._with_query(settings, query or {})
        except MessageError as e:
            self._error(e.code, f"query: {e.reason}")
            self._close(CLOSE_POLICY, "bad query parameter")
            return
        self.framing = self.settings.framing
        self._send(self._ready(), "control")

    # the endpoint's calls

    def actions(self) -> list[Action]:
        """The actions queued since the last call, in order (the queue is emptied)."""
        out, self._actions = self._actions, []
        return out

    def receive(self, frame: bytes | str, now: float) -> None:
        """One WebSocket message from the client."""
        if self.closed:
            return
        self._active_at = now
        if not self._framing_set:
            self._framing_set = True
            if self.framing != "twilio":
                self.framing = "msgpack" if isinstance(frame, bytes) else "json"
        try:
            value = decode_frame(frame, self._limits.max_message_bytes)
        except FrameError as e:
            self._close(e.close_code, e.reason)
            return
        if not self._allow(now):
            return
        try:
            self._handle(parse_client(value, self._limits), now)
        except MessageError as e:
            self._refused_start(value, e.code, e.reason)
            self._error(e.code, e.reason, e.context_id)
        except RealtimeError as e:  # e.g. an unknown phoneme symbol from the scheduler
            self._refused_start(value, "bad_value", e.reason)
            self._error("bad_value", e.reason, _context_of(value, self._limits))
        except Exception:
            self._fail("a client message")

    def chunk_done(self, request: ChunkRequest, outcome: ChunkResult | BaseException,
                   now: float) -> None:
        """The engine's answer for a submitted chunk (a result, or the exception it raised)."""
        self._active_at = now
        more = isinstance(outcome, ChunkResult) and outcome.next is not None  # pieces follow
        entry = (self._inflight.get if more else self._inflight.pop)(request.chunk_id, None)
        if entry is None or self.closed:
            return  # cancelled, or its context is gone
        ctx, slot = entry
        slot.receive(outcome)
        try:
            self._advance(ctx, now)
        except Exception:
            self._fail("an engine result")

    def poll(self, now: float) -> None:
        """Timers: text that waited ``max_buffer_delay_ms`` becomes a chunk; audio held back
        for the lead bound goes out, and chunks kept back for it are submitted, as playback
        catches up; idle timeout."""
        if self.closed:
            return
        try:
            for ctx in list(self._contexts.values()):
                ctx.scheduler.hold_until = ctx.text_hold_until()
                self._schedule(ctx, ctx.scheduler.poll(now), now)  # and held audio, chunks
        except Exception:
            self._fail("a timer")
            return
        idle = self._idle_deadline()
        if idle is not None and now >= idle:
            self._close(CLOSE_NORMAL, "idle timeout")

    def next_deadline(self) -> float | None:
        """When ``poll`` is next due (same clock as ``now``), or None."""
        for c in self._contexts.values():
            c.scheduler.hold_until = c.text_hold_until()
        times = [t for c in self._contexts.values()
                 for t in (c.scheduler.next_deadline(), c.next_release(),
                           None if self._paused else c.next_submit()) if t is not None]
        idle = self._idle_deadline()
        return min([*times, idle] if idle is not None else times, default=None)

    def pause(self) -> None:
        """Backpressure on the whole session (the endpoint's egress queue is full): chunks
        that become ready are kept back, not submitted."""
        self._paused = True

    def resume(self, now: float) -> None:
        """Submit what ``pause`` kept back (deadlines computed now), as far as each context's
        lead bound allows."""
        self._paused = False
        for ctx in list(self._contexts.values()):
            self._advance(ctx, now)

    @property
    def paused(self) -> bool:
        """Between ``pause`` and ``resume``."""
        return self._paused

    def close(self, code: int, reason: str) -> None:
        """End the session from the server side (drain: 1001): cancel all, then ``Close``."""
        if not self.closed:
            self._close(code, reason)

    @property
    def busy(self) -> bool:
        """Some context has chunks waiting for synthesis or delivery."""
        return any(c.busy for c in self._contexts.values())

    def connection_lost(self) -> None:
        """The socket is gone: cancel every context's engine work; nothing more is sent."""
        for ctx in list(self._contexts.values()):
            self._drop(ctx)
        self.closed = True

    @property
    def contexts(self) -> tuple[str, ...]:
        return tuple(self._contexts)

    # client messages

    def _handle(self, msg: ClientMessage, now: float) -> None:
        if msg["type"] == "ping":
            self._send({"type": "pong", "id": msg.get("id")}, "control")
            return
        cid = msg["context_id"]
        if msg["type"] == "cancel":
            self._refusals.pop(cid, None)
            self._cancel(cid, msg.get("played_ms"))
            return
        if msg["type"] == "start":
            if cid in self._contexts:
                raise MessageError("bad_value", f"context {cid!r} is already open", cid)
            self._open(cid, msg, now)
            self._refusals.pop(cid, None)
            return
        refusal = self._refusals.get(cid)
        if refusal is not None:
            self._refused_input(cid, msg["type"], refusal)
            return
        ctx = self._contexts.get(cid) or self._open(cid, {"type": "start", "context_id": cid},
                                                    now)
        if ctx.ended:
            raise MessageError("bad_value", f"context {cid!r} has ended", cid)
        if msg["type"] == "text":
            text = msg["text"]
            if ctx.buffered_chars + len(text) > self._limits.max_buffered_chars:
                raise MessageError("too_long", f"context {cid!r} would buffer more than "
                                   f"{self._limits.max_buffered_chars} characters", cid)
            if ctx.first_text_at is None and text.strip():
                ctx.first_text_at = now
            ctx.scheduler.hold_until = ctx.text_hold_until()
            chunks = ctx.scheduler.push(text, now)
            ctx.text += text
            self._schedule(ctx, chunks, now)
        elif msg["type"] == "phonemes":
            chunks = ctx.scheduler.push_phonemes(msg["phonemes"], now)
            if ctx.first_text_at is None:
                ctx.first_text_at = now
            self._schedule(ctx, chunks, now)
        elif msg["type"] == "flush":
            self._schedule(ctx, ctx.scheduler.flush(now), now)
            ctx.mark("flush", msg.get("flush_id"))
            self._advance(ctx, now)
        elif msg["type"] == "update":
            voice, speed = msg.get("voice", ctx.settings.voice), msg.get("speed")
            self._voice(voice, cid)
            ctx.settings = replace(ctx.settings, voice=voice,
                                   speed=ctx.settings.speed if speed is None else speed)
        elif msg["type"] == "end":
            self._schedule(ctx, ctx.scheduler.end(now), now)
            ctx.ended = True
            ctx.mark("end")
            self._advance(ctx, now)

    def _refused_start(self, value: object, code: ErrorCode, reason: str) -> None:
        """Remember a refused ``start`` for a context that is not open (see ``_refusals``)."""
        if not isinstance(value, dict) or value.get("type") != "start":
            return
        cid = _context_of(value, self._limits)
        if cid and cid not in self._contexts:  # not "already open": that context goes on
            self._refusals.pop(cid, None)
            self._refusals[cid] = _Refusal(code, reason)
            while len(self._refusals) > RECENT_REFUSED:
                self._refusals.popitem(last=False)

    def _refused_input(self, cid: str, kind: str, refusal: _Refusal) -> None:
        """Input for a context whose ``start`` was refused: dropped. The first text (or
        phonemes, update) says why, not every token after it; every ``flush`` and ``end`` says
        why, since the client waits for its ``flushed`` or ``done``."""
        if kind == "end":
            del self._refusals[cid]
        elif kind != "flush":
            if refusal.told:
                return
            refusal.told = True
        self._error("context_refused", f"context {cid!r} was not opened: its start was refused "
                    f"({refusal.code}: {refusal.reason}); send a valid start", cid)

    def _open(self, cid: str, msg: StartMessage, now: float) -> Context:
        self._finished.pop(cid, None)
        if len(self._contexts) >= self._limits.max_contexts:
            raise MessageError("too_many_contexts", f"at most {self._limits.max_contexts} "
                               "contexts may be open at once", cid)
        s = self.settings
        codec = msg.get("codec", s.codec)
        voice = msg.get("voice", s.voice)
        self._voice(voice, cid)
        language = self._language(msg.get("language", s.language), cid)
        settings = ContextSettings(
            voice=voice, speed=msg.get("speed", s.speed), codec=codec,
            sample_rate=msg.get("sample_rate", _rate_for(codec, s.sample_rate)),
            frame_ms=msg.get("frame_ms", s.frame_ms),
            language=blend_language(voice) if language == AUTO else language,
            timestamps=msg.get("timestamps", s.timestamps),
            max_buffer_delay_ms=msg.get("max_buffer_delay_ms",
                                        s.scheduler.max_buffer_delay_ms))
        audio = self._audio(settings, cid)
        config = replace(s.scheduler, max_buffer_delay_ms=settings.max_buffer_delay_ms,
                         plan_rtf=(self._plan_rtf() if self._plan_rtf is not None
                                   else s.scheduler.plan_rtf))
        ctx = Context(cid, settings, TextScheduler(self._phonemizer(settings.language), config),
                      audio, max_lead_s=s.max_lead_s)
        self._contexts[cid] = ctx
        return ctx

    def _audio(self, c: ContextSettings, cid: str) -> StreamEncoder | TwilioFramer:
        if self.framing == "twilio":
            if (c.codec, c.sample_rate) != ("mulaw", TWILIO_RATE):
                raise MessageError("bad_value", "twilio framing needs mulaw at 8000 Hz", cid)
            try:
                return TwilioFramer(frame_ms=c.frame_ms)
            except RealtimeError as e:
                raise MessageError("bad_value", e.reason, cid) from e
        try:
            return make_encoder(c.codec, c.sample_rate, c.frame_ms,
                                bitrate=self.settings.opus_bitrate,
                                complexity=self.settings.opus_complexity)
        except RealtimeError as e:
            raise MessageError("bad_value", e.reason, cid) from e

    def _voice(self, voice: str, cid: str | None) -> None:
        try:
            self._check_voice(voice)
        except RealtimeError as e:
            raise MessageError("unknown_voice", e.reason, cid) from e

    def _voice_in_list(self, spec: str) -> None:
        for name, _ in parse_blend(spec):
            if name not in self.settings.voices:
                raise MessageError("unknown_voice", f"unknown voice {name[:64]!r}")

    @staticmethod
    def _language(language: str, cid: str | None) -> str:
        if language != AUTO and language not in language_codes():
            raise MessageError("bad_value", f"language must be {AUTO} (the voice's) or one of "
                               f"{', '.join(language_codes())}", cid)
        return language

    def _cancel(self, cid: str, played_ms: float | None) -> None:
        ctx = self._contexts.get(cid)
        if ctx is None:
            done = self._finished.get(cid)
            fields: dict[str, Any] = (
                done.cancelled(played_ms) if done is not None
                else {"audio_sent_ms": 0.0, "text_spoken": "", "text_unspoken": ""})
        else:
            self._drop(ctx)
            if isinstance(ctx.audio, TwilioFramer):
                self._send(dict(ctx.audio.clear()), "control", cid)
            else:
                ctx.audio.reset()
            fields = ctx.cancelled(played_ms)
        self._send({"type": "cancelled", "context_id": cid, **fields}, "control", cid)

    def _drop(self, ctx: Context) -> None:
        """Forget a context now: its results will be ignored, the engine told to cancel."""
        for slot in ctx.slots:  # chunks not back yet, or with pieces still to come
            if slot.request is not None and not slot.done:
                self._inflight.pop(slot.request.chunk_id, None)
        self._contexts.pop(ctx.id, None)
        self._actions.append(CancelChunks(self.session_id, ctx.id))

    # chunks and audio

    def _schedule(self, ctx: Context, chunks: list[Chunk], now: float) -> None:
        ctx.held += chunks
        self._advance(ctx, now)

    def _advance(self, ctx: Context, now: float) -> None:
        """Send what the context may send now, and submit its chunks in order while the session
        is not paused and its lead bound allows (an empty chunk needs no engine: it goes too)."""
        self._deliver(ctx, now)
        while ctx.held and not self._paused and ctx.may_submit(ctx.held[0], now):
            chunk = ctx.held.pop(0)
            if not chunk.phonemes:
                ctx.add(chunk, None)
            else:
                request = ChunkRequest(
                    session=self.session_id, context=ctx.id, phonemes=chunk.phonemes,
                    voice=ctx.settings.voice, deadline=ctx.deadline(now),
                    speed=ctx.settings.speed, seed=self.settings.seed,
                    chunk_id=self._next_chunk_id)
                self._next_chunk_id += 1
                self._inflight[request.chunk_id] = (ctx, ctx.add(chunk, request))
                self._actions.append(Submit(request))
            self._deliver(ctx, now)

    def _deliver(self, ctx: Context, now: float) -> None:
        for message, kind in ctx.deliver(now):
            if self._observe is not None and message.get("type") == "metrics":
                self._observe(message)
            self._send(message, kind, ctx.id)
        if ctx.finished and self._contexts.get(ctx.id) is ctx:
            del self._contexts[ctx.id]
            self._finished[ctx.id] = ctx
            while len(self._finished) > RECENT_FINISHED:
                self._finished.popitem(last=False)

    # output

    def _send(self, message: ServerMessage | dict[str, Any], kind: StreamKind,
              context_id: str | None = None) -> None:
        if not self.closed:
            self._actions.append(Send(encode(message, self.framing), kind, context_id))

    def _error(self, code: ErrorCode, reason: str, context_id: str | None = None) -> None:
        message: dict[str, Any] = {"type": "error", "code": code, "message": reason}
        if context_id is not None:
            message["context_id"] = context_id
        self._send(message, "control", context_id)

    def _fail(self, what: str) -> None:
        """A bug (not bad input): say so, and end this session only."""
        self._log.exception("session failed on %s", what)
        self._error("internal", "internal error")
        self._close(CLOSE_INTERNAL, "internal error")

    def _close(self, code: int, reason: str) -> None:
        for ctx in list(self._contexts.values()):
            self._drop(ctx)
        self._actions.append(Close(code, reason))
        self.closed = True

    def _allow(self, now: float) -> bool:
        """Token bucket: ``rate_burst`` messages, refilled at ``rate_messages_per_s``.

        A message over the rate is dropped; the first of a run is answered by ``rate_limited``,
        and ``rate_close_after`` dropped in a row close the session with 1008.
        """
        lim = self._limits
        self._tokens = min(float(lim.rate_burst),
                           self._tokens + max(0.0, now - self._refill_at) * lim.rate_messages_per_s)
        self._refill_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self._refused = 0
            return True
        self._refused += 1
        if self._refused >= lim.rate_close_after:
            self._close(CLOSE_POLICY, "message rate limit exceeded")
        elif self._refused == 1:
            self._error("rate_limited", f"more than {lim.rate_messages_per_s:g} messages/s; "
                        "messages are being dropped")
        return False

    def _idle_deadline(self) -> float | None:
        timeout = self._limits.idle_timeout_s
        if timeout is None or self.busy or self.closed:
            return None
        return self._active_at + timeout

    def _ready(self) -> dict[str, Any]:
        s = self.settings
        return {
            "type": "ready", "session_id": self.session_id, "protocol": PROTOCOL_VERSION,
            "codecs": list(CODECS), "sample_rates": {c: list(SAMPLE_RATES[c]) for c in CODECS},
            "voices": list(s.voices),
            "limits": s.limits.as_wire() | ({"max_lead_s": s.max_lead_s} if s.max_lead_s else {}),
            "voice_info": [voice_info(name).as_wire() for name in s.voices],
            "languages": [AUTO, *language_codes()],
            "defaults": {"voice": s.voice, "speed": s.speed, "codec": s.codec,
                         "sample_rate": s.sample_rate, "frame_ms": s.frame_ms,
                         "language": s.language, "timestamps": s.timestamps,
                         "framing": s.framing},
        }

    def _with_query(self, s: SessionSettings, query: Mapping[str, str]) -> SessionSettings:
        defaults = parse_query(query, s.limits)
        framing = defaults.setdefault("framing", s.framing)
        if framing == "twilio":
            defaults = {"codec": "mulaw", "sample_rate": TWILIO_RATE, **defaults}
        if "codec" in defaults and "sample_rate" not in defaults:
            defaults["sample_rate"] = _rate_for(defaults["codec"], s.sample_rate)
        out = replace(s, **defaults)
        self.framing = out.framing
        probe = ContextSettings(out.voice, out.speed, out.codec, out.sample_rate, out.frame_ms,
                                out.language, out.timestamps, 0.0)
        self._voice(out.voice, None)
        self._audio(probe, "")
        self._language(out.language, None)
        return out


def _rate_for(codec: str, preferred: int) -> int:
    """A codec's default rate: the session's if the codec has it, else its highest."""
    rates: tuple[int, ...] = SAMPLE_RATES.get(codec, ())  # type: ignore[call-overload]
    return preferred if preferred in rates or not rates else rates[-1]


def _context_of(value: object, limits: Limits) -> str | None:
    if isinstance(value, dict):
        cid = value.get("context_id")
        cid = DEFAULT_CONTEXT if cid is None else cid  # as parse_client reads it
        return cid if isinstance(cid, str) and len(cid) <= limits.max_id_chars else None
    return None

