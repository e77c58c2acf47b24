"""``python -m load_tests agents``: the voice-agent integrations on one server.

1. **Overhead.** The same sentence through the bare ``realtime.client``, pipecat's
   ``RealtimeTTSService`` (a ``TTSSpeakFrame`` into a running pipeline) and LiveKit's ``TTS``
   (``stream()``: the text, then end of input), in turns (A B C, B C A, ...), each on a connection
   opened beforehand: the time from handing the text over to the first audio reaching the
   caller. The figure is each integration's median less the bare client's.
2. **Interruptions.** A long answer through pipecat, interrupted after its first audio: frames
   of the interrupted context that reach the pipeline after the interruption (should be 0).
3. **Agents at once.** ``--agents`` pipecat pipelines, each its own session, each speaking
   ``--turns`` LLM answers streamed as tokens (30 a second) with a pause between: first audio
   per turn (first token to first audio frame at the pipeline's end) and underruns of a
   real-time playback of each turn (80 ms jitter buffer).

Needs the ``pipecat`` and ``livekit`` extras. Bounded: a fixed number of sentences and turns,
every wait with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from realtime.client import RealtimeClient
from realtime.integrations.livekit import TTS as LiveKitTTS
from realtime.integrations.pipecat import RealtimeTTSService

from .corpus import SENTENCES, tokens, utterance
from .playback import Playback
from .report import machine, percentiles

RATE = 24_000
WAIT_S = 60.0  # any one wait


class _Sink(FrameProcessor):
    """The end of a pipeline: calls ``seen(frame, now)`` for each frame going downstream."""

    def __init__(self, seen: Callable[[Frame, float], None]) -> None:
        super().__init__()
        self._seen = seen

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self._seen(frame, time.monotonic())
        await self.push_frame(frame, direction)


@dataclass
class _Agent:
    """A running pipecat pipeline around one ``RealtimeTTSService``, and what reached its end:
    per context, the first audio frame's time, its playback, when it stopped."""

    url: str
    voice: str
    first: dict[str, float] = field(default_factory=dict)
    playback: dict[str, Playback] = field(default_factory=dict)
    stopped: dict[str, float] = field(default_factory=dict)
    after_interruption: dict[str, int] = field(default_factory=dict)
    interrupted: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def seen(self, frame: Frame, now: float) -> None:
        cid = getattr(frame, "context_id", None)
        if isinstance(frame, InterruptionFrame):
            self.interrupted |= set(self.first) - set(self.stopped)
        elif isinstance(frame, TTSAudioRawFrame) and cid:
            if cid in self.interrupted:
                self.after_interruption[cid] = self.after_interruption.get(cid, 0) + 1
            self.first.setdefault(cid, now)
            ms = len(frame.audio) * 1000.0 / (2 * frame.sample_rate)
            self.playback.setdefault(cid, Playback()).frame(now, ms)
        elif isinstance(frame, TTSStoppedFrame) and cid:
            self.stopped[cid] = now
        self.changed.set()

    async def until(self, test: Callable[[], object]) -> Any:
        async with asyncio.timeout(WAIT_S):
            while not (out := test()):
                self.changed.clear()
                await self.changed.wait()
            return out

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PipelineWorker]:
        tts = RealtimeTTSService(url=self.url, voice=self.voice)
        worker = PipelineWorker(Pipeline([tts, _Sink(self.seen)]), cancel_on_idle_timeout=False,
                                params=PipelineParams(audio_out_sample_rate=RATE))
        started = asyncio.Event()

        @worker.event_handler("on_pipeline_started")
        async def _started(worker: PipelineWorker, frame: Frame) -> None:
            started.set()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        task = asyncio.create_task(runner.run())
        try:
            async with asyncio.timeout(WAIT_S):
                await started.wait()
            yield worker
        finally:
            await worker.queue_frame(EndFrame())
            async with asyncio.timeout(WAIT_S):
                await task

    def new_context(self, before: set[str]) -> str | None:
        return next((c for c in self.first if c not in before), None)


async def _bare(client: RealtimeClient, sentence: str, cid: str, voice: str) -> float:
    await client.start(cid, codec="pcm16", sample_rate=RATE, voice=voice)
    start = time.monotonic()
    await client.text(sentence, cid)
    await client.end(cid)
    first = None
    async with asyncio.timeout(WAIT_S):
        while True:
            msg = await client.recv()
            if msg.get("context_id") != cid:
                continue
            if msg["type"] == "audio" and first is None:
                first = time.monotonic() - start
            elif msg["type"] in ("done", "error"):
                break
    if first is None:
        raise RuntimeError(f"no audio for {sentence!r}: {msg}")
    return first


async def _pipecat(agent: _Agent, worker: PipelineWorker, sentence: str) -> float:
    before = set(agent.first)
    start = time.monotonic()
    await worker.queue_frame(TTSSpeakFrame(sentence))
    cid = await agent.until(lambda: agent.new_context(before))
    first = agent.first[cid] - start
    await agent.until(lambda: cid in agent.stopped)
    return first


async def _livekit(tts: LiveKitTTS, sentence: str) -> float:
    stream = tts.stream()
    first = None
    try:
        start = time.monotonic()
        stream.push_text(sentence)
        stream.end_input()
        async with asyncio.timeout(WAIT_S):
            async for _ in stream:
                if first is None:
                    first = time.monotonic() - start
    finally:
        await stream.aclose()
    if first is None:
        raise RuntimeError(f"no audio for {sentence!r}")
    return first


async def overhead(url: str, voice: str, rounds: int) -> dict[str, Any]:
    """Part 1: first audio of the same sentences through each path, in turns."""
    firsts: dict[str, list[float]] = {"bare": [], "pipecat": [], "livekit": []}
    agent = _Agent(url, voice)
    client = await RealtimeClient.connect(url)
    tts = LiveKitTTS(url=url, voice=voice)
    try:
        async with agent.running() as worker:
            paths: dict[str, Callable[[str, int], Awaitable[float]]] = {
                "bare": lambda s, i: _bare(client, s, f"bare-{i}", voice),
                "pipecat": lambda s, i: _pipecat(agent, worker, s),
                "livekit": lambda s, i: _livekit(tts, s),
            }
            names = list(paths)
            for name in names:  # warm-up, not counted
                await paths[name](SENTENCES[0], -1)
            for i in range(rounds):
                sentence = SENTENCES[1 + i % (len(SENTENCES) - 1)]
                for name in names[i % 3:] + names[:i % 3]:
                    firsts[name].append(await paths[name](sentence, i) * 1000.0)
    finally:
        await client.close()
        await tts.aclose()
    med = {name: statistics.median(v) for name, v in firsts.items()}
    return {"rounds": rounds, "first_audio_ms": {k: percentiles(v) for k, v in firsts.items()},
            "median_over_bare_ms": {k: round(med[k] - med["bare"], 1)
                                    for k in ("pipecat", "livekit")},
            "pairs_over_bare_ms": {k: percentiles(a - b for a, b in zip(firsts[k],
                                                                        firsts["bare"],
                                                                        strict=True))
                                   for k in ("pipecat", "livekit")}}


async def interruptions(url: str, voice: str, count: int) -> dict[str, Any]:
    """Part 2: long answers interrupted once their audio has started."""
    agent = _Agent(url, voice)
    long = " ".join(SENTENCES[:8])
    async with agent.running() as worker:
        for _ in range(count):
            before = set(agent.first)
            await worker.queue_frame(TTSSpeakFrame(long))
            await agent.until(lambda: agent.new_context(before))  # noqa: B023
            await asyncio.sleep(0.5)
            await worker.queue_frame(InterruptionFrame())
            await asyncio.sleep(1.0)  # anything of it still coming would come now
    return {"interrupted": len(agent.interrupted),
            "frames_after_interruption": sum(agent.after_interruption.values())}


async def _converse(agent: _Agent, worker: PipelineWorker, turns: int, rng: random.Random,
                    tokens_per_s: float, think_s: float) -> list[tuple[float, int]]:
    out = []
    for _ in range(turns):
        before = set(agent.first)
        text = utterance(rng, 1, 2)
        start = time.monotonic()
        await worker.queue_frame(LLMFullResponseStartFrame())
        for token in tokens(text, rng):
            await worker.queue_frame(LLMTextFrame(token))
            await asyncio.sleep(1.0 / tokens_per_s)
        await worker.queue_frame(LLMFullResponseEndFrame())
        cid = await agent.until(lambda: agent.new_context(before))  # noqa: B023
        await agent.until(lambda: cid in agent.stopped)  # noqa: B023
        out.append(((agent.first[cid] - start) * 1000.0, agent.playback[cid].underruns))
        await asyncio.sleep(rng.expovariate(1.0 / think_s))
    return out


async def _converse_bare(url: str, voice: str, turns: int, rng: random.Random,
                         tokens_per_s: float, think_s: float) -> list[tuple[float, int]]:
    """The same conversation as ``_converse`` through the bare client (one context a turn)."""
    out = []
    client = await RealtimeClient.connect(url)
    try:
        for turn in range(turns):
            cid = f"turn-{turn}"
            text = utterance(rng, 1, 2)
            await client.start(cid, codec="pcm16", sample_rate=RATE, voice=voice)
            start = time.monotonic()

            async def feed(text: str = text, cid: str = cid) -> None:
                for token in tokens(text, rng):
                    await client.text(token, cid)
                    await asyncio.sleep(1.0 / tokens_per_s)
                await client.end(cid)

            feeding = asyncio.create_task(feed())
            first, playback = None, Playback()
            async with asyncio.timeout(WAIT_S):
                while True:
                    msg = await client.recv()
                    if msg.get("context_id") != cid:
                        continue
                    if msg["type"] == "audio":
                        now = time.monotonic()
                        first = first if first is not None else now
                        playback.frame(now, float(msg["duration_ms"]))
                    elif msg["type"] in ("done", "error"):
                        break
            await feeding
            if first is None:
                raise RuntimeError(f"no audio for turn {turn}: {msg}")
            out.append(((first - start) * 1000.0, playback.underruns))
            await asyncio.sleep(rng.expovariate(1.0 / think_s))
    finally:
        await client.close()
    return out


async def agents_at_once(url: str, voice: str, agents: int, turns: int, seed: int,
                         tokens_per_s: float = 30.0, think_s: float = 1.0) -> dict[str, Any]:
    """Part 3: ``agents`` pipecat pipelines speaking at once; then the same conversations
    (same seeds) through the bare client, for the side-by-side."""
    async def one(i: int) -> list[tuple[float, int]]:
        agent = _Agent(url, voice)
        async with agent.running() as worker:
            return await _converse(agent, worker, turns, random.Random(seed + i), tokens_per_s,
                                   think_s)

    def summary(results: list[tuple[float, int]]) -> dict[str, Any]:
        return {"turns": len(results), "first_audio_ms": percentiles(f for f, _ in results),
                "underruns": sum(u for _, u in results),
                "turns_with_underruns": sum(1 for _, u in results if u)}

    piped = [r for rs in await asyncio.gather(*(one(i) for i in range(agents))) for r in rs]
    bare = [r for rs in await asyncio.gather(*(
        _converse_bare(url, voice, turns, random.Random(seed + i), tokens_per_s, think_s)
        for i in range(agents))) for r in rs]
    return {"agents": agents, "pipecat": summary(piped), "bare": summary(bare)}


async def run_agents(url: str, voice: str, rounds: int, interrupts: int, agents: int,
                     turns: int, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {"url": url, "voice": voice, "machine": machine()}
    report["overhead"] = await overhead(url, voice, rounds)
    report["interruptions"] = await interruptions(url, voice, interrupts)
    report["agents_at_once"] = await agents_at_once(url, voice, agents, turns, seed)
    return report


def write(report: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "agents.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
