"""One load run: N session slots held open for a fixed time.

Each slot runs sessions back to back: its first session arrives at a random time (the N first
arrivals form a Poisson process over ``ramp_s``), and each next one an exponential gap after the
previous ends. So about N conversations are open at any time (the concurrency the capacity
question is about), arrivals stay random, and connection set-up and tear-down are part of the
load. After ``duration_s`` no session starts; those running finish. ``max_sessions`` bounds the
sessions started, ``timeout_s`` the whole run (sessions still running then are cut and count as
failed).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from . import corpus
from .server import Usage, sample_usage
from .session import Gauge, SessionPlan, SessionResult, Turn, run_session


@dataclass(frozen=True, slots=True)
class LoadConfig:
    concurrency: int = 4  # session slots
    duration_s: float = 30.0  # no session starts after this
    max_sessions: int = 1000  # sessions started at most
    timeout_s: float | None = None  # hard stop; None: duration_s + 90
    ramp_s: float = 5.0  # the first arrivals are spread over this (Poisson)
    turns: tuple[int, int] = (1, 3)  # agent turns per session (min, max)
    sentences: tuple[int, int] = (1, 2)  # sentences per turn (min, max)
    tokens_per_s: float = 30.0  # the LLM's streaming rate
    jitter_ms: float = 80.0  # playback starts this long after the first frame
    think_s: float = 1.0  # mean pause between turns (the user speaking), exponential
    gap_s: float = 0.5  # mean pause between sessions of a slot, exponential
    barge_in: float = 0.2  # share of sessions that cancel one turn mid-audio
    codec: str = "opus"
    seed: int = 0

    @property
    def hard_timeout_s(self) -> float:
        return self.timeout_s if self.timeout_s is not None else self.duration_s + 90.0


def plan_session(cfg: LoadConfig, rng: random.Random) -> SessionPlan:
    n = rng.randint(*cfg.turns)
    barge_turn = rng.randrange(n) if rng.random() < cfg.barge_in else None
    turns = tuple(
        Turn(tuple(corpus.tokens(corpus.utterance(rng, *cfg.sentences), rng)),
             rng.expovariate(1.0 / cfg.think_s) if cfg.think_s > 0 else 0.0,
             rng.uniform(400.0, 2500.0) if i == barge_turn else None)
        for i in range(n))
    return SessionPlan(turns, cfg.tokens_per_s, cfg.jitter_ms, cfg.codec)


@dataclass(slots=True)
class RunResult:
    config: LoadConfig
    sessions: list[SessionResult] = field(default_factory=list)
    wall_s: float = 0.0
    active: list[tuple[float, int]] = field(default_factory=list)  # (s, sessions active)
    peak_active: int = 0
    server: Usage = field(default_factory=Usage)
    client: Usage = field(default_factory=Usage)  # the load generator itself
    cut: int = 0  # sessions cut by the hard timeout
    extra: dict[str, object] = field(default_factory=dict)  # abuse results and the like


Background = Callable[[float, asyncio.Event], Coroutine[Any, Any, object]]


async def run_load(url: str, cfg: LoadConfig, server_pid: int | None = None,
                   background: Background | None = None) -> RunResult:
    """Run the load against ``url`` (ws://.../v1/stream). ``background(t0, stop)`` runs beside
    it (abusive clients) until ``stop`` is set; its result lands in ``RunResult.extra``."""
    out = RunResult(cfg)
    rng = random.Random(cfg.seed)
    gauge = Gauge()
    t0 = time.monotonic()
    stop = asyncio.Event()
    started = 0
    first = 0.0
    firsts = []
    for _ in range(cfg.concurrency):
        first += rng.expovariate(cfg.concurrency / cfg.ramp_s) if cfg.ramp_s > 0 else 0.0
        firsts.append(first)

    async def slot(k: int) -> None:
        nonlocal started
        srng = random.Random(f"{cfg.seed}/{k}")
        await asyncio.sleep(firsts[k])
        while time.monotonic() - t0 < cfg.duration_s and started < cfg.max_sessions:
            started += 1
            res = SessionResult(start_s=time.monotonic() - t0)
            out.sessions.append(res)
            done = await run_session(url, plan_session(cfg, srng), t0, gauge)
            out.sessions[out.sessions.index(res)] = done
            await asyncio.sleep(srng.expovariate(1.0 / cfg.gap_s) if cfg.gap_s > 0 else 0.0)

    async def sample_active() -> None:
        while not stop.is_set():
            out.active.append((time.monotonic() - t0, gauge.value))
            await asyncio.sleep(0.25)

    helpers = [asyncio.create_task(sample_active()),
               asyncio.create_task(sample_usage(os.getpid(), out.client, stop,
                                                   children=False))]  # the server is a child
    if server_pid is not None:
        helpers.append(asyncio.create_task(sample_usage(server_pid, out.server, stop)))
    bg = asyncio.create_task(background(t0, stop)) if background is not None else None
    slots = [asyncio.create_task(slot(k)) for k in range(cfg.concurrency)]
    _, pending = await asyncio.wait(slots, timeout=max(0.0, cfg.hard_timeout_s))
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for s in out.sessions:
        if s.end_s == 0.0:  # still running when the run was cut
            out.cut += 1
            s.outcome, s.error, s.end_s = "failed", "cut by the run timeout", time.monotonic() - t0
    out.wall_s = time.monotonic() - t0
    out.peak_active = gauge.peak
    stop.set()
    if bg is not None:
        out.extra["background"] = await bg
    await asyncio.gather(*helpers, return_exceptions=True)
    return out
