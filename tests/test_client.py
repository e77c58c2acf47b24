"""realtime.client: the context tracker (what a lost session had not spoken), the backoff, and
failover against a scripted WebSocket server on loopback (closes 1001/1006/1013/1000/1008).
Only randomness is fixed (a seeded ``random.Random``); the delays are real and short."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from realtime.client import (
    ContextTracker,
    RealtimeClient,
    Reconnect,
    Reconnected,
    ReconnectFailed,
    SessionLost,
)

FAST = Reconnect(first_delay_s=0.01, max_delay_s=0.05, attempts=5, give_up_s=5.0)
READY = {"type": "ready", "session_id": "s", "protocol": 1}


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def words(*spans: tuple[str, float, int, int]) -> dict[str, Any]:
    return {"type": "alignment", "context_id": "a", "chunk": 0, "words": [
        {"word": w, "start_ms": end - 100, "end_ms": end, "char_start": s, "char_end": e}
        for w, end, s, e in spans]}


def audio(seq: int, context_id: str = "a", ms: int = 100) -> dict[str, Any]:
    return {"type": "audio", "context_id": context_id, "seq": seq, "offset_ms": seq * ms,
            "duration_ms": ms, "data": b"\0" * 4}


# -- the tracker ---------------------------------------------------------------------------------
def test_tracker_splits_the_text_at_the_last_word_received() -> None:
    t = ContextTracker()
    t.sent({"type": "start", "context_id": "a", "voice": "af_heart", "codec": "pcm16"})
    t.sent({"type": "text", "context_id": "a", "text": "Hello there, "})
    t.sent({"type": "text", "context_id": "a", "text": "how are you?"})
    t.sent({"type": "update", "context_id": "a", "speed": 1.2})
    t.sent({"type": "end", "context_id": "a"})
    t.received(words(("Hello", 300.0, 0, 5), ("there", 600.0, 6, 11), ("how", 900.0, 13, 16)))
    for seq in range(7):  # 700 ms received: "Hello" and "there" are whole
        t.received(audio(seq))
    (lost,) = t.open()
    assert lost.context_id == "a" and lost.ended
    assert lost.text == "Hello there, how are you?"
    assert lost.text_spoken == "Hello there"
    assert lost.text_unspoken == ", how are you?"
    assert lost.audio_ms == 700.0
    assert dict(lost.settings) == {"voice": "af_heart", "codec": "pcm16", "speed": 1.2}
    assert lost.unspoken(played_ms=350) == " there, how are you?"  # the client played less
    assert lost.unspoken(played_ms=5000) == lost.text_unspoken  # capped at what arrived


def test_tracker_closes_contexts_on_done_cancelled_and_our_cancel() -> None:
    t = ContextTracker()
    for cid in ("a", "b", "c"):
        t.sent({"type": "text", "context_id": cid, "text": "Hi."})
    t.sent({"type": "ping", "id": 1})  # not a context message
    t.received({"type": "done", "context_id": "a", "audio_ms": 1, "chunks": 1})
    t.sent({"type": "cancel", "context_id": "b"})
    t.received({"type": "cancelled", "context_id": "c"})
    t.received({"type": "pong", "id": 1})
    assert t.open() == ()
    t.sent({"type": "text", "text": "default context"})  # no context_id: "default"
    assert [c.context_id for c in t.open()] == ["default"]
    assert t.open()[0].text_unspoken == "default context"  # no alignment: nothing spoken


def test_tracker_keeps_a_reused_id_apart() -> None:
    t = ContextTracker()
    t.sent({"type": "text", "context_id": "a", "text": "One."})
    t.sent({"type": "end", "context_id": "a"})
    t.sent({"type": "text", "context_id": "a", "text": "Two."})  # before the first's done
    assert [c.text for c in t.open()] == ["One.", "Two."]
    t.received({"type": "done", "context_id": "a"})
    assert [(c.text, c.ended) for c in t.open()] == [("Two.", False)]


# -- the backoff ---------------------------------------------------------------------------------
def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = Reconnect(first_delay_s=0.1, max_delay_s=2.0, factor=2.0, jitter=0.5)
    rng = random.Random(7)
    for attempt in range(12):
        base = min(2.0, 0.1 * 2 ** attempt)
        draws = [policy.delay(attempt, rng) for _ in range(50)]
        assert all(0.5 * base <= d <= base for d in draws)
        assert len(set(draws)) > 1  # jittered
    assert Reconnect(jitter=0).delay(3, rng) == 0.8


@pytest.mark.parametrize("bad", [{"first_delay_s": -1}, {"first_delay_s": 3, "max_delay_s": 2},
                                 {"factor": 0.5}, {"jitter": 1.5}, {"attempts": 0},
                                 {"give_up_s": 0}])
def test_backoff_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Reconnect(**bad)


# -- failover against a scripted server ----------------------------------------------------------
Script = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def scripted(*scripts: Script) -> AsyncIterator[str]:
    """A server on a free port: the n-th connection runs the n-th script (then the last)."""
    queue = list(scripts)

    async def handler(ws: ServerConnection) -> None:
        script = queue.pop(0) if len(queue) > 1 else queue[0]
        await script(ws)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/stream"


async def send(ws: ServerConnection, msg: dict[str, Any]) -> None:
    await ws.send(msgpack.packb(msg, use_bin_type=True))


async def recv(ws: ServerConnection) -> dict[str, Any]:
    msg = msgpack.unpackb(await ws.recv(), raw=False)
    assert isinstance(msg, dict)
    return msg


def speaks_then(close: Callable[[ServerConnection], Awaitable[None]]) -> Script:
    """Ready; on the context's end: the alignment and 300 ms of audio of "Hello there", then
    ``close``."""
    async def script(ws: ServerConnection) -> None:
        await send(ws, READY)
        while (await recv(ws))["type"] != "end":
            pass
        await send(ws, words(("Hello", 250.0, 0, 5), ("there", 600.0, 6, 11)))
        for seq in range(3):
            await send(ws, audio(seq))
        await close(ws)
    return script


async def completes(ws: ServerConnection) -> None:
    """Ready; answers each context's end with its done."""
    await send(ws, READY)
    async for frame in ws:
        msg = msgpack.unpackb(frame, raw=False)
        if msg["type"] == "end":
            await send(ws, {"type": "done", "context_id": msg["context_id"], "audio_ms": 0,
                            "chunks": 0})


def closes(code: int, reason: str = "") -> Callable[[ServerConnection], Awaitable[None]]:
    async def close(ws: ServerConnection) -> None:
        await ws.close(code, reason)
    return close


async def abort(ws: ServerConnection) -> None:
    ws.transport.abort()  # a killed replica: no close frame


def refuses(code: int) -> Script:
    async def script(ws: ServerConnection) -> None:
        await ws.close(code, "refused")
    return script


async def speak_and_lose(client: RealtimeClient) -> SessionLost:
    await client.start("a", voice="af_heart")
    await client.text("Hello there, how are you?", "a")
    await client.end("a")
    with pytest.raises(SessionLost) as lost:
        while True:
            await client.recv()
    return lost.value


@pytest.mark.parametrize("close", [closes(1001, "server draining"), abort,
                                   closes(1011, "engine process lost: reconnect"),
                                   closes(1012), closes(1013)])
def test_a_lost_session_reports_its_contexts_and_reconnects(close: Any) -> None:
    async def main() -> None:
        async with scripted(speaks_then(close), completes) as url:
            client = await RealtimeClient.connect(url, reconnect=FAST, rng=random.Random(0))
            lost = await speak_and_lose(client)
            assert lost.code in FAST.codes and client.lost is lost
            (ctx,) = lost.contexts
            assert (ctx.text_spoken, ctx.text_unspoken) == ("Hello", " there, how are you?")
            assert ctx.settings == {"voice": "af_heart"} and ctx.ended
            with pytest.raises(SessionLost) as again:  # every call on the lost session
                await client.text("more", "b")
            assert again.value is lost
            assert [c.context_id for c in lost.contexts] == ["a", "b"]  # text that failed
            back, shared = await asyncio.gather(client.reconnect(lost), client.reconnect())
            assert shared is back  # concurrent callers share one reconnection
            assert isinstance(back, Reconnected) and back.lost == lost.contexts
            assert back.code == lost.code and back.attempts == 1
            assert 0.005 <= back.downtime_s < 1.0  # the first delay, jittered, then a connect
            assert client.lost is None and client.generation == 1
            assert client.open_contexts() == ()
            assert await client.reconnect(lost) is back  # an old loss: already replaced
            got = await client.speak(ctx.text_unspoken, "a", **ctx.settings)
            assert got.messages[-1]["type"] == "done"
            await client.close()

    run(main())


def test_other_closes_are_not_retried() -> None:
    async def main() -> None:
        async with scripted(speaks_then(closes(1000, "idle timeout"))) as url:
            client = await RealtimeClient.connect(url, reconnect=FAST)
            await client.text("Hello there.", "a")
            await client.end("a")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await client.recv()
            assert not isinstance(closed.value, SessionLost)
            assert client.lost is None and client.close_code == 1000
            with pytest.raises(RuntimeError):
                await client.reconnect()

    run(main())


def test_without_a_policy_nothing_changes() -> None:
    async def main() -> None:
        async with scripted(speaks_then(closes(1001, "server draining"))) as url:
            client = await RealtimeClient.connect(url)
            await client.text("Hello there.", "a")
            await client.end("a")
            got = [m["type"] async for m in client.messages()]  # ends at the close
            assert got == ["alignment", "audio", "audio", "audio"]
            assert client.close_code == 1001
            assert [c.text_unspoken for c in client.open_contexts()] == [" there."]

    run(main())


def test_connect_retries_a_refusal_and_reconnect_gives_up() -> None:
    async def main() -> None:
        # Full (1013) twice, then serving: the first connect retries.
        async with scripted(refuses(1013), refuses(1013), completes) as url:
            client = await RealtimeClient.connect(url, reconnect=FAST)
            assert client.ready["type"] == "ready" and client.attempts == 3
            await client.close()
        # Without a policy the refusal is websockets' exception, as before.
        async with scripted(refuses(1013)) as url:
            with pytest.raises(websockets.ConnectionClosed):
                await RealtimeClient.connect(url)
        # A policy refusal (1008) is not retried; nor are tries past the policy's attempts.
        async with scripted(speaks_then(abort), refuses(1008)) as url:
            client = await RealtimeClient.connect(url, reconnect=FAST)
            lost = await speak_and_lose(client)
            with pytest.raises(ReconnectFailed) as failed:
                await client.reconnect()
            assert failed.value.lost is lost and "1008" in str(failed.value)
        async with scripted(speaks_then(abort), refuses(1013)) as url:
            client = await RealtimeClient.connect(url, reconnect=FAST)
            await speak_and_lose(client)
            with pytest.raises(ReconnectFailed, match="5 tries"):
                await client.reconnect()

    run(main())


def test_events_carry_on_across_a_loss_and_share_one_reconnection() -> None:
    async def main() -> None:
        async with scripted(speaks_then(abort), completes) as url:
            client = await RealtimeClient.connect(url, reconnect=FAST)
            await client.text("Hello there, how are you?", "a")
            await client.end("a")
            seen: list[Any] = []
            async for event in client.events():
                seen.append(event)
                if isinstance(event, Reconnected):
                    for ctx in event.lost:
                        await client.text(ctx.text_unspoken, ctx.context_id)
                        await client.end(ctx.context_id)
                elif event["type"] == "done":
                    break
            kinds = [e.__class__.__name__ if isinstance(e, Reconnected) else e["type"]
                     for e in seen]
            assert kinds == ["alignment", "audio", "audio", "audio", "Reconnected", "done"]
            await client.close()

    run(main())
