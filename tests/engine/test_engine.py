"""The engine loop with a fake runner: order, batching, cancellation, limits, stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from realtime.engine.batch import WholeChunks
from realtime.engine.loop import Engine
from realtime.engine.policy import EDFPolicy
from realtime.engine.request import ChunkRequest
from realtime.errors import ChunkCancelled, EngineBusy, EngineStopped, InputError, RealtimeError


class FakeRunner(WholeChunks):
    """Audio = one sample per phoneme; ``gate`` holds a batch running until set."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.fail_on: str | None = None

    def prepare(self, request: ChunkRequest) -> None:
        if "!" in request.phonemes:
            raise InputError("unknown phoneme symbol(s): '!'")

    def run(self, batch: Sequence[ChunkRequest]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        self.batches.append([r.phonemes for r in batch])
        self.started.set()
        assert self.gate.wait(10)
        if self.fail_on and any(r.phonemes == self.fail_on for r in batch):
            raise RuntimeError("boom")
        return [(i, np.full(len(r.phonemes), 0.5, np.float32), np.ones(len(r.phonemes) + 2))
                for i, r in enumerate(batch)]

    def warm_up(self) -> None:
        self.batches.append(["warm-up"])


def req(text: str, deadline: float = 0.0, session: str = "s", context: str = "c") -> ChunkRequest:
    return ChunkRequest(session, context, text, "v", deadline)


@pytest.fixture
def fake() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def engine(fake: FakeRunner):  # type: ignore[no-untyped-def]
    eng = Engine(fake, EDFPolicy(max_batch=4), queue_limit=8)
    eng.start()
    yield eng
    fake.gate.set()
    eng.stop()


def hold(fake: FakeRunner, engine: Engine) -> None:
    """Occupy the engine with a running batch until ``fake.gate`` is set."""
    fake.gate.clear()
    fake.started.clear()
    engine.submit(req("blocker", session="other"))
    assert fake.started.wait(5)


def test_warm_up_runs_first(fake: FakeRunner, engine: Engine) -> None:
    assert fake.batches[0] == ["warm-up"]


def test_result_and_figures(engine: Engine) -> None:
    res = engine.submit(req("abcd")).result(5)
    assert res.audio.shape == (4,) and res.batch_size == 1
    assert res.queued_s >= 0 and res.inference_s >= 0
    assert res.waited_batches == 0


def test_deadline_order_and_batching(fake: FakeRunner, engine: Engine) -> None:
    hold(fake, engine)
    futs = [engine.submit(req(f"x{i}", deadline=float(10 - i))) for i in range(6)]
    fake.gate.set()
    results = [f.result(5) for f in futs]
    # The blocker, then a batch of the 4 earliest deadlines (x5..x2), then the other two.
    assert fake.batches[2] == ["x5", "x4", "x3", "x2"]
    assert fake.batches[3] == ["x1", "x0"]
    assert [r.batch_size for r in results] == [2, 2, 4, 4, 4, 4]
    # A chunk queued behind the running blocker waited for exactly that batch.
    assert results[5].waited_batches == 1 and results[0].waited_batches == 2


def test_first_chunk_overtakes_later_chunks(fake: FakeRunner) -> None:
    eng = Engine(fake, EDFPolicy(max_batch=1), clock=lambda: 100.0)
    eng.start(warm_up=False)
    try:
        hold(fake, eng)
        later = [eng.submit(req(f"later{i}", deadline=105.0 + i)) for i in range(3)]
        first = eng.submit(req("first", deadline=100.0, context="new"))
        fake.gate.set()
        assert first.result(5).waited_batches == 1  # behind the running batch only
        for f in later:
            f.result(5)
        assert fake.batches[1] == ["first"]
    finally:
        fake.gate.set()
        eng.stop()


def test_cancel_queued_never_runs(fake: FakeRunner, engine: Engine) -> None:
    hold(fake, engine)
    mine = [engine.submit(req(f"m{i}", context="a")) for i in range(3)]
    other_ctx = engine.submit(req("keep", context="b"))
    other_session = engine.submit(req("theirs", session="t", context="a"))
    assert engine.cancel("s", "a") == 3
    for f in mine:
        with pytest.raises(ChunkCancelled):
            f.result(0)  # failed at once, not when the engine gets round to it
    fake.gate.set()
    assert other_ctx.result(5).audio.size == 4
    assert other_session.result(5).audio.size == 6
    ran = [p for batch in fake.batches for p in batch]
    assert not any(p.startswith("m") for p in ran)


def test_cancel_running_drops_result(fake: FakeRunner, engine: Engine) -> None:
    fake.gate.clear()
    fake.started.clear()
    fut = engine.submit(req("running"))
    assert fake.started.wait(5)
    assert engine.cancel("s") == 1
    fake.gate.set()
    with pytest.raises(ChunkCancelled):
        fut.result(5)
    assert engine.submit(req("next")).result(5).audio.size == 4
    assert engine.stats().cancelled == 1


def test_validation_errors_at_submit(engine: Engine) -> None:
    with pytest.raises(InputError):
        engine.submit(req("bad!"))


def test_queue_limit(fake: FakeRunner, engine: Engine) -> None:
    hold(fake, engine)
    for i in range(8):
        engine.submit(req(f"q{i}"))
    with pytest.raises(EngineBusy):
        engine.submit(req("one too many"))


def test_failed_batch_fails_its_chunks_only(fake: FakeRunner, engine: Engine) -> None:
    fake.fail_on = "bad"
    with pytest.raises(RealtimeError, match="boom"):
        engine.submit(req("bad")).result(5)
    assert engine.submit(req("fine")).result(5).audio.size == 4


def test_stop_fails_queued(fake: FakeRunner) -> None:
    eng = Engine(fake, EDFPolicy())
    with pytest.raises(EngineStopped):
        eng.submit(req("too early"))
    eng.start(warm_up=False)
    hold(fake, eng)
    queued = eng.submit(req("queued"))
    threading.Timer(0.2, fake.gate.set).start()
    eng.stop()
    with pytest.raises(EngineStopped):
        queued.result(0)
    with pytest.raises(EngineStopped):
        eng.submit(req("too late"))


def test_async_face(fake: FakeRunner, engine: Engine) -> None:
    async def main() -> None:
        res = await engine.synthesize(req("hello"))
        assert res.audio.size == 5
        hold(fake, engine)
        task = asyncio.ensure_future(engine.synthesize(req("abandoned")))
        await asyncio.sleep(0.05)
        task.cancel()  # the awaiting side gives up: the chunk must not run
        with pytest.raises(asyncio.CancelledError):
            await task
        fake.gate.set()
        assert (await engine.synthesize(req("after"))).audio.size == 5

    asyncio.run(main())
    assert not any("abandoned" in b for b in fake.batches)


class SteppingRunner(FakeRunner):
    """Yields a batch's chunks one at a time: the first at once, each later one only after
    ``proceed`` is set; a chunk named "blocker" waits for ``gate`` (to fill the queue)."""

    def __init__(self) -> None:
        super().__init__()
        self.proceed = threading.Event()

    def run(self, batch: Sequence[ChunkRequest]):  # type: ignore[no-untyped-def, override]
        self.batches.append([r.phonemes for r in batch])
        for i, r in enumerate(batch):
            if r.phonemes == "blocker":
                self.started.set()
                assert self.gate.wait(10)
            elif i:
                assert self.proceed.wait(10)
            yield i, np.zeros(len(r.phonemes), np.float32), np.ones(len(r.phonemes) + 2)


def test_early_items_of_a_batch_are_delivered_early() -> None:
    runner = SteppingRunner()
    eng = Engine(runner, EDFPolicy(max_batch=4))
    eng.start(warm_up=False)
    try:
        hold(runner, eng)
        futs = [eng.submit(req(f"c{i}", deadline=float(i))) for i in range(3)]
        runner.gate.set()
        first = futs[0].result(5)  # out while the rest of its batch is still running
        assert not futs[1].done() and not futs[2].done()
        assert runner.batches[-1] == ["c0", "c1", "c2"] and first.batch_size == 3
        runner.proceed.set()
        rest = [f.result(5) for f in futs[1:]]
        assert first.inference_s <= rest[-1].inference_s
    finally:
        runner.gate.set()
        runner.proceed.set()
        eng.stop()
