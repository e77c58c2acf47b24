"""A real uvicorn server on a free port, serving a tiny random-weight model with Kokoro's
vocab (so the real text front end's phonemes are valid)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from load_tests.server import free_port
from realtime.config import EngineConfig, ServerConfig
from realtime.engine.registry import LoadedModel
from realtime.engine.tiny import build_tiny
from realtime.server.app import DrainingServer, create_app


def tiny_kokoro(seed: int = 0) -> LoadedModel:
    model, voices = build_tiny(seed)
    return LoadedModel("tiny", Path("."), model, voices, "jf_alpha")


@dataclass
class Running:
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

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
        return self.loop

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("the server did not become ready")


def start_server(config: ServerConfig, loader: Callable[[ServerConfig], LoadedModel]
                 ) -> Running:
    port = free_port()
    app = create_app(config, loader)
    server = DrainingServer(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio"),
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
    return Running(url, server, thread, loop)


def stop_server(running: Running) -> None:
    running.server.should_exit = True
    running.thread.join(30)


def tiny_config_for_tests(**overrides: object) -> ServerConfig:
    return ServerConfig(engine=EngineConfig(device="cpu", threads=1, warm_up=True),
                        **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_server() -> Iterator[Running]:
    lm = tiny_kokoro()
    running = start_server(tiny_config_for_tests(), lambda cfg: lm)
    running.wait_ready()
    yield running
    stop_server(running)
