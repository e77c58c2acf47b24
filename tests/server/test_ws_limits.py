"""Session limits end to end: contexts, buffered text, message rate, idle timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import websockets

from realtime.client import RealtimeClient
from tests.server.conftest import (
    Running,
    start_server,
    stop_server,
    tiny_config_for_tests,
    tiny_kokoro,
)


@pytest.fixture(scope="module")
def strict() -> Iterator[Running]:
    lm = tiny_kokoro()
    cfg = tiny_config_for_tests(max_contexts=2, max_buffered_chars=100, rate_burst=5,
                                rate_messages_per_s=1.0, idle_timeout_s=0.6)
    running = start_server(cfg, lambda c: lm)
    running.wait_ready()
    yield running
    stop_server(running)


def url(server: Running) -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_ready_announces_the_limits(strict: Running) -> None:
    async def main() -> None:
        c = await RealtimeClient.connect(url(strict))
        limits = c.ready["limits"]
        assert limits["max_contexts"] == 2 and limits["max_buffered_chars"] == 100
        assert limits["rate_burst"] == 5
        await c.close()

    run(main())


def test_contexts_and_buffered_text(strict: Running) -> None:
    async def main() -> None:
        c = await RealtimeClient.connect(url(strict))
        await c.start("a")
        await c.start("b")
        await c.start("c")
        err = await c.recv()
        assert err["type"] == "error" and err["code"] == "too_many_contexts"
        await c.text("word " * 30, "a")  # 150 characters, no sentence end
        err = await c.recv()
        assert err["type"] == "error" and err["code"] == "too_long"
        await c.close()

    run(main())


def test_message_rate(strict: Running) -> None:
    async def main() -> None:
        c = await RealtimeClient.connect(url(strict))
        for i in range(8):
            await c.ping(i)
        got = [await c.recv() for _ in range(6)]
        assert [m["id"] for m in got if m["type"] == "pong"] == [0, 1, 2, 3, 4]
        assert any(m["type"] == "error" and m["code"] == "rate_limited" for m in got)
        for i in range(120):  # a flood: 100 refused in a row closes the session
            await c.ping(i)
        async for _ in c.messages():
            pass
        assert c.close_code == 1008

    run(main())


def test_idle_timeout(strict: Running) -> None:
    async def main() -> None:
        async with websockets.connect(url(strict)) as ws:
            await ws.recv()  # ready
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 1000 and "idle" in (ws.close_reason or "")

    run(main())
