"""``RealtimeTTSService``: realtime as a pipecat TTS service (``pip install 'realtime[pipecat]'``).

```python
from realtime.integrations.pipecat import RealtimeTTSService

tts = RealtimeTTSService(url="ws://127.0.0.1:8000/v1/stream", voice="af_heart")
pipeline = Pipeline([transport.input(), stt, user_agg, llm, tts, transport.output(), asst_agg])
```

One WebSocket session per service, one protocol context per pipecat context (an LLM turn, or
a ``TTSSpeakFrame``): ``start`` with the voice, speed, language and ``pcm16`` at the pipeline's
output rate (so pipecat never resamples), a ``text`` per delta as ``run_tts`` gets it (tokens by
default: the server cuts sentences itself), ``end`` when the turn is flushed, ``cancel`` when
it is interrupted (the socket stays open). Audio comes back in playback order with the words'
times (``alignment``) as ``TTSTextFrame``s. Voice and speed changes reach the open context
through ``update``; a language change starts a new context (a context's language is fixed).

A session lost to a drain, a restart, a full replica or a lost engine (close 1001, 1006, 1011,
1012, 1013, 1014) is re-opened with backoff (``realtime.client.failover.Reconnect``), and the
contexts it had open go on in the new one: their unspoken text is sent again, and their audio
and word times continue where they stopped. Every ``error`` from the server becomes an
``ErrorFrame`` whose ``exception`` is a ``ServerError`` with our code and message.
"""

from __future__ import annotations

from realtime.integrations import require

require("pipecat.services.tts_service", "pipecat", "realtime.integrations.pipecat")

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
from collections.abc import AsyncGenerator, Awaitable, Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import websockets  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    Frame,
    InterruptionFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection  # noqa: E402
from pipecat.services.settings import TTSSettings  # noqa: E402
from pipecat.services.tts_service import (  # noqa: E402
    TextAggregationMode,
    WebsocketTTSService,
)
from pipecat.transcriptions.language import Language  # noqa: E402
from pipecat.utils.errors import ErrorCategory  # noqa: E402
from pipecat.utils.types import NOT_GIVEN, NotGiven, is_given  # noqa: E402

from realtime.client import RealtimeClient  # noqa: E402
from realtime.client.failover import LostContext, Reconnect, ReconnectFailed, SessionLost  # noqa: E402
from realtime.integrations.common import (  # noqa: E402
    PCM16_RATES,
    RateBucket,
    ServerError,
    closed_error,
    connect_headers,
    refusal,
    server_language,
    word_times,
)
from realtime.kokoro import MAX_SPEED, MIN_SPEED  # noqa: E402

__all__ = ["RealtimeTTSService", "RealtimeTTSSettings", "ServerError"]

log = logging.getLogger("realtime.integrations.pipecat")

DEFAULT_URL = "ws://127.0.0.1:8000/v1/stream"
# Errors after which the server says nothing more of that context: it ends here too.
ENDS_CONTEXT = frozenset({"context_refused", "too_many_contexts"})
MAX_FAILED = 64  # failed contexts remembered (their turn's later text is dropped)
# Why a server error happened, for pipecat's error policy: a permanent category (a wrong key, a
# voice the server lacks) stops the service being given work; the rest are reported and it goes on.
CATEGORIES = {
    "unknown_voice": ErrorCategory.INVALID_REQUEST,
    "bad_value": ErrorCategory.INVALID_REQUEST,
    "context_refused": ErrorCategory.INVALID_REQUEST,
    "bad_message": ErrorCategory.INVALID_REQUEST,
    "too_long": ErrorCategory.APPLICATION,
    "rate_limited": ErrorCategory.RATE_LIMIT,
    "http_401": ErrorCategory.AUTHENTICATION,
    "http_403": ErrorCategory.AUTHORIZATION,
    "connect_failed": ErrorCategory.CONNECTIVITY,
}


def _category(error: ServerError) -> ErrorCategory:
    if error.code == "close_1008":  # policy: a key, an origin or the message rate
        reason = error.message.lower()
        return (ErrorCategory.RATE_LIMIT if "rate" in reason else
                ErrorCategory.AUTHORIZATION if "origin" in reason else
                ErrorCategory.AUTHENTICATION)
    return CATEGORIES.get(error.code, ErrorCategory.SERVER)


@dataclass
class RealtimeTTSSettings(TTSSettings):
    """pipecat's TTS settings (``voice``, ``language``) and ``speed`` (0.5..2.0)."""

    speed: float | NotGiven | None = field(default_factory=lambda: NOT_GIVEN)


@dataclass
class _Context:
    """One pipecat context as the server sees it."""

    generation: int  # the client's session it was started on
    offset_s: float = 0.0  # its audio before that session (contexts resumed after a loss)
    done: bool = False  # the server sent all of it (`done`), or it failed
    ended: bool = False  # `end` sent
    failed: bool = False  # an error ended it here: later text is dropped
    reported: bool = False  # an error of it was reported
    pending: str = ""  # text held back by the message rate, sent as one `text`
    flusher: asyncio.Task[None] | None = None  # sends `pending` when the rate allows


class RealtimeTTSService(WebsocketTTSService):
    """pipecat TTS over realtime's ``/v1/stream`` (module docstring).

    ``url``: the server's ``/v1/stream``; ``voice``: a voice name or blend (``GET /v1/voices``);
    ``api_key``: sent as a bearer token; ``sample_rate``: the audio's rate (default: the
    pipeline's output rate; one of 8000, 16000, 22050, 24000, 44100, 48000); ``speed``:
    0.5..2.0; ``language``: a ``Language`` or code (``en``, ``en-GB``, ``es``, ``fr``, ``hi``,
    ``it``, ``pt-BR``), default each voice's own; ``reconnect``: the failover policy;
    ``text_aggregation_mode``: ``TOKEN`` by default (the server finds sentence boundaries in a
    token stream itself, so audio starts sooner than after pipecat's sentence aggregation).
    """

    Settings = RealtimeTTSSettings
    _settings: RealtimeTTSSettings

    def __init__(self, *, url: str = DEFAULT_URL, voice: str = "af_heart",
                 api_key: str | None = None, sample_rate: int | None = None,
                 speed: float = 1.0, language: Language | str | None = None,
                 reconnect: Reconnect | None = None,
                 text_aggregation_mode: TextAggregationMode = TextAggregationMode.TOKEN,
                 settings: RealtimeTTSSettings | None = None, **kwargs: Any) -> None:
        if sample_rate is not None and sample_rate not in PCM16_RATES:
            raise ValueError(f"sample_rate {sample_rate} is not one of the server's pcm16 rates: "
                             f"{', '.join(map(str, PCM16_RATES))}")
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be within {MIN_SPEED}..{MAX_SPEED}, got {speed}")
        server_language(language)  # a language we do not speak fails here, not mid-call
        defaults = self.Settings(model="kokoro", voice=voice, language=language, speed=speed)
        if settings is not None:
            defaults.apply_update(settings)
        # push_stop_frames: should pipecat end a context for a pause all the same (see
        # _hold_open), its TTSStartedFrame still gets a TTSStoppedFrame
        super().__init__(text_aggregation_mode=text_aggregation_mode, push_text_frames=False,
                         push_start_frame=True, push_stop_frames=True,
                         pause_frame_processing=False,
                         sample_rate=sample_rate, settings=defaults,
                         reconnect_on_error=False,  # realtime.client.failover's policy does it
                         **kwargs)
        self._url = url
        self._headers = connect_headers(api_key)
        self._policy = reconnect or Reconnect()
        self._client: RealtimeClient | None = None
        self._bucket: RateBucket | None = None  # the session's message rate, as the server counts
        self._receive_task: asyncio.Task[None] | None = None
        self._hold_task: asyncio.Task[None] | None = None
        self._contexts: dict[str, _Context] = {}
        self._resumed = -1  # the last session generation whose lost contexts were resumed
        self._resuming: asyncio.Event = asyncio.Event()

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: Language) -> str | None:
        return server_language(language)

    @property
    def client(self) -> RealtimeClient | None:
        """The connection to the server (None while there is none)."""
        return self._client

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        self._hold_task = self.create_task(self._hold_open(), name="realtime-hold")
        await self._connect()

    async def cleanup(self) -> None:
        await super().cleanup()
        if self._hold_task is not None:
            await self.cancel_task(self._hold_task)
            self._hold_task = None

    async def _hold_open(self) -> None:
        """pipecat ends an audio context that gets nothing for ``stop_frame_timeout_s`` (3 s)
        and forgets the words it was waiting to time; an ``EndFrame`` then stops the pipeline
        without the rest of its audio. A busy server can pause that long, and so can an LLM in
        the middle of its turn. Our contexts always end (``done`` after the turn's ``end``, an
        error, an interruption, or the session's loss, each of which ends it here), so they are
        kept open until then."""
        while True:
            await asyncio.sleep(min(1.0, self._stop_frame_timeout_s / 3))
            for cid, ctx in list(self._contexts.items()):
                if not (ctx.done or ctx.failed) and self.audio_context_available(cid):
                    self._refresh_audio_context(cid)

    async def _connect(self) -> None:
        await super()._connect()
        await self._connect_websocket()
        if self._client is not None and (self._receive_task is None
                                         or self._receive_task.done()):
            self._receive_task = self.create_task(self._receive_loop(), name="realtime-receive")

    async def _disconnect(self) -> None:
        await super()._disconnect()
        await self._cancel_keepalive_task()
        if self._receive_task is not None:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._disconnect_websocket()

    async def _connect_websocket(self) -> None:
        if self._client is not None and self._client.lost is None and self._client.close_code \
                is None:
            return
        try:
            client = await RealtimeClient.connect(self._url, headers=self._headers,
                                                  reconnect=self._policy)
        except Exception as e:  # refused, unreachable, gave up: reported, never raised
            error = refusal(e) or ServerError("connect_failed", f"no session at {self._url}: {e}")
            await self._report(error)
            await self._call_event_handler("on_connection_error", str(error))
            return
        rates = client.ready.get("sample_rates", {}).get("pcm16", [])
        if self.sample_rate not in rates:
            await client.close()
            await self._report(ServerError(
                "bad_value", f"the server's pcm16 offers {rates} Hz, not the pipeline's "
                f"{self.sample_rate} Hz: set sample_rate to one of them"), permanent=True)
            return
        self._client, self._websocket = client, client.ws
        self._bucket = RateBucket(client.ready.get("limits", {}))
        idle = client.ready.get("limits", {}).get("idle_timeout_s")
        self._create_keepalive_task(min(60.0, idle / 3) if idle else 60.0)
        await self._call_event_handler("on_connected")

    async def _disconnect_websocket(self) -> None:
        client, self._client, self._websocket = self._client, None, None
        if client is not None:
            await client.close()
            await self._call_event_handler("on_disconnected")

    async def _send_keepalive(self) -> None:
        if self._client is not None:
            await self._client.ping("keepalive")

    def _is_keepalive_ready(self) -> bool:
        client = self._client
        return client is not None and client.lost is None and super()._is_keepalive_ready()

    # -- pipecat's calls ------------------------------------------------------------------------

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Send a text delta to the context's server context (opening it first)."""
        ctx = self._contexts.get(context_id)
        if ctx is None:
            if self._client is None:
                await self._connect()
            client = self._client
            if client is None:  # why was reported by _connect; the rest of the turn is dropped
                self._contexts[context_id] = _Context(-1, failed=True)
                await self._end_context(context_id)
                yield None
                return
            self._contexts[context_id] = _Context(client.generation)
            if not await self._send(context_id,
                                    lambda c: c.start(context_id, **self._start_fields())):
                yield None
                return
        elif ctx.failed or ctx.ended:
            if not ctx.failed:
                log.warning("text for context %s after its end: not spoken", context_id)
            yield None
            return
        ctx = self._contexts.get(context_id)
        if ctx is not None:  # (None: the session was lost for good meanwhile, and reported)
            await self._text(context_id, ctx, text)
        await self.start_tts_usage_metrics(text)
        yield None

    async def flush_audio(self, context_id: str | None = None) -> None:
        """The end of the context's input (an LLM turn, a speak frame): our ``end``."""
        cid = context_id or self.get_active_audio_context_id()
        ctx = self._contexts.get(cid) if cid else None
        if cid is None or ctx is None or ctx.ended or ctx.failed:
            return
        ctx.ended = True
        if ctx.flusher is not None:
            await ctx.flusher  # the text held back goes first
        await self._send_pending(cid, ctx)
        await self._send(cid, lambda c: c.end(cid))

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: ``cancel`` the context at once; the socket stays open."""
        await self.stop_all_metrics()
        await self._cancel_context(context_id)
        await super().on_audio_context_interrupted(context_id)

    async def _handle_interruption(self, frame: InterruptionFrame,
                                   direction: FrameDirection) -> None:
        # pipecat interrupts the audio contexts it has; one it ended early (its audio timeout,
        # which _hold_open keeps off unless the event loop stalls) may still be open on the
        # server, waiting for the rest of its turn
        kept = {c for c, x in self._tts_contexts.items() if not x.interruptible}
        idle = [c for c, x in self._contexts.items() if not (x.done or x.failed)
                and c not in kept and not self.audio_context_available(c)]
        await super()._handle_interruption(frame, direction)
        for cid in idle:
            await self._cancel_context(cid)

    async def _cancel_context(self, context_id: str) -> None:
        ctx = self._contexts.pop(context_id, None)
        if ctx is not None and ctx.flusher is not None:
            await self.cancel_task(ctx.flusher)
        client = self._client
        if ctx is not None and client is not None and ctx.generation == client.generation:
            # a lost session took the context with it
            with contextlib.suppress(SessionLost, websockets.ConnectionClosed):
                await client.cancel(context_id)

    async def on_turn_context_completed(self) -> None:
        cid = self._turn_context_id
        await super().on_turn_context_completed()
        if cid is not None:  # pipecat flushes only a context it has: one it ended early too
            await self.flush_audio(cid)

    async def on_audio_context_completed(self, context_id: str) -> None:
        ctx = self._contexts.get(context_id)
        if ctx is not None and not (ctx.done or ctx.failed):
            pass  # ended early by pipecat (its audio timeout): the rest of the turn goes on
        elif ctx is not None and not ctx.failed:  # failed ones stay: the turn's text drops
            del self._contexts[context_id]
        elif len(self._contexts) > MAX_FAILED:
            for cid in [c for c, x in self._contexts.items() if x.failed][:MAX_FAILED // 2]:
                del self._contexts[cid]
        await super().on_audio_context_completed(context_id)

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:  # type: ignore[override]
        try:
            if is_given(delta.language):
                server_language(delta.language)
        except ValueError as e:
            await self._report(ServerError("bad_value", str(e)))
            delta.language = NOT_GIVEN
        changed = await super()._update_settings(delta)
        fields: dict[str, Any] = {k: getattr(self._settings, k) for k in ("voice", "speed")
                                  if k in changed}
        if "language" in changed and self._turn_context_id:
            # a context's language is fixed: the turn goes on in a new one
            await self._push_sequencer_frames(
                await self._aggregated_frame_sequencer.finalize(self._turn_context_id),
                self._turn_context_id)
            await self.flush_audio(self._turn_context_id)
            self._turn_context_id = None
            self._turn_context_id = self.create_context_id()
        elif fields:
            for cid in [c for c, x in self._contexts.items() if not (x.ended or x.failed)]:
                await self._send(cid, self._updater(cid, fields))
        return changed

    @staticmethod
    def _updater(cid: str, fields: dict[str, Any]) -> Callable[[RealtimeClient], Awaitable[None]]:
        return lambda client: client.update(cid, **fields)

    # -- the server's messages ------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        """The session's messages until it is closed here; a loss is recovered in place."""
        while self._client is not None:
            try:
                await self._receive_messages()
            except SessionLost as lost:
                if not await self._recover(lost):
                    return
            except websockets.ConnectionClosed as closed:
                if not self._disconnecting:
                    await self._lose_all(closed_error(closed))
                return

    async def _receive_messages(self) -> None:
        client = self._client
        while client is not None and client is self._client:
            await self._handle(await client.recv())

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind, cid = msg.get("type"), msg.get("context_id")
        if kind == "error":
            await self._server_error(ServerError.from_message(msg))
            return
        ctx = self._contexts.get(cid) if isinstance(cid, str) else None
        if ctx is None or cid is None or ctx.done:
            return  # not ours any more (interrupted, ended)
        if kind == "done":
            await self._end_context(cid)
            return
        if not self.audio_context_available(cid):
            return  # pipecat ended it (interrupted; or a stop_frame_timeout_s before we held it)
        if kind == "audio":
            await self.append_to_audio_context(cid, TTSAudioRawFrame(
                audio=msg["data"], sample_rate=self.sample_rate, num_channels=1, context_id=cid))
        elif kind == "alignment":
            words = word_times(msg.get("words") or [], ctx.offset_s)
            await self.add_word_timestamps([(w, start) for w, start, _ in words], cid)

    async def _server_error(self, error: ServerError) -> None:
        """Reported; a context the server will say nothing more of ends here too (a refused
        start is reported once: its own error, not the refusals of the text that followed)."""
        cid = error.context_id
        ctx = self._contexts.get(cid) if cid else None
        if ctx is None or not (ctx.reported and error.code == "context_refused"):
            await self._report(error)
        if ctx is not None and cid is not None:
            ctx.reported = True
            if error.code in ENDS_CONTEXT:
                ctx.failed = True
                await self._end_context(cid)

    async def _report(self, error: ServerError, permanent: bool = False) -> None:
        await self.push_error(error_msg=str(error), exception=error, category=_category(error),
                              force_treat_as_permanent=permanent)

    async def _end_context(self, cid: str) -> None:
        """No more of this context will come: stop it in pipecat."""
        ctx = self._contexts.get(cid)
        if ctx is not None:
            ctx.ended = ctx.done = True
        if self.audio_context_available(cid):
            await self.append_to_audio_context(cid, TTSStoppedFrame(context_id=cid))
            await self.remove_audio_context(cid)

    # -- sending, and a lost session -------------------------------------------------------------

    def _start_fields(self) -> dict[str, Any]:
        s = self._settings
        fields: dict[str, Any] = {"codec": "pcm16", "sample_rate": self.sample_rate,
                                  "timestamps": "word",
                                  "language": server_language(s.language if is_given(s.language)
                                                              else None)}
        if is_given(s.voice) and s.voice:
            fields["voice"] = s.voice
        if is_given(s.speed) and s.speed is not None:
            fields["speed"] = float(s.speed)
        return fields

    async def _text(self, cid: str, ctx: _Context, text: str) -> None:
        """A delta goes at once while the session is within the server's message rate; over
        it, deltas pile up and go as one ``text`` when the rate allows (nothing is dropped)."""
        ctx.pending += text
        if ctx.flusher is not None and not ctx.flusher.done():
            return
        if self._bucket is None or self._bucket.wait_s() <= 0:
            await self._send_pending(cid, ctx)
        else:
            ctx.flusher = self.create_task(self._flush_later(cid, ctx), name="realtime-text")

    async def _flush_later(self, cid: str, ctx: _Context) -> None:
        while ctx.pending and not ctx.failed:
            await asyncio.sleep(self._bucket.wait_s() if self._bucket is not None else 0.0)
            await self._send_pending(cid, ctx)

    async def _send_pending(self, cid: str, ctx: _Context) -> None:
        text, ctx.pending = ctx.pending, ""
        if text:
            await self._send(cid, lambda c: c.text(text, cid))

    async def _send(self, cid: str, op: Callable[[RealtimeClient], Awaitable[None]]) -> bool:
        """One message for a context; a lost session is recovered first (what failed to go is
        sent again by the recovery, from the lost session's record). False if the context
        failed."""
        client = self._client
        if client is None:
            return False
        try:
            if self._bucket is not None:
                self._bucket.take()
            await op(client)
            return True
        except SessionLost as lost:
            return await self._recover(lost) and cid in self._contexts
        except websockets.ConnectionClosed as closed:
            await self._lose_all(closed_error(closed))
            return False

    async def _recover(self, lost: SessionLost) -> bool:
        """A new session for a lost one, and the lost contexts resumed on it (once, whoever of
        the receive loop and the senders gets here first)."""
        client = self._client
        if client is None:
            return False
        try:
            back = await client.reconnect(lost)
        except ReconnectFailed as e:
            if self._client is client:
                why = refusal(e) or ServerError(f"close_{lost.code}", f"session lost "
                                                f"({lost.reason or 'no reason'}), and none again: "
                                                f"{e}", close_code=lost.code)
                await self._lose_all(why)
            return False
        if self._resumed >= client.generation:
            await self._resuming.wait()
            return True
        self._resumed, self._resuming = client.generation, asyncio.Event()
        try:
            self._websocket = client.ws
            self._bucket = RateBucket(client.ready.get("limits", {}))
            log.info("realtime session lost (close %d %s): resumed after %.2f s", back.code,
                     back.reason, back.downtime_s)
            for lost_ctx in back.lost:
                await self._resume(client, lost_ctx)
        except (SessionLost, websockets.ConnectionClosed):
            pass  # lost again: what was not resumed is in the new loss, the receive loop's
        finally:
            self._resuming.set()
        return True

    async def _resume(self, client: RealtimeClient, lost: LostContext) -> None:
        cid = lost.context_id
        ctx = self._contexts.get(cid)
        if ctx is None or not self.audio_context_available(cid):
            return
        ctx.offset_s += lost.audio_ms / 1000.0
        ctx.generation = client.generation
        await client.start(cid, **lost.settings)
        if lost.text_unspoken:
            await client.text(lost.text_unspoken, cid)
        if lost.ended:
            await client.end(cid)

    async def _lose_all(self, error: ServerError) -> None:
        """The session is gone for good: say why, and end every open context."""
        await self._report(error)
        self._client, self._websocket = None, None
        for cid in list(self._contexts):
            await self._end_context(cid)
        self._contexts.clear()
