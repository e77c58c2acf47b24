"""/v1/stream against a real uvicorn server with a real websockets client (tiny model)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator

import msgpack
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

LONG = " ".join(f"This is sentence number {i}, and it goes on for a little while."
               for i in range(12))


def ws_url(server: Running) -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 120))


@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_every_message_type(tiny_server: Running, framing: str) -> None:
    async def main() -> None:
        c = await RealtimeClient.connect(ws_url(tiny_server), framing=framing)  # type: ignore[arg-type]
        r = c.ready
        assert r["protocol"] == 1 and "pcm16" in r["codecs"] and r["voices"] and r["limits"]
        await c.ping("p1")
        assert (await c.recv()) == {"type": "pong", "id": "p1"}
        await c.start("a", codec="pcm16", sample_rate=16000, voice="jm_kumo")
        await c.text("Hello there, how are", "a")
        await c.text(" you today? I am fine.", "a")
        await c.flush("a", flush_id="f1")
        got = await c.collect("a", until="flushed")
        kinds = [m["type"] for m in got.messages]
        assert kinds[0] == "alignment" and "audio" in kinds and "metrics" in kinds
        assert got.messages[-1] == {"type": "flushed", "context_id": "a", "flush_id": "f1"}
        words = [w["word"] for m in got.of("alignment") for w in m["words"]]
        assert "Hello" in words[0] and all(isinstance(w, str) for w in words)
        first = got.of("metrics")[0]
        assert first["chunk"] == 0 and first["batch_size"] >= 1
        # on the first chunk that filled a frame (the tiny model's chunk 0 may not fill one)
        (timed,) = [m for m in got.of("metrics") if "first_audio_ms" in m]
        assert timed["first_audio_ms"] >= 0
        frames = got.of("audio")
        assert [f["seq"] for f in frames] == list(range(len(frames)))
        assert all(len(f["data"]) == 16000 * 2 * 20 // 1000 for f in frames)  # 20 ms pcm16
        await c.update("a", speed=1.3)
        await c.phonemes("hˈɛlO", "a")
        await c.end("a")
        done = await c.collect("a")
        assert done.messages[-1]["type"] == "done" and done.messages[-1]["chunks"] >= 2
        await c.send({"type": "sing", "context_id": "a"})
        err = await c.recv()
        assert err["type"] == "error" and err["code"] == "unknown_type"
        await c.close()

    run(main())


def test_contexts_in_parallel_and_cancel(tiny_server: Running) -> None:
    async def main() -> None:
        c = await RealtimeClient.connect(ws_url(tiny_server), codec="pcm16")
        await c.text(LONG, "long")
        await c.end("long")
        await c.text("A short one.", "short")
        await c.end("short")
        seen: dict[str, list[str]] = {"long": [], "short": []}
        cancelled = None
        async for msg in c.messages():
            cid = msg.get("context_id")
            if cid in seen:
                seen[cid].append(msg["type"])
            if cid == "long" and msg["type"] == "audio" and msg["seq"] == 3:
                await c.cancel("long", played_ms=30)
            if msg["type"] == "cancelled":
                cancelled = msg
            if "done" in seen["short"] and cancelled is not None:
                break
        assert cancelled is not None and cancelled["text_unspoken"]
        assert cancelled["text_spoken"] + cancelled["text_unspoken"] != ""
        after = seen["long"][seen["long"].index("cancelled") + 1:]
        assert "audio" not in after and "done" not in after
        assert seen["short"][-1] == "done"
        # The session carries on after a cancel.
        u = await c.speak("Still here.", "again")
        assert u.audio and u.messages[-1]["type"] == "done"
        await c.close()

    run(main())


def test_bad_frames_close_with_codes(tiny_server: Running) -> None:
    async def main() -> None:
        url = ws_url(tiny_server)
        async with websockets.connect(url) as ws:
            await ws.recv()
            await ws.send(b"\xc1\xff\x00")  # not msgpack
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 1007
        async with websockets.connect(url, max_size=None) as ws:
            await ws.recv()
            await ws.send(msgpack.packb({"type": "text", "text": "x" * 70000}))
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 1009
        async with websockets.connect(url) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "text", "context_id": 5, "text": ["no"]}))
            err = json.loads(await ws.recv())
            assert err["type"] == "error" and err["code"] in ("bad_value", "bad_message")
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            assert json.loads(await ws.recv())["type"] == "pong"  # still open

    run(main())


@pytest.fixture
def small_server() -> Iterator[Running]:
    lm = tiny_kokoro()
    running = start_server(tiny_config_for_tests(max_sessions=2, api_keys=("k",),
                                                 allowed_origins=("http://ok.example",),
                                                 drain_timeout_s=20.0), lambda cfg: lm)
    running.wait_ready()
    yield running
    stop_server(running)


async def closed_with(url: str, **kw: object) -> tuple[int | None, str | None]:
    async with websockets.connect(url, **kw) as ws:  # type: ignore[arg-type]
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
        return ws.close_code, ws.close_reason


def test_auth_origin_and_capacity(small_server: Running) -> None:
    async def main() -> None:
        url = ws_url(small_server)
        assert (await closed_with(url))[0] == 1008  # no key
        assert (await closed_with(url + "?token=nope"))[0] == 1008
        code, reason = await closed_with(url + "?token=k",
                                         additional_headers={"Origin": "http://evil.example"})
        assert code == 1008 and "origin" in (reason or "")
        ok = {"additional_headers": {"Authorization": "Bearer k", "Origin": "http://ok.example"}}
        a = await RealtimeClient.connect(url, headers=ok["additional_headers"])
        b = await RealtimeClient.connect(url, token="k",
                                         headers={"Origin": "http://ok.example"})
        code, reason = await closed_with(url, **ok)
        assert code == 1013 and "full" in (reason or "")
        await a.close()
        await b.close()

    run(main())


def test_drain(small_server: Running) -> None:
    async def main() -> None:
        url = ws_url(small_server)
        hdr = {"Authorization": "Bearer k", "Origin": "http://ok.example"}
        c = await RealtimeClient.connect(url, headers=hdr, codec="pcm16")
        await c.text(LONG, "a")
        await c.end("a")
        first = await c.recv()
        assert first["type"] in ("alignment", "audio", "metrics")
        app_state = small_server.server.config.app.state.realtime  # type: ignore[attr-defined]
        loop = small_server.server_loop()
        drain = asyncio.run_coroutine_threadsafe(app_state.drain(), loop)
        await asyncio.sleep(0.1)
        assert small_server.get("/readyz")[0] == 503
        code, _ = await closed_with(url, additional_headers=hdr)
        assert code == 1013  # new sessions are refused while draining
        kinds = [first["type"]]
        async for msg in c.messages():
            kinds.append(msg["type"])
        assert "done" in kinds  # the running context finished ...
        assert c.close_code == 1001  # ... then the session closed as going away
        await asyncio.wrap_future(drain)

    run(main())


def test_sigterm_drains_then_exits(small_server: Running) -> None:
    """The signal path: the first SIGTERM drains (the open session finishes, then 1001), and
    the server exits by itself afterwards."""
    async def main() -> None:
        hdr = {"Authorization": "Bearer k", "Origin": "http://ok.example"}
        c = await RealtimeClient.connect(ws_url(small_server), headers=hdr, codec="pcm16")
        await c.text(LONG, "a")
        await c.end("a")
        await c.recv()
        small_server.server.handle_exit(signal.SIGTERM, None)
        kinds = [m["type"] async for m in c.messages()]
        assert "done" in kinds and c.close_code == 1001
        for _ in range(200):
            if not small_server.thread.is_alive():
                break
            await asyncio.sleep(0.05)
        assert not small_server.thread.is_alive()

    run(main())


def test_a_bad_client_does_not_touch_others(tiny_server: Running) -> None:
    """Garbage from one session (bad msgpack, wrong types, huge strings) ends or errors that
    session only; another session speaking at the same time finishes normally."""
    async def main() -> None:
        url = ws_url(tiny_server)
        good = await RealtimeClient.connect(url, codec="pcm16")
        await good.text(LONG[:200], "g")  # a few sentences: audio goes at real time
        await good.end("g")

        async def abuse() -> None:
            async with websockets.connect(url, max_size=None) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "text", "context_id": "x" * 10_000}))
                await ws.send(json.dumps({"type": "start", "speed": "fast"}))
                await ws.send(json.dumps({"type": "text", "text": "a" * 60_000}))
                await ws.send(b"\x92\x01")  # msgpack, but an array, not a map
                await ws.send(b"\xc1")  # not msgpack: closes this session
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await ws.recv()
                assert ws.close_code in (1007, 1009)

        await asyncio.gather(*(abuse() for _ in range(3)))
        got = await good.collect("g")
        assert got.messages[-1]["type"] == "done" and got.audio
        assert not got.of("error")
        await good.close()

    run(main())
