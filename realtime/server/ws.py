"""``/v1/stream``: the WebSocket pump. All logic is in ``SessionProtocol``; this moves frames,
engine results and timer ticks in, and executes the actions that come out.

Per session, three tasks: the reader (frames in), the writer (frames out: control frames
overtake queued audio; the egress queue's size drives ``pause``/``resume``; a frame the client
does not take within ``stall_timeout_s`` closes the session) and the timer (``poll`` at
``next_deadline``, and the drain check). Engine results arrive as future callbacks on the loop.

Pacing is the protocol's: each context's audio comes out of it no more than ``max_lead_s``
ahead of real-time playback (``poll`` releases the rest as playback catches up), so the egress
queue stays short and the byte water marks are only a session-wide backstop. A client that stops
reading therefore does not fill the kernel's buffers soon enough to block a ``send``; it is
caught by WebSocket pings instead (``keepalive``, uvicorn's ``ws_ping_interval`` and
``ws_ping_timeout``): a client library that stops reading stops answering them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime.config import ServerConfig
from realtime.engine.client import EngineClient
from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.errors import ChunkCancelled
from realtime.session.messages import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    Limits,
)
from realtime.session.protocol import (
    CancelChunks,
    Close,
    Send,
    SessionProtocol,
    SessionSettings,
    Submit,
)
from realtime.session.scheduler import SchedulerConfig

from .state import AppState

log = logging.getLogger("realtime.server")

# The share of stall_timeout_s given to uvicorn's keepalive. A client that stops reading is
# dropped at most ping interval + ping timeout = 0.8 stall after its socket is last read: the
# rest is margin for a client library to fill its receive queue first (``websockets`` reads
# until 16 messages wait: well under a second of audio frames) and for the next write. The
# timeout is the larger share: a pong can queue behind up to max_lead_s of audio that a client
# reading no faster than it plays takes that long to reach.
PING_INTERVAL_SHARE = 0.3
PING_TIMEOUT_SHARE = 0.5


def keepalive(config: ServerConfig) -> dict[str, float]:
    """uvicorn settings (``uvicorn.Config(**keepalive(config))``) that close a connection whose
    client answers no ping within ``stall_timeout_s`` (websockets-sansio: close 1011
    ``keepalive ping timeout``); the session then ends at its next write."""
    stall = config.stall_timeout_s
    return {"ws_ping_interval": PING_INTERVAL_SHARE * stall,
            "ws_ping_timeout": PING_TIMEOUT_SHARE * stall}


def session_settings(state: AppState) -> SessionSettings:
    cfg, engine = state.config, state.engine
    assert engine is not None
    info = engine.info
    return SessionSettings(
        voices=info.voices, voice=cfg.voice or info.default_voice, codec=cfg.codec,
        sample_rate=cfg.sample_rate, frame_ms=cfg.frame_ms, language=cfg.language,
        opus_bitrate=cfg.opus_bitrate, max_lead_s=cfg.max_lead_s or None,  # 0: no bound
        scheduler=SchedulerConfig(window_s=info.window_s),  # the engine's windows, if any
        limits=Limits(max_message_bytes=cfg.max_message_bytes, max_text_chars=cfg.max_text_chars,
                      max_buffered_chars=cfg.max_buffered_chars, max_contexts=cfg.max_contexts,
                      rate_messages_per_s=cfg.rate_messages_per_s, rate_burst=cfg.rate_burst,
                      idle_timeout_s=cfg.idle_timeout_s))


class SessionPump:
    def __init__(self, ws: WebSocket, state: AppState, engine: EngineClient,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ws = ws
        self.state = state
        self.engine = engine
        self.clock = clock
        self.session_id = uuid.uuid4().hex[:16]
        self.log = logging.LoggerAdapter(log, {"session_id": self.session_id})
        cfg = state.config
        self.high, self.low, self.stall = (cfg.egress_high_bytes, cfg.egress_low_bytes,
                                           cfg.stall_timeout_s)
        self.control: deque[Send] = deque()
        self.audio: deque[Send] = deque()
        self.queued = 0
        self.closing: Close | None = None
        self.draining = False
        self.stopped = False
        self.wake_writer = asyncio.Event()
        self.wake_timer = asyncio.Event()
        self.proto = SessionProtocol(session_settings(state), self.session_id,
                                     phonemizer=state.phonemizer_for,
                                     check_voice=engine.info.check_voice,
                                     query=dict(ws.query_params), now=clock(),
                                     observe=self._observe, plan_rtf=state.pace.plan_rtf)

    async def run(self) -> None:
        self._execute()
        tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write()),
                 asyncio.create_task(self._timer())]
        try:
            # The writer ends the session: after a Close it closes the socket; the reader ends
            # when the client goes (then nothing more can be written either).
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[0] in done and self.closing is None:
                self.proto.connection_lost()
                self._execute()
            elif tasks[1] not in done:
                await asyncio.wait([tasks[1]], timeout=self.stall + 1)
        finally:
            self.stopped = True  # wait_for can swallow a cancel that races a wake-up: the
            for t in tasks:  # loops check this flag too
                t.cancel()
            self.wake_timer.set()
            self.wake_writer.set()
            await asyncio.wait(tasks, timeout=5)
            self.engine.cancel(self.session_id)

    @property
    def paused(self) -> bool:
        """Egress above the high water mark (the protocol keeps the flag)."""
        return self.proto.paused

    def _observe(self, metrics: Mapping[str, Any]) -> None:
        first = metrics.get("first_audio_ms")
        if isinstance(first, int | float):
            self.state.metrics.first_audio.observe(first / 1000.0)

    def close(self, code: int, reason: str) -> None:
        self.proto.close(code, reason)
        self._execute()

    def open_contexts(self) -> int:
        return len(self.proto.contexts)

    def drain(self) -> None:
        """The server is draining: close with 1001 once nothing is left to say."""
        self.draining = True
        self.wake_timer.set()

    # -- executing actions -------------------------------------------------------------------
    def _execute(self) -> None:
        while actions := self.proto.actions():
            for a in actions:
                if isinstance(a, Send):
                    (self.control if a.kind == "control" else self.audio).append(a)
                    self.queued += len(a.frame)
                    if not self.paused and self.queued > self.high:
                        self.proto.pause()
                    self.wake_writer.set()
                elif isinstance(a, Submit):
                    self._submit(a.request)
                elif isinstance(a, CancelChunks):
                    self.engine.cancel(a.session, a.context_id)
                    kept = deque(s for s in self.audio if s.context_id != a.context_id)
                    self.queued -= sum(len(s.frame) for s in self.audio) - sum(
                        len(s.frame) for s in kept)
                    self.audio = kept
                elif isinstance(a, Close):
                    if self.closing is None:
                        self.closing = a
                    self.wake_writer.set()
        self.wake_timer.set()

    def _submit(self, request: ChunkRequest) -> None:
        self.log.debug("chunk %d of %r submitted", request.chunk_id, request.context)
        try:
            future = self.engine.submit(request)
        except Exception as exc:  # refused (busy, stopped) or invalid: the protocol says so
            self.proto.chunk_done(request, exc, self.clock())
            return
        wrapped = asyncio.wrap_future(future)
        wrapped.add_done_callback(lambda f: self._done(request, f))

    def _done(self, request: ChunkRequest, f: asyncio.Future[ChunkResult]) -> None:
        self.log.debug("chunk %d of %r back", request.chunk_id, request.context)
        outcome: ChunkResult | BaseException
        if f.cancelled():
            outcome = ChunkCancelled("cancelled")
        elif (exc := f.exception()) is not None:
            outcome = exc
        else:
            outcome = f.result()
            self.state.observe_chunk(outcome, self.engine.clock())
        self.proto.chunk_done(request, outcome, self.clock())
        self._execute()
        if isinstance(outcome, ChunkResult) and outcome.next is not None:  # the next piece
            piece = asyncio.wrap_future(outcome.next)
            piece.add_done_callback(lambda g: self._done(request, g))

    # -- tasks ---------------------------------------------------------------------------------
    async def _read(self) -> None:
        while self.closing is None:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            frame = msg.get("bytes")
            self.proto.receive(frame if frame is not None else msg.get("text") or "",
                               self.clock())
            self._execute()

    async def _write(self) -> None:
        while not self.stopped:
            await self.wake_writer.wait()
            self.wake_writer.clear()
            while self.control or self.audio:
                send = self.control.popleft() if self.control else self.audio.popleft()
                self.queued -= len(send.frame)
                if self.paused and self.queued <= self.low:
                    self.proto.resume(self.clock())
                    self._execute()
                try:
                    if isinstance(send.frame, bytes):
                        await asyncio.wait_for(self.ws.send_bytes(send.frame), self.stall)
                    else:
                        await asyncio.wait_for(self.ws.send_text(send.frame), self.stall)
                except TimeoutError:
                    self.log.warning("client took no frame for %.1f s: closing", self.stall)
                    self.proto.connection_lost()
                    self.closing = Close(CLOSE_POLICY, "reader stalled")
                    return
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return
            if self.closing is not None:
                with contextlib.suppress(Exception):
                    await self.ws.close(self.closing.code, self.closing.reason)
                return

    async def _timer(self) -> None:
        while not self.stopped:
            if self.draining and not self.proto.busy and self.closing is None:
                self.proto.close(CLOSE_GOING_AWAY, "server draining")
                self._execute()
            deadline = self.proto.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            try:
                await asyncio.wait_for(self.wake_timer.wait(), timeout)
                self.wake_timer.clear()
            except TimeoutError:
                self.proto.poll(self.clock())
                self._execute()


async def stream_endpoint(ws: WebSocket, state: AppState,
                          authorised: Callable[[WebSocket], bool]) -> None:
    """Accept, then refuse with a close code a browser can see, or run the session."""
    # Which process serves the session (a worker's role: worker-0, ...), for operators and tests.
    await ws.accept(headers=[(b"x-realtime-worker", state.metrics.process.role.encode())])
    origins = state.config.allowed_origins
    refusal: tuple[int, str] | None = None
    if not authorised(ws):
        refusal = (CLOSE_POLICY, "missing or wrong API key")
    elif origins and ws.headers.get("origin") not in origins:
        refusal = (CLOSE_POLICY, "origin not allowed")
    elif state.status != "ready" or state.engine is None:
        refusal = (CLOSE_TRY_AGAIN, f"not serving: {state.reason}")
    elif len(state.sessions) >= state.config.max_sessions:
        refusal = (CLOSE_TRY_AGAIN, f"server full ({state.config.max_sessions} sessions)")
    if refusal is not None:
        await ws.close(*refusal)
        return
    assert state.engine is not None
    pump = SessionPump(ws, state, state.engine)
    state.sessions.add(pump)
    state.no_sessions.clear()
    state.metrics.sessions.set(len(state.sessions))
    pump.log.info("session opened (%d open)", len(state.sessions))
    try:
        if state.status == "draining":
            pump.drain()
        await pump.run()
    finally:
        state.sessions.discard(pump)
        if not state.sessions:
            state.no_sessions.set()
        state.metrics.sessions.set(len(state.sessions))
        pump.log.info("session closed")
