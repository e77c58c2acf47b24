"""The engine as the server sees it: ``EngineClient``, which the in-process ``Engine``
(``realtime.engine.loop``) and the remote one (``realtime.engine.ipc.channel``) both are, and
``EngineSource``, how an app gets one."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

from realtime.config import ServerConfig
from realtime.engine.info import EngineStats, ModelInfo
from realtime.engine.request import ChunkRequest, ChunkResult


class EngineClient(Protocol):
    """The engine as the server uses it, in this process or in another."""

    info: ModelInfo

    def clock(self) -> float:
        """Seconds, monotonic: the clock of request deadlines (the same in every process)."""
        ...

    def submit(self, request: ChunkRequest) -> Future[ChunkResult]:
        """Queue a chunk; validation errors are raised at once, refusals (busy, stopped) too."""
        ...

    def cancel(self, session: str, context: str | None = None) -> object:
        """Drop an owner's chunks: queued ones never run, their futures fail now."""
        ...

    @property
    def running(self) -> bool:
        ...

    def stats(self) -> EngineStats:
        ...

    def watch(self, callback: Callable[[bool, str], None]) -> None:
        """``callback(up, reason)`` when the engine is lost or back (from any thread)."""
        ...

    def stop(self, timeout: float = 30.0) -> None:
        ...


# Blocking (run in a thread): load or connect, warm up, and return the engine; the second
# argument hears what it is doing (for /readyz).
EngineSource = Callable[[ServerConfig, Callable[[str], None]], EngineClient]
