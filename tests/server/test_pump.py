"""The WebSocket pump with a fake socket: egress water marks and a stalled reader; the settings
it takes from the config (the lead bound, uvicorn's keepalive)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack

from realtime.config import ServerConfig
from realtime.engine.loop import Engine
from realtime.engine.policy import EDFPolicy
from realtime.engine.runner.runner import ModelRunner
from realtime.server.state import AppState
from realtime.server.ws import SessionPump, keepalive, session_settings
from realtime.text.phonemize import Phonemizer
from tests.server.conftest import tiny_config_for_tests, tiny_kokoro


class FakeSocket:
    """Frames in from a queue; ``send_*`` blocks while ``open`` is clear (a reader that does
    not read)."""

    def __init__(self) -> None:
        self.query_params: dict[str, str] = {"codec": "pcm16", "sample_rate": "48000"}
        self.headers: dict[str, str] = {}
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.open = asyncio.Event()
        self.sent: list[bytes | str] = []
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send_bytes(self, data: bytes) -> None:
        await self.open.wait()
        self.sent.append(data)

    async def send_text(self, data: str) -> None:
        await self.open.wait()
        self.sent.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def say(self, **msg: Any) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "bytes": msgpack.packb(msg)})


def state_for(config: ServerConfig) -> AppState:
    lm = tiny_kokoro()
    state = AppState(config)
    engine = Engine(ModelRunner(lm), EDFPolicy(max_batch=1))
    engine.start(warm_up=False)
    state.engine = engine
    state.phonemizers = {"en-us": Phonemizer("en-us")}
    state.status = "ready"
    return state


SENTENCES = [f"Sentence number {i} is here and it keeps going on. " for i in range(400)]


def test_slow_reader_pauses_its_own_scheduling_then_resumes() -> None:
    state = state_for(tiny_config_for_tests(egress_high_bytes=20_000, egress_low_bytes=5_000,
                                            stall_timeout_s=30.0))

    async def main() -> None:
        ws = FakeSocket()
        assert state.engine is not None
        pump = SessionPump(ws, state, state.engine)  # type: ignore[arg-type]
        task = asyncio.create_task(pump.run())
        def submitted() -> int:
            st = state.engine.stats()  # type: ignore[union-attr]
            return st.chunks + st.queued + st.running

        sentences = iter(SENTENCES)
        for _ in range(400):  # the client reads nothing: audio piles up to the high mark
            if pump.paused:
                break
            ws.say(type="text", context_id="a", text=next(sentences))
            await asyncio.sleep(0.05)
        assert pump.paused
        before = submitted()
        for sentence in list(sentences)[:10]:  # more text while paused: held back, not queued
            ws.say(type="text", context_id="a", text=sentence)
        await asyncio.sleep(0.5)
        assert submitted() == before
        held = pump.queued
        assert held < 20_000 + 40_000  # bounded: the high mark plus what was in flight
        ws.say(type="end", context_id="a")
        ws.open.set()  # the client reads again
        for _ in range(1000):
            if any(isinstance(f, bytes) and msgpack.unpackb(f).get("type") == "done"
                   for f in ws.sent[-3:]):
                break
            await asyncio.sleep(0.02)
        assert not pump.paused
        types = [msgpack.unpackb(f)["type"] for f in ws.sent if isinstance(f, bytes)]
        assert types[0] == "ready" and types[-1] == "done"
        ws.inbox.put_nowait({"type": "websocket.disconnect"})
        await asyncio.wait_for(task, 10)

    try:
        asyncio.run(main())
    finally:
        assert state.engine is not None
        state.engine.stop()


def test_stalled_reader_is_dropped() -> None:
    state = state_for(tiny_config_for_tests(stall_timeout_s=0.3))

    async def main() -> None:
        ws = FakeSocket()  # never reads: even `ready` cannot be written
        assert state.engine is not None
        pump = SessionPump(ws, state, state.engine)  # type: ignore[arg-type]
        await asyncio.wait_for(pump.run(), 5)
        assert pump.closing is not None and pump.closing.reason == "reader stalled"

    try:
        asyncio.run(main())
    finally:
        assert state.engine is not None
        state.engine.stop()


def test_lead_bound_and_keepalive_from_the_config() -> None:
    state = state_for(tiny_config_for_tests())
    try:
        assert session_settings(state).max_lead_s == 3.0
        state.config = tiny_config_for_tests(max_lead_s=0.0)
        assert session_settings(state).max_lead_s is None  # 0: no bound
    finally:
        assert state.engine is not None
        state.engine.stop()
    cfg = tiny_config_for_tests()
    pings = keepalive(cfg)
    # A client that stops reading is dropped within stall_timeout_s, with margin; a pong may
    # wait behind max_lead_s of audio that a client reading at real time reaches that late.
    assert pings["ws_ping_interval"] + pings["ws_ping_timeout"] <= 0.8 * cfg.stall_timeout_s
    assert pings["ws_ping_timeout"] > cfg.max_lead_s + 1.0
