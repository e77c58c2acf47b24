"""The Starlette app: the engine in the lifespan, HTTP routes, readiness and drain.

``create_app(config, engine)`` builds everything from one ``ServerConfig``. The engine comes
from an ``EngineSource``: ``realtime serve --workers 0`` passes one in this process
(``realtime.engine.runner.local.local_engine``; tests pass a tiny model), a session worker one
that connects to the engine process (``remote_engine``). This module never imports torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from realtime.codecs import INPUT_RATE
from realtime.codecs.wav import wav_header
from realtime.config import ServerConfig
from realtime.engine.client import EngineClient, EngineSource
from realtime.errors import EngineBusy, EngineStopped, InputError, RealtimeError, VoiceError
from realtime.process import multiprocess
from realtime.text.languages import AUTO, language_codes
from realtime.text.phonemize import Phonemizer
from realtime.voice_names import openai_voices, voice_info

from .metrics import ServerMetrics
from .pace import ChunkPace
from .speech import (
    available_aliases,
    parse_speech,
    resolve_voice,
    synthesize_speech,
)
from .state import AppState
from .ws import keepalive, stream_endpoint

log = logging.getLogger("realtime.server")

# The browser client: web_client/ of the checkout, beside the realtime package.
DEFAULT_WEB_DIR = Path(__file__).resolve().parents[2] / "web_client"



def remote_engine(address: str, lost_after_s: float = 3.0) -> EngineSource:
    """The engine process at ``address`` (``realtime serve --workers``): wait until it serves."""
    def start(config: ServerConfig, status: Callable[[str], None]) -> EngineClient:
        from realtime.engine.ipc.channel import RemoteEngine

        return RemoteEngine(address, lost_after_s).connect(status)
    return start


async def start_serving(state: AppState, source: EngineSource) -> None:
    """Get the engine (load the model and warm up, or connect), then report ready (runs in the
    background, so /healthz and /readyz answer meanwhile)."""
    cfg = state.config

    def status(reason: str) -> None:
        state.reason = reason

    async def load_front_end() -> None:
        for language in Phonemizer.languages():
            state.phonemizers[language] = await asyncio.to_thread(Phonemizer, language)

    # The text front end loads while the engine loads (in this process or its own), so that a
    # worker is ready with its engine, not after it (docs/lab/2026-11-29-start-up.md).
    front_end = asyncio.create_task(load_front_end())
    try:
        try:
            engine = await asyncio.to_thread(source, cfg, status)
            state.reason = "loading the text front end"
            await front_end
        finally:
            front_end.cancel()  # done by now, unless the engine failed: then nobody waits
        state.pace = ChunkPace(cfg.chunk_plan_rtf, engine.info.device.split(":")[0])
        state.engine = engine
        state.status, state.reason = "ready", "serving"
        loop = asyncio.get_running_loop()

        def changed(up: bool, reason: str) -> None:  # from the engine client's thread
            loop.call_soon_threadsafe(state.engine_changed, up, reason)

        engine.watch(changed)
        log.info("ready: model %s on %s", engine.info.name, engine.info.device)
    except RealtimeError as exc:
        state.status, state.reason = "failed", f"[{exc.code}] {exc.reason}"
        log.error("start-up failed: %s", state.reason)
    except Exception as exc:
        state.status, state.reason = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("start-up failed")


def create_app(config: ServerConfig, engine: EngineSource, role: str = "server") -> Starlette:
    """The app, its engine from ``engine`` (``realtime.engine.runner.local.local_engine`` in
    this process, ``remote_engine`` over IPC). ``role`` names the process in the metrics
    (``worker-0``, ...)."""
    state = AppState(config, metrics=ServerMetrics(role))
    source = engine

    async def sample_process() -> None:  # other processes read this one's figures from files
        while True:
            state.metrics.process.update(ready=state.status == "ready")
            await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(start_serving(state, source))
        sampler = asyncio.create_task(sample_process()) if multiprocess() else None
        try:
            yield
        finally:
            if sampler is not None:
                sampler.cancel()
            state.status, state.reason = "draining", "shutting down"
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if state.engine is not None:
                await asyncio.to_thread(state.engine.stop)

    app = Starlette(routes=_routes(state), lifespan=lifespan)
    app.state.realtime = state
    return app


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None
           ) -> JSONResponse:
    # OpenAI's error shape, so its client libraries show the message.
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"
                                   if status < 500 else "server_error", "code": code}},
                        status_code=status, headers=headers)


def _authorised(state: AppState, request: Request | WebSocket) -> bool:
    keys = state.config.api_keys
    if not keys:
        return True
    auth = request.headers.get("authorization", "")
    token = auth[7:] if auth.lower().startswith("bearer ") else request.query_params.get("token")
    return token is not None and any(hmac.compare_digest(token, k) for k in keys)


def _routes(state: AppState) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        ok = state.status != "failed"
        return JSONResponse({"status": "ok" if ok else "failed", "reason": state.reason},
                            status_code=200 if ok else 503)

    async def readyz(request: Request) -> Response:
        ready = state.status == "ready"
        body: dict[str, object] = {"ready": ready, "status": state.status,
                                   "reason": state.reason}
        if state.engine is not None:  # what the engine runs (realtime.engine.plan)
            body["plan"] = state.engine.info.plan
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        # Gauges sampled at scrape time (not on every session action).
        if state.engine is not None:
            state.metrics.queue_depth.set(state.engine.stats().queued)
        state.metrics.contexts.set(sum(p.open_contexts() for p in state.sessions))
        state.metrics.plan_rtf.set(state.pace.plan_rtf() or 0.0)
        return PlainTextResponse(state.metrics.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    async def voices(request: Request) -> Response:
        if not _authorised(state, request):
            return _error(401, "unauthorized", "missing or wrong API key")
        if state.engine is None:
            return _error(503, "not_ready", state.reason, {"Retry-After": "5"})
        info = state.engine.info
        aliases = openai_voices(state.config.openai_voices)
        return JSONResponse({"model": info.name, "default": info.default_voice,
                             "voices": list(info.voices),
                             "voice_info": [voice_info(v).as_wire() for v in info.voices],
                             "languages": [AUTO, *language_codes()],
                             "openai_voices": available_aliases(info, aliases)})

    async def speech(request: Request) -> Response:
        if not _authorised(state, request):
            return _error(401, "unauthorized", "missing or wrong API key")
        if state.status != "ready" or state.engine is None:
            return _error(503, "not_ready", state.reason, {"Retry-After": "5"})
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "bad_message", "the body is not valid JSON")
        engine = state.engine
        aliases = openai_voices(state.config.openai_voices)  # OpenAI's names: this route only
        try:
            req = parse_speech(body, state.config.voice or engine.info.default_voice,
                               state.config.max_input_chars,
                               lambda voice: resolve_voice(voice, engine.info, aliases),
                               state.config.language)
            chunks = synthesize_speech(req, engine, state.phonemizer_for, state.metrics,
                                       plan_rtf=state.pace.plan_rtf)
            first = await anext(chunks)  # errors before any byte become a proper status
        except (InputError, VoiceError) as exc:
            return _error(400, exc.code, exc.reason)
        except (EngineBusy, EngineStopped) as exc:
            return _error(503, exc.code, exc.reason, {"Retry-After": "1"})
        media = req.media_type
        # OpenAI's response id header: its client libraries read it (LiveKit warns without it).
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        if req.stream:
            async def body_iter() -> AsyncIterator[bytes]:
                try:
                    yield first
                    async for piece in chunks:
                        yield piece
                finally:
                    await chunks.aclose()  # a client gone mid-way cancels the rest now

            return StreamingResponse(body_iter(), media_type=media, headers=headers)
        pieces = [first]
        try:
            async for piece in chunks:
                pieces.append(piece)
        except RealtimeError as exc:
            return _error(500, exc.code, exc.reason)
        finally:
            await chunks.aclose()
        data = b"".join(pieces)
        if req.response_format == "wav" and not req.sse:
            data = wav_header(INPUT_RATE, len(data) // 2) + data
        return Response(data, media_type=media, headers=headers)

    async def stream(ws: WebSocket) -> None:
        await stream_endpoint(ws, state, lambda w: _authorised(state, w))

    return [
        WebSocketRoute("/v1/stream", stream),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/v1/voices", voices),
        Route("/v1/audio/speech", speech, methods=["POST"]),
        *_web_client(state.config),
    ]


def _web_client(config: ServerConfig) -> list[BaseRoute]:
    """The page at ``/`` and its files (plain HTML, CSS and ES modules: no build step)."""
    if not config.web_client:
        return []
    directory = config.web_dir or DEFAULT_WEB_DIR
    if not (directory / "index.html").is_file():
        log.warning("web client not served: no index.html in %s (set REALTIME_WEB_DIR, or "
                    "--no-web-client to silence this)", directory)

        async def missing(request: Request) -> Response:
            return _error(404, "not_found", f"the web client is not installed here ({directory}); "
                          "set REALTIME_WEB_DIR")
        return [Route("/", missing)]
    return [Mount("/", app=StaticFiles(directory=directory, html=True), name="web_client")]


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM/SIGINT draining the sessions first (a second signal: at once)."""

    def __init__(self, config: uvicorn.Config, state: AppState) -> None:
        super().__init__(config)
        self.realtime = state
        self._draining: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self._draining is not None or not self.realtime.sessions or loop is None:
            super().handle_exit(sig, frame)
            return
        log.info("signal %s: draining %d sessions (up to %.0f s)", signal.Signals(sig).name,
                 len(self.realtime.sessions), self.realtime.config.drain_timeout_s)

        def start() -> None:
            self._draining = loop.create_task(self.realtime.drain())
            self._draining.add_done_callback(lambda _: super(DrainingServer, self).handle_exit(
                sig, frame))

        loop.call_soon_threadsafe(start)


def serve(config: ServerConfig, engine: EngineSource) -> None:
    """Run the server in this process until SIGTERM / SIGINT (which drain first)."""
    app = create_app(config, engine)
    DrainingServer(_uvicorn_config(app, config), app.state.realtime).run()


def serve_on(config: ServerConfig, sock: socket.socket, engine: EngineSource,
             role: str) -> None:
    """A session worker: the app on a socket bound by the supervisor, its engine from
    ``engine``; SIGTERM drains as in a single process."""
    app = create_app(config, engine, role)
    DrainingServer(_uvicorn_config(app, config), app.state.realtime).run(sockets=[sock])


def _uvicorn_config(app: Starlette, config: ServerConfig) -> uvicorn.Config:
    ping = keepalive(config)
    return uvicorn.Config(app, host=config.host, port=config.port, log_level=config.log_level,
                          ws="websockets-sansio", ws_max_size=config.max_message_bytes + 1024,
                          ws_ping_interval=ping["ws_ping_interval"],
                          ws_ping_timeout=ping["ws_ping_timeout"])
