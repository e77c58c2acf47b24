"""What the app's routes share (one ``AppState`` per app, no globals): its configuration,
metrics, engine, front end, open sessions, and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

from realtime.config import ServerConfig
from realtime.engine.client import EngineClient
from realtime.engine.request import ChunkResult
from realtime.session.messages import CLOSE_INTERNAL
from realtime.text.phonemize import Phonemizer

from .metrics import ServerMetrics
from .pace import ChunkPace
from .speech import observe_chunk

log = logging.getLogger("realtime.server")

Status = Literal["loading", "ready", "draining", "failed"]


class Session(Protocol):
    """An open session as the state sees it (``realtime.server.ws.SessionPump``)."""

    def drain(self) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def open_contexts(self) -> int: ...


@dataclass
class AppState:
    """What the routes share: one per app, built in ``create_app`` (no globals)."""

    config: ServerConfig
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    pace: ChunkPace = field(default_factory=ChunkPace)
    status: Status = "loading"
    reason: str = "loading the model"
    engine: EngineClient | None = None
    phonemizers: dict[str, Phonemizer] = field(default_factory=dict)
    sessions: set[Session] = field(default_factory=set)
    no_sessions: asyncio.Event = field(default_factory=asyncio.Event)

    def phonemizer_for(self, language: str) -> Phonemizer:
        return self.phonemizers[language]

    def observe_chunk(self, res: ChunkResult, now: float) -> None:
        observe_chunk(self.metrics, res, now)
        self.pace.observe(res)

    def engine_changed(self, up: bool, reason: str) -> None:
        """The engine process was lost (or is back): readiness follows it. When lost, the
        chunks waited for have failed (their contexts got an error), and every session is
        closed with 1011, its reason telling the client to reconnect; new sessions get 1013
        (not ready) until it serves again."""
        if self.status == "draining":
            return
        if up:
            self.status, self.reason = "ready", "serving"
            log.info("engine back: serving")
            return
        self.status, self.reason = "loading", f"engine lost ({reason}); waiting for it"

        def close_all() -> None:  # after the failed chunks' errors have been queued
            for pump in list(self.sessions):
                pump.close(CLOSE_INTERNAL, "engine process lost: reconnect")

        asyncio.get_running_loop().call_later(0.1, close_all)

    async def drain(self) -> None:
        """Readiness goes false; new sessions get 1013; each open session closes with 1001
        once it has nothing left to say, or when ``drain_timeout_s`` runs out."""
        self.status, self.reason = "draining", "draining"
        for pump in list(self.sessions):
            pump.drain()
        if not self.sessions:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.no_sessions.wait(), self.config.drain_timeout_s)
        for pump in list(self.sessions):
            pump.close(1001, "server draining")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.no_sessions.wait(), 5.0)
