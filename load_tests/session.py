"""One simulated voice-agent session: connect, speak a few turns (text streamed as tokens at an
LLM's rate), play the audio in real time through a ``Playback`` buffer, think, and maybe barge
in; everything it saw is recorded for the report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import websockets

from realtime.client import RealtimeClient

from .playback import Playback

Outcome = Literal["completed", "barged_in", "failed", "refused"]
TurnOutcome = Literal["done", "cancelled", "error", "timeout", "closed"]
REFUSAL_CODES = (1013, 1008)  # server full / draining; policy (auth, origin, rate)


@dataclass(frozen=True, slots=True)
class Turn:
    deltas: tuple[str, ...]  # the text, as token deltas
    think_s: float  # pause after the audio played out (the user speaking)
    barge_at_ms: float | None = None  # cancel once this much audio has played


@dataclass(frozen=True, slots=True)
class SessionPlan:
    turns: tuple[Turn, ...]
    tokens_per_s: float = 30.0
    jitter_ms: float = 80.0
    codec: str = "opus"
    turn_timeout_s: float = 60.0


@dataclass(slots=True)
class TurnResult:
    start_s: float  # since the run began
    active: int  # sessions active when the turn began
    outcome: TurnOutcome = "timeout"
    ttfa_client_ms: float | None = None  # first audio frame received - first text sent
    ttfa_server_ms: float | None = None  # metrics.first_audio_ms of the first chunk
    # First audio frame received - the delta that completed the first chunk's text was sent:
    # the server's part of the latency, without the LLM's (known once chunk 0's metrics come).
    ttfa_after_text_ms: float | None = None
    audio_ms: float = 0.0
    gaps_ms: list[float] = field(default_factory=list)
    underruns: int = 0
    underrun_ms: float = 0.0
    rtf: list[float] = field(default_factory=list)  # per chunk, server-reported
    error: str | None = None


@dataclass(slots=True)
class SessionResult:
    start_s: float
    outcome: Outcome = "failed"
    close_code: int | None = None  # the code the server closed with, when it did
    error: str | None = None
    connect_ms: float | None = None
    end_s: float = 0.0
    turns: list[TurnResult] = field(default_factory=list)


@dataclass(slots=True)
class Gauge:
    """Sessions active now (shared by the sessions of one run)."""

    value: int = 0
    peak: int = 0

    def add(self, n: int) -> None:
        self.value += n
        self.peak = max(self.peak, self.value)


async def run_session(url: str, plan: SessionPlan, t0: float, gauge: Gauge) -> SessionResult:
    """Run one planned session against ``url``; never raises (failures are recorded)."""
    res = SessionResult(start_s=time.monotonic() - t0)
    gauge.add(1)
    client: RealtimeClient | None = None
    try:
        client = await asyncio.wait_for(RealtimeClient.connect(url, codec=plan.codec),
                                        plan.turn_timeout_s)
        res.connect_ms = (time.monotonic() - t0 - res.start_s) * 1000.0
        barged = False
        for i, turn in enumerate(plan.turns):
            tr = TurnResult(start_s=time.monotonic() - t0, active=gauge.value)
            res.turns.append(tr)
            await _turn(client, f"t{i}", turn, plan, tr)
            if tr.outcome not in ("done", "cancelled"):
                res.error = tr.error or tr.outcome
                res.close_code = client.close_code if tr.outcome == "closed" else None
                return res
            barged |= tr.outcome == "cancelled"
            await asyncio.sleep(turn.think_s)
        res.outcome = "barged_in" if barged else "completed"
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        res.close_code, res.error = code, f"closed {code}: {exc.rcvd.reason if exc.rcvd else ''}"
        res.outcome = "refused" if code in REFUSAL_CODES and not res.turns else "failed"
    except (OSError, TimeoutError, ConnectionError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        gauge.add(-1)
        res.end_s = time.monotonic() - t0
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)
    return res


async def _send_text(client: RealtimeClient, ctx: str, deltas: tuple[str, ...], rate: float,
                     sent: list[tuple[int, float]]) -> None:
    """Send the deltas at ``rate``; ``sent`` gets (characters sent so far, time) per delta."""
    chars = 0
    for delta in deltas:
        chars += len(delta)
        sent.append((chars, time.monotonic()))
        await client.text(delta, ctx)
        await asyncio.sleep(1.0 / rate)
    await client.end(ctx)


async def _turn(client: RealtimeClient, ctx: str, turn: Turn, plan: SessionPlan,
                tr: TurnResult) -> None:
    play = Playback(plan.jitter_ms)
    sent: list[tuple[int, float]] = []
    sender = asyncio.create_task(_send_text(client, ctx, turn.deltas, plan.tokens_per_s, sent))
    deadline = time.monotonic() + plan.turn_timeout_s
    barge_at = turn.barge_at_ms
    try:
        while True:
            now = time.monotonic()
            wait = deadline - now
            target = play.time_at(barge_at) if barge_at is not None else None
            if target is not None:
                wait = min(wait, target - now)
            if wait <= 0:
                if barge_at is None or now >= deadline:
                    tr.outcome, tr.error = "timeout", f"no end of turn in {plan.turn_timeout_s} s"
                    return
                sender.cancel()  # the user speaks: stop the LLM, cancel what was not heard
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                await client.cancel(ctx, round(play.played_ms(now), 1))
                barge_at = None
                continue
            try:
                msg = await asyncio.wait_for(client.recv(), wait)
            except TimeoutError:
                continue
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                tr.outcome, tr.error = "closed", f"closed {code} mid-turn"
                return
            if _handle(msg, ctx, play, sent, tr):
                break
    finally:
        if not sender.done():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        tr.audio_ms, tr.gaps_ms = play.received_ms, play.gaps_ms
        tr.underruns, tr.underrun_ms = play.underruns, play.underrun_ms
    if tr.outcome == "done" and (end := play.finished_at()) is not None:
        await asyncio.sleep(max(0.0, end - time.monotonic()))  # let it play out


def _handle(msg: dict[str, Any], ctx: str, play: Playback, sent: list[tuple[int, float]],
            tr: TurnResult) -> bool:
    """Account for one message; True when the turn is over."""
    kind = msg.get("type")
    if msg.get("context_id", ctx) != ctx:
        return False
    if kind == "audio":
        now = time.monotonic()
        if tr.ttfa_client_ms is None and sent:
            tr.ttfa_client_ms = (now - sent[0][1]) * 1000.0
        play.frame(now, float(msg["duration_ms"]))
    elif kind == "metrics":
        if tr.ttfa_server_ms is None and msg.get("first_audio_ms") is not None:
            tr.ttfa_server_ms = float(msg["first_audio_ms"])
            first_frame = play.first_arrival
            need = len(str(msg.get("text", "")).rstrip())
            completed = next((t for n, t in sent if n >= need), None)
            if first_frame is not None and completed is not None:
                tr.ttfa_after_text_ms = (first_frame - completed) * 1000.0
        tr.rtf.append(float(msg["rtf"]))
    elif kind == "done":
        tr.outcome = "done"
        return True
    elif kind == "cancelled":
        tr.outcome = "cancelled"
        return True
    elif kind == "error":
        tr.outcome, tr.error = "error", f"{msg.get('code')}: {msg.get('message')}"
        return True
    return False
