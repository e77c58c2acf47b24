"""``realtime.integrations.livekit.TTS`` against our real server (the tiny model, in this
process), driven as LiveKit's agent pipeline drives a TTS: ``push_text`` tokens, ``flush``,
``end_input``, then iterate the ``SynthesizedAudio`` events."""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from livekit.agents import APIConnectionError, APIStatusError, APITimeoutError
from livekit.agents.tts import SynthesizedAudio, SynthesizeStream
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, APIConnectOptions, TimedString

from load_tests.server import free_port
from realtime.client import RealtimeClient
from realtime.integrations.common import connect_headers
from realtime.integrations.livekit import TTS
from realtime.integrations.livekit.tts import speech_url
from tests.integrations.conftest import API_KEY, serve, ws_url
from tests.server.conftest import Running, stop_server

VOICE = "jf_alpha"
TOKENS = ["Hello ", "there, ", "how a", "re you", " today? ", "I am ", "fine, thanks."]
TEXT = "".join(TOKENS)
LONG = "This sentence keeps the engine busy for a while, so barge in now. " * 12
QUICK = APIConnectOptions(max_retry=0, timeout=5.0)


def run(main: Callable[[], object], limit: float = 20.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await main()  # type: ignore[misc]
    asyncio.run(bounded())


def make_tts(running: Running, **kw: object) -> TTS:
    return TTS(url=ws_url(running), **{"voice": VOICE, "api_key": API_KEY, **kw})  # type: ignore[arg-type]


async def speak(stream: SynthesizeStream, tokens: list[str]) -> list[SynthesizedAudio]:
    for token in tokens:
        stream.push_text(token)
    stream.flush()
    stream.end_input()
    return [ev async for ev in stream]


def timed(events: list[SynthesizedAudio]) -> list[TimedString]:
    return [t for ev in events for t in ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]


def seconds(word: TimedString) -> tuple[float, float]:
    start, end = word.start_time, word.end_time
    assert isinstance(start, float) and isinstance(end, float), word
    return start, end


async def metric(running: Running, name: str) -> float:
    _, body = await asyncio.to_thread(running.get, "/metrics")
    found = re.search(rf"^{name} (\S+)$", body.decode(), re.M)
    assert found, name
    return float(found.group(1))


async def until(check: Callable[[], object], what: str, limit: float = 5.0) -> None:
    end = time.monotonic() + limit
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < end, what
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def small() -> Iterator[Running]:
    """A server that idles sessions out after 0.6 s and takes one context per session."""
    running = serve(idle_timeout_s=0.6, max_contexts=1)
    yield running
    stop_server(running)


def test_stream_is_one_request_one_segment_with_an_aligned_transcript(server: Running) -> None:
    async def main() -> None:
        async with make_tts(server) as tts:
            assert tts.capabilities.streaming and tts.capabilities.aligned_transcript
            assert (tts.provider, tts.model, tts.num_channels) == ("realtime", "kokoro", 1)
            events = await speak(tts.stream(), TOKENS)
            other = await speak(tts.stream(), ["Again."])
        assert {ev.request_id for ev in events} == {events[0].request_id}
        assert other[0].request_id != events[0].request_id
        assert len({ev.segment_id for ev in events}) == 1 and events[0].segment_id
        assert [ev.is_final for ev in events] == [False] * (len(events) - 1) + [True]
        assert all(0 < ev.frame.duration <= 0.25 for ev in events)
        assert {ev.frame.sample_rate for ev in events} == {24000}
        assert sum(ev.frame.duration for ev in events) > 1.0
        words = timed(events)
        assert "".join(words) == TEXT  # spaces and punctuation included: LiveKit's transcript
        assert [w.strip(" ,.?") for w in words] == ["Hello", "there", "how", "are", "you",
                                                    "today", "I", "am", "fine", "thanks"]
        times = [t for w in words for t in seconds(w)]
        assert times == sorted(times) and times[0] >= 0
        assert times[-1] <= sum(ev.frame.duration for ev in events)
    run(main)


def test_words_come_before_their_audio(server: Running) -> None:
    async def main() -> None:
        async with make_tts(server) as tts:
            events = await speak(tts.stream(), TOKENS)
        played = 0.0
        for ev in events:
            for word in ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, []):
                assert seconds(word)[0] >= played  # not yet played when the word arrives
            played += ev.frame.duration
    run(main)


def test_one_stream_carries_one_segment(server: Running,
                                        caplog: pytest.LogCaptureFixture) -> None:
    # LiveKit 1.8.9's push_text drops text after the first flush ("create a new
    # SynthesizeStream instance for each segment"): one stream, one segment, its text only.
    async def main() -> None:
        async with make_tts(server) as tts:
            stream = tts.stream()
            stream.push_text("First part. ")
            stream.flush()
            stream.push_text("Second part.")
            events = await speak(stream, [])
        assert len({ev.segment_id for ev in events}) == 1 and events[-1].is_final
        assert "".join(timed(events)) == "First part. "
    with caplog.at_level(logging.WARNING, logger="livekit.agents"):
        run(main)
    assert "multiple segments" in caplog.text


def test_other_sample_rates_and_bad_options() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="8000, 16000, 22050, 24000, 44100, 48000"):
            TTS(sample_rate=11025)
        with pytest.raises(ValueError, match="language"):
            TTS(language="de")
        with pytest.raises(ValueError, match="speed"):
            TTS(speed=3.0)
        assert TTS(language="en-GB")._opts.language == "en-gb"
    run(main)
    assert speech_url("wss://tts.example/a/v1/stream?x=1") == "https://tts.example/a/v1/audio/speech"


def test_barge_in_cancels_the_context_and_keeps_the_connection(server: Running) -> None:
    async def main() -> None:
        async with make_tts(server) as tts:
            stream = tts.stream()
            stream.push_text(LONG)
            stream.flush()
            seen: list[SynthesizedAudio] = []
            async for ev in stream:
                seen.append(ev)
                if len(seen) == 3:
                    break
            await stream.aclose()
            after = len(seen)
            [conn] = tts.pool.connections
            # the server answered our cancel (`cancelled` frees the context on the connection)
            # and closed the context (its gauge, read at scrape time)
            await until(lambda: asyncio.sleep(0, conn.contexts == 0), "no cancelled came")
            await until(lambda: _contexts_zero(server), "the server kept the context")
            events = await speak(tts.stream(), ["Next one."])
            assert tts.pool.connections == (conn,) and not conn.lost
        assert len(seen) == after and not [ev async for ev in stream]
        assert events and events[-1].is_final
    run(main)


async def _contexts_zero(running: Running) -> bool:
    return await metric(running, "realtime_contexts") == 0


def test_concurrent_streams_share_one_session(server: Running) -> None:
    async def main() -> None:
        await until(lambda: _sessions(server, 0), "sessions of earlier tests still open")
        async with make_tts(server) as tts:
            a, b = tts.stream(), tts.stream()
            texts = (["Stream one ", "speaks."], ["Stream two ", "speaks ", "too."])
            got_a, got_b = await asyncio.gather(speak(a, texts[0]), speak(b, texts[1]))
            assert len(tts.pool.connections) == 1
            assert await metric(server, "realtime_sessions") == 1
        assert {ev.request_id for ev in got_a}.isdisjoint(ev.request_id for ev in got_b)
        assert "".join(timed(got_a)) == "".join(texts[0])
        assert "".join(timed(got_b)) == "".join(texts[1])
        assert got_a[-1].is_final and got_b[-1].is_final
    run(main)


async def _sessions(running: Running, n: int) -> bool:
    return await metric(running, "realtime_sessions") == n


def test_a_connection_per_max_contexts_and_keepalive(small: Running) -> None:
    async def main() -> None:
        async with make_tts(small) as tts:
            tts.prewarm()
            await until(lambda: asyncio.sleep(0, len(tts.pool.connections) == 1), "no prewarm")
            [conn] = tts.pool.connections
            assert conn.ping_interval_s == pytest.approx(0.2)
            await asyncio.sleep(1.0)  # past the idle timeout: only our pings keep it open
            assert not conn.lost and tts.pool.connections == (conn,)
            a, b = tts.stream(), tts.stream()  # max_contexts=1: a second connection
            got = await asyncio.gather(speak(a, ["One."]), speak(b, ["Two."]))
            assert len(tts.pool.connections) == 2 and conn in tts.pool.connections
            assert all(events[-1].is_final for events in got)
    run(main)


def test_update_options_reaches_an_open_stream(server: Running) -> None:
    async def main() -> None:
        async with make_tts(server) as tts:
            stream = tts.stream(conn_options=QUICK)
            stream.push_text("Hello there. ")
            stream.flush()
            first = await anext(aiter(stream))
            # our `update` goes to the open context: the server refuses this voice there
            tts.update_options(voice="no_such_voice")
            with pytest.raises(APIStatusError) as refused:
                async for _ in stream:
                    pass
            assert first.frame.duration > 0
            assert refused.value.body["code"] == "unknown_voice"  # type: ignore[index]
            tts.update_options(voice="jm_kumo", speed=1.5)
            assert (tts._opts.voice, tts._opts.speed) == ("jm_kumo", 1.5)
            # after the input ended there is nothing left to change: no `update` goes out
            # (the server refuses input after `end`)
            late = tts.stream()
            late.push_text("Bye.")
            late.end_input()
            await until(lambda: asyncio.sleep(0, late._live is not None and late._live.ended),
                        "no end sent")
            tts.update_options(speed=1.2)
            assert [ev async for ev in late][-1].is_final
    run(main)


def test_unknown_voice(server: Running) -> None:
    async def main() -> None:
        async with make_tts(server, voice="nobody") as tts:
            with pytest.raises(APIStatusError) as refused:
                await speak(tts.stream(conn_options=QUICK), ["Hello."])
        err = refused.value
        assert err.status_code == 400 and not err.retryable
        assert err.body["code"] == "unknown_voice" and "unknown_voice" in err.message  # type: ignore[index]
    run(main)


def test_wrong_api_key(server: Running) -> None:
    async def main() -> None:
        async with make_tts(server, api_key="wrong") as tts:
            with pytest.raises(APIStatusError) as refused:
                await speak(tts.stream(conn_options=QUICK), ["Hello."])
            assert refused.value.status_code == 401 and not refused.value.retryable
            assert "missing or wrong API key" in refused.value.message
            with pytest.raises(APIStatusError) as http:
                await tts.synthesize("Hello.", conn_options=QUICK).collect()
            assert http.value.status_code == 401 and not http.value.retryable
    run(main)


def test_synthesize_over_http(server: Running) -> None:
    async def main() -> None:
        async with make_tts(server) as tts, make_tts(server, sample_rate=16000) as tts16:
            frame = await tts.synthesize("Hello there, how are you?").collect()
            frame16 = await tts16.synthesize("Hello there, how are you?").collect()
            tts.update_options(voice="nobody")
            with pytest.raises(APIStatusError) as refused:
                await tts.synthesize("Hi.", conn_options=QUICK).collect()
        assert frame.sample_rate == 24000 and frame.duration > 0.5
        assert frame16.sample_rate == 16000  # resampled from the endpoint's 24 kHz
        assert frame16.duration == pytest.approx(frame.duration, abs=0.05)
        assert refused.value.status_code == 400 and not refused.value.retryable
        assert refused.value.body["code"] == "unknown_voice"  # type: ignore[index]
    run(main)


def test_full_server_then_a_lost_session_then_a_fresh_one() -> None:
    running = serve(max_sessions=1)
    port = int(running.url.rsplit(":", 1)[1])
    try:
        async def main() -> None:
            nonlocal running
            holder = await RealtimeClient.connect(ws_url(running),
                                                  headers=connect_headers(API_KEY))
            async with make_tts(running) as tts:
                with pytest.raises(APIStatusError) as full:
                    await speak(tts.stream(conn_options=QUICK), ["Hello."])
                assert full.value.status_code == 503 and full.value.retryable
                assert "server full" in full.value.message
                await holder.close()
                await until(lambda: _sessions(running, 0), "the holder's session stayed")
                stream = tts.stream(conn_options=QUICK)
                stream.push_text(LONG)
                stream.flush()
                await anext(aiter(stream))
                [lost_conn] = tts.pool.connections
                await asyncio.to_thread(stop_server, running)  # uvicorn closes the session
                with pytest.raises(APIConnectionError) as lost:
                    async for _ in stream:
                        pass
                assert lost.value.retryable and "session lost" in str(lost.value)
                assert tts.pool.connections == ()
                running = await asyncio.to_thread(serve, port, max_sessions=1)
                assert (await speak(tts.stream(conn_options=QUICK), ["Back."]))[-1].is_final
                assert len(tts.pool.connections) == 1
                assert tts.pool.connections[0] is not lost_conn
        run(main)
    finally:
        stop_server(running)


def test_no_server_is_a_connection_error() -> None:
    async def main() -> None:
        url = f"ws://127.0.0.1:{free_port()}/v1/stream"
        async with TTS(url=url, voice=VOICE) as tts:
            began = time.monotonic()
            with pytest.raises(APIConnectionError) as failed:
                await speak(tts.stream(conn_options=APIConnectOptions(max_retry=0, timeout=2)),
                            ["Hello."])
            assert time.monotonic() - began < 2
            assert not isinstance(failed.value, APITimeoutError)
    run(main)


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as silent:  # takes the TCP connection, never the handshake
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}/v1/stream"

        async def main() -> None:
            async with TTS(url=url, voice=VOICE) as tts:
                began = time.monotonic()
                with pytest.raises(APITimeoutError):
                    await speak(tts.stream(conn_options=APIConnectOptions(max_retry=0,
                                                                          timeout=0.3)), ["Hi."])
                assert time.monotonic() - began < 1.5
        run(main)


def test_import_without_livekit_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("realtime.integrations.livekit")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "livekit.agents", None)  # as if not installed
    with pytest.raises(ImportError, match=r"'livekit' extra.*realtime\[livekit\]"):
        importlib.import_module("realtime.integrations.livekit")
