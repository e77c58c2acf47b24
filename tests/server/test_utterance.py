"""The one synthesis path (``realtime/server/utterance.py``): an utterance through the session
protocol and an engine client. With a fake engine (chunks finish when the test says) for order,
deadlines, seeds, errors and cancel; with the tiny model's engine for the audio itself."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from concurrent.futures import Future

import numpy as np
import pytest
import torch

from realtime.codecs.wav import pcm16
from realtime.engine.info import ModelInfo
from realtime.engine.loop import Engine
from realtime.engine.policy import EDFPolicy
from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.engine.runner.runner import ModelRunner
from realtime.errors import ChunkCancelled, EngineBusy, InputError, RealtimeError, VoiceError
from realtime.server.utterance import Utterance, speak, synthesize
from realtime.session.messages import MessageError
from realtime.session.scheduler import Chunk, TextScheduler
from realtime.text.phonemize import Phonemizer
from realtime.weights.registry import LoadedModel
from tests.server.conftest import tiny_kokoro

TEXT = ("Hello there! Your order of $4.50 shipped on 3/14, and it should arrive soon. "
        "The driver will call you when he is about ten minutes away.")
phonemizer = functools.cache(Phonemizer)


def chunks_of(text: str, *, phonemes: bool = False) -> list[Chunk]:
    """The chunks a session cuts (no chunk plan), for the expected audio."""
    scheduler = TextScheduler(phonemizer("en-us"))
    got = scheduler.push_phonemes(text, 0.0) if phonemes else scheduler.push(text, 0.0)
    return [c for c in got + scheduler.end(0.0) if c.phonemes]


class FakeEngine:
    """An ``EngineClient`` that records requests; their chunks finish when ``finish`` says."""

    def __init__(self, refuse: BaseException | None = None) -> None:
        self.info = ModelInfo("fake", ("jf_alpha", "jm_kumo"), "jf_alpha", frozenset())
        self.now = 100.0
        self.refuse = refuse
        self.submitted: list[tuple[ChunkRequest, Future[ChunkResult]]] = []
        self.cancelled: list[tuple[str, str | None]] = []

    def clock(self) -> float:
        return self.now

    def submit(self, request: ChunkRequest) -> Future[ChunkResult]:
        if self.refuse is not None:
            raise self.refuse
        future: Future[ChunkResult] = Future()
        self.submitted.append((request, future))
        return future

    def cancel(self, session: str, context: str | None = None) -> int:
        self.cancelled.append((session, context))
        return 0

    def finish(self, i: int, samples: int | BaseException) -> np.ndarray:
        request, future = self.submitted[i]
        if isinstance(samples, BaseException):
            future.set_exception(samples)
            return np.zeros(0, dtype=np.float32)
        audio = np.full(samples, 0.01 * (i + 1), dtype=np.float32)
        future.set_result(ChunkResult(request, audio, np.array([samples]), 0.0, 0.01, 1, 0))
        return audio


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


Step = int | tuple[int, BaseException] | None


def run_with_fake(engine: FakeEngine, utterance: Utterance, steps: Iterator[Step]
                  ) -> list[bytes]:
    """Run ``speak``; whenever it waits, finish a chunk as the next step says: its index (its
    audio), (index, the exception it fails with), or None (stop listening)."""
    async def main() -> list[bytes]:
        gen = speak(utterance, engine, phonemizer)
        pieces: list[bytes] = []
        task = asyncio.ensure_future(anext(gen))
        try:
            while True:
                await settle()
                if task.done():
                    try:
                        pieces.append(task.result())
                    except StopAsyncIteration:
                        return pieces
                    task = asyncio.ensure_future(anext(gen))
                    continue
                step = next(steps)
                if step is None:
                    return pieces
                if isinstance(step, int):
                    engine.finish(step, 3000 + 777 * step)
                else:
                    engine.finish(*step)
        finally:
            task.cancel()  # the generator is waiting: a cancel ends it, as a client gone does
            await asyncio.gather(task, return_exceptions=True)
            await gen.aclose()
    return asyncio.run(main())


def test_audio_in_chunk_order_without_the_end_padding() -> None:
    engine = FakeEngine()
    # chunk 1 finishes first: nothing comes out until chunk 0 has
    pieces = run_with_fake(engine, Utterance(TEXT), iter([1, 0, 2]))
    assert len(engine.submitted) == 3
    expected = np.concatenate([np.full(3000 + 777 * i, 0.01 * (i + 1), dtype=np.float32)
                               for i in range(3)])
    assert b"".join(pieces) == pcm16(expected)  # 11331 samples: not padded to 100 ms


def test_chunks_deadlines_and_seed_come_from_the_session() -> None:
    engine = FakeEngine()
    run_with_fake(engine, Utterance(TEXT, voice="jm_kumo", speed=1.25, seed=7),
                  iter([0, 1, 2]))
    requests = [r for r, _ in engine.submitted]
    assert [r.phonemes for r in requests] == [c.phonemes for c in chunks_of(TEXT)]
    assert {(r.voice, r.speed, r.seed) for r in requests} == {("jm_kumo", 1.25, 7)}
    # The first chunk is due now, each later one when the audio queued before it runs out.
    assert requests[0].deadline == 100.0
    assert requests[1].deadline == pytest.approx(100.0 + requests[0].est_audio_s)
    assert requests[2].deadline == pytest.approx(
        100.0 + requests[0].est_audio_s + requests[1].est_audio_s)


def test_closing_early_cancels_the_engine_work() -> None:
    engine = FakeEngine()
    pieces = run_with_fake(engine, Utterance(TEXT), iter([0, None]))
    assert len(pieces) == 1
    session = engine.submitted[0][0].session
    assert session.startswith("utterance-") and (session, None) in engine.cancelled
    assert all(f.cancelled() for _, f in engine.submitted[1:])


def test_engine_errors_are_the_engines_own() -> None:
    with pytest.raises(EngineBusy, match="queue is full"):
        run_with_fake(FakeEngine(refuse=EngineBusy("the engine queue is full")),
                      Utterance(TEXT), iter([]))
    engine = FakeEngine()
    with pytest.raises(ChunkCancelled):
        run_with_fake(engine, Utterance(TEXT), iter([1, (0, ChunkCancelled("gone"))]))
    failing = FakeEngine()
    with pytest.raises(RealtimeError, match="synthesis failed: boom"):
        run_with_fake(failing, Utterance(TEXT), iter([(0, ValueError("boom"))]))


@pytest.fixture(scope="module")
def lm() -> LoadedModel:
    return tiny_kokoro()


@pytest.fixture(scope="module")
def engine(lm: LoadedModel) -> Iterator[Engine]:
    # A new thread (the engine's) takes the thread count last set in any thread (a server in
    # an earlier test sets 1), this one keeps its own: with unequal counts the float order, and
    # so a sample's last bit, may differ. Set one count for both.
    torch.set_num_threads(torch.get_num_threads())
    engine = Engine(ModelRunner(lm), EDFPolicy(max_batch=1))
    engine.start(warm_up=False)
    yield engine
    engine.stop()


def expected_pcm(lm: LoadedModel, chunks: list[Chunk], voice: str, speed: float = 1.0
                 ) -> tuple[bytes, int]:
    """The model's audio of each chunk, joined; and the samples its durations say."""
    runner = ModelRunner(lm)
    audio, frames = [], 0
    for c in chunks:
        ((_, a, d),) = list(runner.run([ChunkRequest("t", "t", c.phonemes, voice, 0.0, speed)]))
        audio.append(a)
        frames += int(d.sum())
    return pcm16(np.concatenate(audio)), frames * lm.model.config.frame_samples


def test_text_through_the_tiny_engine(lm: LoadedModel, engine: Engine) -> None:
    got = asyncio.run(synthesize(Utterance(TEXT, speed=1.1), engine, phonemizer))
    want, samples = expected_pcm(lm, chunks_of(TEXT), "jf_alpha", 1.1)
    assert got == want and len(got) == 2 * samples


def test_phonemes_through_the_tiny_engine(lm: LoadedModel, engine: Engine) -> None:
    phonemes = "həlˈO wˈɜɹld. " * 40  # longer than a chunk: the scheduler cuts it
    got = asyncio.run(synthesize(Utterance(phonemes, phonemes=True), engine, phonemizer))
    chunks = chunks_of(phonemes, phonemes=True)
    assert len(chunks) > 1
    want, samples = expected_pcm(lm, chunks, "jf_alpha")
    assert got == want and len(got) == 2 * samples


@pytest.mark.parametrize(("utterance", "error", "code", "needle"), [
    (Utterance("Hi.", voice="nobody"), VoiceError, "unknown_voice",
     "unknown voice 'nobody'; known voices: jf_alpha, jm_kumo"),
    (Utterance("hX", phonemes=True), MessageError, "bad_value", "'X'"),
    (Utterance("Hi.", speed=9.0), MessageError, "bad_value", "speed"),
    (Utterance("🙂 **"), InputError, "bad_input", "nothing to say"),
    (Utterance("", phonemes=True), InputError, "bad_input", "nothing to say"),
])
def test_refusals_are_our_errors(engine: Engine, utterance: Utterance,
                                 error: type[RealtimeError], code: str, needle: str) -> None:
    with pytest.raises(error) as info:
        asyncio.run(synthesize(utterance, engine, phonemizer))
    assert info.value.code == code and needle in info.value.reason
    assert isinstance(info.value, InputError | VoiceError)
