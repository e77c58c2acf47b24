"""A real uvicorn server on a free port, serving a tiny random-weight model with Kokoro's
vocab (so the real text front end's phonemes are valid): in this process (a thread), or as
``realtime serve --workers`` does it (a supervisor process with an engine process and workers,
the registered ``tiny-random`` model)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
import uvicorn

from load_tests.server import free_port
from realtime.config import EngineConfig, ServerConfig
from realtime.engine.runner.local import local_engine
from realtime.server.app import DrainingServer, create_app
from realtime.server.state import AppState
from realtime.server.ws import keepalive
from realtime.weights.registry import LoadedModel
from realtime.weights.tiny import build_tiny


def tiny_kokoro(seed: int = 0) -> LoadedModel:
    model, voices = build_tiny(seed)
    return LoadedModel("tiny", Path("."), model, voices, "jf_alpha")


@dataclass
class Running:
    url: str
    server: uvicorn.Server | None
    thread: threading.Thread | None
    loop: asyncio.AbstractEventLoop | None
    process: BaseProcess | None = None  # the supervisor, in the processes mode
    state: AppState | None = None  # the app's state, for a server in this process
    workers: int | None = None  # the worker processes, in the processes mode

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def post(self, path: str, body: object, headers: dict[str, str] | None = None
             ) -> tuple[int, bytes, dict[str, str]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"content-type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def server_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop uvicorn runs on (to run coroutines there from a test)."""
        assert self.loop is not None, "not a server in this process"
        return self.loop

    def wait_ready(self, timeout: float = 60) -> None:
        """Until /readyz says 200 (and, with worker processes, every process serves: a
        /readyz goes to whichever worker accepts it)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self.get("/readyz")[0] == 200 and self._all_serving():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("the server did not become ready")

    def _all_serving(self) -> bool:
        if self.process is None:
            return True
        text = self.get("/metrics")[1].decode()
        ready = re.findall(r'realtime_process_ready\{pid="\d+",role="([\w-]+)"\} 1\.0', text)
        workers = (self.workers or 0)
        return "engine" in ready and sum(r.startswith("worker") for r in ready) >= workers


def start_server(config: ServerConfig, loader: Callable[[ServerConfig], LoadedModel],
                 port: int | None = None) -> Running:
    """The app on uvicorn in a thread, on ``port`` (default: a free one)."""
    port = port or free_port()
    app = create_app(config, local_engine(loader))
    ping = keepalive(config)
    server = DrainingServer(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio",
                                           ws_ping_interval=ping["ws_ping_interval"],
                                           ws_ping_timeout=ping["ws_ping_timeout"]),
                            app.state.realtime)
    loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > end or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return Running(url, server, thread, loop, state=app.state.realtime)


def start_processes(config: ServerConfig, workers: int = 2) -> Running:
    """``realtime serve --workers`` with ``config``: a supervisor process (SIGTERM drains)."""
    port = free_port()
    config = replace(config, host="127.0.0.1", port=port, model="tiny-random",
                     log_level="warning", workers=workers)
    from realtime.server.processes import serve_workers

    process = multiprocessing.get_context("spawn").Process(target=serve_workers,
                                                           args=(config, workers))
    process.start()
    return Running(f"http://127.0.0.1:{port}", None, None, None, process, workers=workers)


def stop_server(running: Running) -> None:
    if running.process is not None:
        running.process.terminate()
        running.process.join(60)
        if running.process.is_alive():
            running.process.kill()
        return
    assert running.server is not None and running.thread is not None
    running.server.should_exit = True
    running.thread.join(30)


def tiny_config_for_tests(**overrides: object) -> ServerConfig:
    # Eager norms: a compile in every engine process would cost seconds each (tests/conftest).
    return ServerConfig(engine=EngineConfig(device="cpu", threads=1, warm_up=True,
                                            cpu_fused_norms=False),
                        **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module",
                params=["one-process", pytest.param("processes", marks=pytest.mark.e2e)])
def tiny_server(request: pytest.FixtureRequest) -> Iterator[Running]:
    """The server suites run against both shapes of the server."""
    if request.param == "processes":
        running = start_processes(tiny_config_for_tests())
    else:
        lm = tiny_kokoro()
        running = start_server(tiny_config_for_tests(), lambda cfg: lm)
    running.wait_ready()
    yield running
    stop_server(running)
