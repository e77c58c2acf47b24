"""``RealtimeTTSService`` in pipelines run by pipecat's own test runner (``run_test``), against
our real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from load_tests.corpus import SENTENCES
from realtime.client import RealtimeClient
from realtime.client.failover import Reconnect
from realtime.config import EngineConfig, ServerConfig
from realtime.integrations.common import ServerError
from realtime.integrations.pipecat import RealtimeTTSService
from realtime.weights.registry import LoadedModel
from realtime.weights.tiny import build_tiny
from tests.integrations.conftest import API_KEY, serve, ws_url
from tests.server.conftest import Running, start_server, stop_server

TEXT = "Hello there! This is a test of the service."
LONG = " ".join(["This sentence is one of many that make a long answer."] * 12)
QUICK = Reconnect(first_delay_s=0.05, max_delay_s=0.3, attempts=4, give_up_s=2.0)


def service(running: Running, **kw: object) -> RealtimeTTSService:
    options: dict[str, object] = {"url": ws_url(running), "api_key": API_KEY,
                                  "voice": "jf_alpha", "reconnect": QUICK}
    return RealtimeTTSService(**{**options, **kw})  # type: ignore[arg-type]


class Probe(FrameProcessor):
    """Passes every frame on, calling ``seen(frame)`` for those going downstream."""

    def __init__(self, seen: Callable[[Frame], Awaitable[None]]) -> None:
        super().__init__()
        self._seen = seen

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            await self._seen(frame)
        await self.push_frame(frame, direction)


def run(frames: Sequence[Frame], tts: FrameProcessor, timeout: float = 60,
        **kw: object) -> tuple[Sequence[Frame], Sequence[Frame]]:
    async def main() -> tuple[Sequence[Frame], Sequence[Frame]]:
        async with asyncio.timeout(timeout):
            return await run_test(tts, frames_to_send=frames, **kw)  # type: ignore[arg-type]

    return asyncio.run(main())


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text)


def spoken(down: Sequence[Frame]) -> list[str]:
    return [w for f in down if isinstance(f, TTSTextFrame) for w in words(f.text)]


def audio_s(down: Sequence[Frame], context_id: str | None = None) -> float:
    return sum(len(f.audio) / (2 * f.sample_rate) for f in down
               if isinstance(f, TTSAudioRawFrame)
               and (context_id is None or f.context_id == context_id))


def metric(running: Running, name: str) -> float:
    text = running.get("/metrics")[1].decode()
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return sum(float(v) for v in found)


@pytest.mark.parametrize("rate", [24000, 8000])
def test_speak_frame(server: Running, rate: int) -> None:
    """A TTSSpeakFrame: started, audio at the pipeline's rate (asked of the server: no
    resampling), the words in order as TTSTextFrames, stopped; TTFB measured."""
    down, up = run([TTSSpeakFrame(TEXT)], service(server),
                   pipeline_params=PipelineParams(audio_out_sample_rate=rate,
                                                  enable_metrics=True))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    assert max(i for i, k in enumerate(kinds) if k is TTSAudioRawFrame) < kinds.index(
        TTSStoppedFrame)
    frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in frames} == {rate}
    assert all(len(f.audio) == 2 * rate // 50 for f in frames)  # whole 20 ms pcm16 frames
    assert audio_s(down) > 0.5
    assert spoken(down) == words(TEXT)
    ttfb = [d for f in down if isinstance(f, MetricsFrame) for d in f.data
            if isinstance(d, TTFBMetricsData)]
    assert any(0 < d.value < 30 for d in ttfb)  # (pipecat also reports a 0 at start)


def test_llm_token_stream(server: Running) -> None:
    """An LLM answer token by token, split mid-word and mid-number, speaks as one context."""
    answer = "Sure! Your order of $4.50 shipped today. It should arrive on Monday."
    tokens = [answer[i:i + 3] for i in range(0, len(answer), 3)]
    frames: list[Frame] = [LLMFullResponseStartFrame(),
                           *[LLMTextFrame(t) for t in tokens], LLMFullResponseEndFrame()]
    down, up = run(frames, service(server))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    contexts = {f.context_id for f in down if isinstance(f, TTSAudioRawFrame)}
    assert len(contexts) == 1
    assert audio_s(down) > 1.0
    heard = spoken(down)
    assert heard == words(answer)
    assert any(isinstance(f, TTSStoppedFrame) for f in down)


def test_tokens_faster_than_the_message_rate() -> None:
    """An LLM far faster than the server's message rate (here 20 a second, burst 10): deltas
    pile up and go as fewer, longer texts; nothing is dropped, no rate_limited error."""
    running = serve(rate_messages_per_s=20.0, rate_burst=10, max_lead_s=0.0)  # 0: unpaced
    try:
        answer = " ".join(SENTENCES[2:4])
        frames: list[Frame] = [LLMFullResponseStartFrame(),
                               *[LLMTextFrame(c) for c in answer],
                               LLMFullResponseEndFrame()]
        down, up = run(frames, service(running))
    finally:
        stop_server(running)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(frames) > 100  # far over the burst
    assert spoken(down) == words(answer)


class _SlowAfterFirst:
    """A runner whose batches after the first take ``seconds`` more: a busy engine."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner, self.seconds, self.batches = inner, seconds, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run(self, batch: list[Any]) -> Iterator[Any]:
        self.batches += 1
        if self.batches > 1:
            time.sleep(self.seconds)
        yield from self.inner.run(batch)


def test_a_pause_in_the_audio_keeps_the_context(server: Running) -> None:
    """pipecat ends an audio context that gets nothing for ``stop_frame_timeout_s`` (3 s by
    default), and an EndFrame then stops the pipeline without the rest of its audio. A busy
    server can pause that long: the context is kept open until its ``done``, and the whole
    answer plays. Here the engine takes 0.6 s a chunk after the first, the timeout is 0.3 s,
    and the EndFrame follows the TTSSpeakFrame at once."""
    running = _slow_server()
    long = "Hello there! " + " ".join(SENTENCES[:2])
    try:
        down, up = run([TTSSpeakFrame(long)], service(running, stop_frame_timeout_s=0.3))
    finally:
        stop_server(running)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert audio_s(down) > 4.0  # all of it: "Hello there!" alone is about 1 s
    assert spoken(down) == words(long)
    assert [type(f) for f in down if isinstance(f, TTSStartedFrame | TTSStoppedFrame)] == [
        TTSStartedFrame, TTSStoppedFrame]


def test_a_pause_mid_turn_keeps_the_context(server: Running) -> None:
    """The LLM pauses in the middle of its turn, longer than ``stop_frame_timeout_s``, with all
    its text so far spoken: the context stays open (pipecat would end it, forgetting the words it
    was waiting to time, and the rest of the turn would come as another), so every word is
    spoken in order, in one context with one started and one stopped frame."""
    part1, part2 = "Hello there. ", SENTENCES[1]
    frames: list[Frame] = [LLMFullResponseStartFrame(), LLMTextFrame(part1), SleepFrame(2.5),
                           LLMTextFrame(part2), LLMFullResponseEndFrame()]
    down, up = run(frames, service(server, stop_frame_timeout_s=0.3))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert spoken(down) == words(part1 + part2)
    assert [type(f) for f in down if isinstance(f, TTSStartedFrame | TTSStoppedFrame)] == [
        TTSStartedFrame, TTSStoppedFrame]


def _slow_server() -> Running:
    """A tiny-model server whose engine takes 0.6 s more for each chunk after its first."""
    model, voices = build_tiny(real_rate=True)
    lm = LoadedModel("tiny", Path("."), model, voices, "jf_alpha")
    config = ServerConfig(engine=EngineConfig(device="cpu", threads=1, cpu_fused_norms=False,
                                              windows="off"), api_keys=(API_KEY,))
    running = start_server(config, lambda cfg: lm)
    running.wait_ready()
    assert running.state is not None and running.state.engine is not None
    engine: Any = running.state.engine
    engine.runner = _SlowAfterFirst(engine.runner, 0.6)
    return running


def test_interruption_cancels_without_reconnecting(server: Running) -> None:
    """An InterruptionFrame mid-utterance: the server's context is cancelled at once (its
    paced answer would hold it open for many seconds), no audio of it follows the
    interruption, and the next utterance plays on the same socket."""
    tts = service(server)
    open_contexts: list[float] = []
    generations: list[int] = []

    async def stopped(frame: Frame) -> None:
        if isinstance(frame, TTSAudioRawFrame) and tts.client is not None:
            generations.append(tts.client.generation)
        if isinstance(frame, TTSStoppedFrame) and not open_contexts:
            # the second utterance is done, the session still open: the first context must be
            # gone from the server too (uncancelled, it would stream for about 45 s more)
            open_contexts.append(await asyncio.to_thread(metric, server, "realtime_contexts"))

    down, up = run([TTSSpeakFrame(LONG), SleepFrame(1.5), InterruptionFrame(),
                    SleepFrame(0.5), TTSSpeakFrame(TEXT), SleepFrame(2.0)],  # (then EndFrame)
                   Pipeline([tts, Probe(stopped)]))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    first = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    after = [f for f in down[cut:] if isinstance(f, TTSAudioRawFrame)]
    assert len(first) == 1 and audio_s(down[:cut]) > 0.5
    old = first.pop()
    assert [f for f in after if f.context_id == old] == []  # nothing of the old context
    assert after and audio_s(after) > 0.5  # the next utterance played
    assert set(generations) == {0}  # one session throughout: never reconnected
    assert audio_s(down[:cut]) < 10  # cut short: LONG is far longer
    assert open_contexts == [0.0]


def test_update_speed_between_utterances(server: Running) -> None:
    """A settings update (voice, speed) reaches the next context: the same text at speed 1.6
    is shorter."""
    down, up = run([TTSSpeakFrame(TEXT), SleepFrame(0.2),
                    TTSUpdateSettingsFrame(delta=RealtimeTTSService.Settings(
                        voice="jm_kumo", speed=1.6)),
                    TTSSpeakFrame(TEXT)], service(server))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    contexts: list[str] = []
    for f in down:
        if isinstance(f, TTSAudioRawFrame) and f.context_id not in contexts:
            contexts.append(str(f.context_id))
    assert len(contexts) == 2
    assert audio_s(down, contexts[1]) < 0.85 * audio_s(down, contexts[0])


PATIENT = Reconnect(first_delay_s=0.1, max_delay_s=0.5, attempts=40, give_up_s=30.0)


async def replace_after(event: asyncio.Event, first: Running, holder: dict[str, Running]
                        ) -> None:
    """Once ``event`` is set: drain ``first`` (its sessions close with 1001), stop it, and start
    a new server on its port (``holder["second"]``), as a replica replaced behind a balancer."""
    await event.wait()
    state = first.state
    assert state is not None
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(state.drain(),
                                                               first.server_loop()))
    await asyncio.to_thread(stop_server, first)
    holder["second"] = await asyncio.to_thread(serve, int(first.url.rsplit(":", 1)[1]))


def run_replacing(tts: RealtimeTTSService, seen: Callable[[Frame], Awaitable[None]],
                  event: asyncio.Event, first: Running, frames: list[Frame]
                  ) -> tuple[Sequence[Frame], Sequence[Frame]]:
    """``frames`` through ``tts`` while ``first`` is replaced once ``event`` is set
    (``replace_after``); the frames that came down and up. Whichever server runs last stops."""
    holder: dict[str, Running] = {}

    async def main() -> tuple[Sequence[Frame], Sequence[Frame]]:
        async with asyncio.timeout(90):
            task = asyncio.create_task(replace_after(event, first, holder))
            out = await run_test(Pipeline([tts, Probe(seen)]), frames_to_send=frames)
            await task
            return out

    try:
        return asyncio.run(main())
    finally:
        stop_server(holder.get("second", first))


def test_drain_then_reconnect() -> None:
    """The server drains (close 1001) and a new one takes its place on the same port: the
    service reconnects with backoff and the next utterance plays."""
    first = serve()
    spoke = asyncio.Event()

    generations: list[int] = []

    async def stopped(frame: Frame) -> None:
        if isinstance(frame, TTSStoppedFrame):
            assert tts.client is not None
            generations.append(tts.client.generation)
            spoke.set()

    tts = service(first, reconnect=PATIENT)
    down, up = run_replacing(tts, stopped, spoke, first,
                             [TTSSpeakFrame(TEXT), SleepFrame(2.0), TTSSpeakFrame(TEXT)])
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    contexts = {f.context_id for f in down if isinstance(f, TTSAudioRawFrame)}
    assert len(contexts) == 2  # both utterances played
    assert generations == [0, 1]  # the second on a new session


def test_drain_mid_turn_resumes() -> None:
    """The session is lost in the middle of an LLM turn (the server drains while the context
    waits for more tokens): the turn goes on in a new session on the replacement server, in the
    same pipecat context, every word spoken once and in order."""
    first = serve()
    heard = asyncio.Event()
    part1, part2 = "Sure! Your order shipped today. ", "It should arrive on Monday morning."
    generations: list[int] = []

    async def seen(frame: Frame) -> None:
        if isinstance(frame, TTSAudioRawFrame) and tts.client is not None:
            generations.append(tts.client.generation)
            heard.set()

    tts = service(first, reconnect=PATIENT)
    frames: list[Frame] = [LLMFullResponseStartFrame(),
                           *[LLMTextFrame(part1[i:i + 4]) for i in range(0, len(part1), 4)],
                           SleepFrame(1.5),
                           *[LLMTextFrame(part2[i:i + 4]) for i in range(0, len(part2), 4)],
                           LLMFullResponseEndFrame()]
    down, up = run_replacing(tts, seen, heard, first, frames)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len({f.context_id for f in down if isinstance(f, TTSAudioRawFrame)}) == 1
    assert generations[0] == 0 and generations[-1] == 1  # resumed on a new session
    assert spoken(down) == words(part1 + part2)


def errors(up: Sequence[Frame]) -> list[ServerError]:
    return [f.exception for f in up
            if isinstance(f, ErrorFrame) and isinstance(f.exception, ServerError)]


def test_wrong_api_key(server: Running) -> None:
    down, up = run([TTSSpeakFrame(TEXT)], service(server, api_key="wrong"), timeout=30)
    found = errors(up)
    assert found and found[0].code == "close_1008" and found[0].close_code == 1008
    assert "API key" in found[0].message
    assert not [f for f in down if isinstance(f, TTSAudioRawFrame)]


def test_full_server() -> None:
    running = serve(max_sessions=1)
    try:
        async def main() -> tuple[Sequence[Frame], Sequence[Frame]]:
            async with asyncio.timeout(30):
                holder = await RealtimeClient.connect(ws_url(running), token=API_KEY)
                try:
                    return await run_test(service(running), frames_to_send=[TTSSpeakFrame(TEXT)])
                finally:
                    await holder.close()

        _, up = asyncio.run(main())
    finally:
        stop_server(running)
    found = errors(up)
    assert found and found[0].code == "close_1013" and "full" in found[0].message


def test_unknown_voice(server: Running) -> None:
    """The start is refused: one error with our code and message, the context ends (nothing
    waits for audio that will not come), no audio."""
    down, up = run([TTSSpeakFrame(TEXT)], service(server, voice="zz_nobody"), timeout=30)
    found = errors(up)
    assert [e.code for e in found] == ["unknown_voice"]
    assert "zz_nobody" in found[0].message
    assert not [f for f in down if isinstance(f, TTSAudioRawFrame)]


def test_constructor_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="speed"):
        RealtimeTTSService(speed=3.0)
    with pytest.raises(ValueError, match="de"):
        RealtimeTTSService(language="de")
