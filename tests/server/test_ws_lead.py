"""Egress paced by playback, end to end: a real uvicorn server with the keepalive that
``ws.keepalive`` gives it, and real websockets clients (tiny model)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import websockets

from realtime.client import RealtimeClient
from realtime.server.state import AppState
from tests.server.conftest import start_server, stop_server, tiny_config_for_tests, tiny_kokoro

MAX_LEAD_S = 0.5
STALL_S = 2.0
LONG = " ".join(f"This is sentence number {i}, and it goes on for a little while."
                for i in range(12))  # about 4 s of the tiny model's audio at speed 0.5


@dataclass
class Served:
    url: str  # the WebSocket endpoint
    state: AppState


@pytest.fixture(scope="module")
def paced() -> Iterator[Served]:
    lm = tiny_kokoro()
    running = start_server(tiny_config_for_tests(max_lead_s=MAX_LEAD_S, stall_timeout_s=STALL_S),
                           lambda cfg: lm)  # with the keepalive that app.serve passes too
    running.wait_ready()
    assert running.state is not None
    yield Served(running.url.replace("http://", "ws://") + "/v1/stream", running.state)
    stop_server(running)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def submitted(state: AppState) -> int:
    assert state.engine is not None
    st = state.engine.stats()
    return st.chunks + st.queued + st.running + st.cancelled


def most_ahead(arrivals: list[tuple[float, dict[str, Any]]], cid: str) -> float:
    """The most audio of ``cid`` that had arrived ahead of a listener playing it in real time
    from its first frame (waiting whenever it runs out)."""
    level, last, most = 0.0, None, 0.0
    for t, m in arrivals:
        if m["type"] == "audio" and m["context_id"] == cid:
            level = level if last is None else max(0.0, level - (t - last))
            level += m["duration_ms"] / 1000
            last = t
            most = max(most, level)
    return most


async def wait_no_sessions(state: AppState, within: float) -> float:
    """How long until the server has no session (``within`` at most). Polled: the server's
    ``no_sessions`` event belongs to its own loop, in another thread."""
    start = time.monotonic()
    for _ in range(int(within / 0.02)):
        if not state.sessions:
            break
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def test_audio_arrives_at_most_max_lead_ahead_per_context(paced: Served) -> None:
    async def main() -> None:
        await wait_no_sessions(paced.state, 5)
        c = await RealtimeClient.connect(paced.url, codec="pcm16", sample_rate=16000)
        await c.speak("Warm up.", "warm")  # the server measures its pace: no chunk plan
        before = submitted(paced.state)
        await c.start("long", speed=0.5)
        await c.text(LONG, "long")
        await c.end("long")
        arrivals: list[tuple[float, dict[str, Any]]] = []
        short_at = long_submits = None
        async for msg in c.messages():
            now = time.monotonic()
            arrivals.append((now, msg))
            if short_at is None and msg["type"] == "audio" and msg["seq"] == 30:
                # The long context is past its lead: its later chunks wait for playback.
                long_submits = submitted(paced.state) - before
                short_at = now
                await c.text("A short one.", "short")
                await c.end("short")
            if sum(m["type"] == "done" for _, m in arrivals) == 2:
                break
        await c.close()
        long_audio = [(t, m) for t, m in arrivals if m.get("context_id") == "long"]
        chunks = sum(m["type"] == "metrics" for _, m in long_audio)
        assert long_submits is not None and long_submits < chunks - 1
        for cid in ("long", "short"):  # 0.15: the client's own reading jitter
            assert most_ahead(arrivals, cid) <= MAX_LEAD_S + 0.15
        # The long context was paced by playback, not sent as fast as it was made ...
        total = sum(m["duration_ms"] for _, m in long_audio if m["type"] == "audio") / 1000
        first = next(t for t, m in long_audio if m["type"] == "audio")
        assert long_audio[-1][1]["type"] == "done"
        assert long_audio[-1][0] - first >= total - MAX_LEAD_S - 0.2
        # ... and held none of the short one back: its audio came at once, not after the long
        # one's held audio (seconds of it).
        assert short_at is not None
        short_done = next(t for t, m in arrivals if m.get("context_id") == "short"
                          and m["type"] == "done")
        assert short_done - short_at < 1.0 < long_audio[-1][0] - short_at

    run(main())


def test_a_client_that_stops_reading_is_dropped_within_stall_timeout(paced: Served) -> None:
    """The client library stops reading its socket once its receive queue is full, so it
    answers no more pings: uvicorn's keepalive closes the connection (1011) and the session
    ends, its engine work cancelled, within stall_timeout_s, though the lead bound keeps the
    kernel's buffers far from full (no send ever blocks)."""
    async def main() -> None:
        await wait_no_sessions(paced.state, 5)
        # its own pings off: only the server's keepalive is at work
        async with websockets.connect(paced.url + "?codec=pcm16", ping_interval=None) as ws:
            await ws.recv()  # ready
            for msg in ({"type": "start", "context_id": "a", "speed": 0.5},
                        {"type": "text", "context_id": "a", "text": LONG * 3},
                        {"type": "end", "context_id": "a"}):
                await ws.send(json.dumps(msg))
            stopped = time.monotonic()  # from here on the client reads nothing
            await asyncio.sleep(0.2)
            assert len(paced.state.sessions) == 1
            dropped = await wait_no_sessions(paced.state, 3 * STALL_S) + 0.2
            assert not paced.state.sessions and dropped < STALL_S
            assert paced.state.engine is not None
            st = paced.state.engine.stats()
            assert st.queued == 0
            # Reading again, the client finds what was sent, then the keepalive's close.
            got = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    got.append(json.loads(await ws.recv()))
            assert ws.close_code == 1011 and "keepalive" in (ws.close_reason or "")
            assert got and all(m.get("type") != "done" for m in got)
            assert time.monotonic() - stopped < 10

    run(main())
