"""Windowed decoding on the tiny model: the plan, pieces against the whole decode, seams, the
runner and the engine delivering a chunk in pieces (and cutting it off on cancel)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from realtime.bench.quality import mel_distance_db
from realtime.engine.batch import Piece
from realtime.engine.loop import Engine
from realtime.engine.plan import WindowPlan
from realtime.engine.policy import EDFPolicy
from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.engine.runner.runner import ModelRunner
from realtime.engine.runner.windows import decode_windows
from realtime.errors import ChunkCancelled, ConfigError
from realtime.weights.registry import LoadedModel
from tests.conftest import chunk_pieces, tiny_loaded

LONG = "sʌmtɪŋ lɑŋə ðæn ðə ʌðəz, wɪð ə kɑmə ænd mɔ wədz, ænd ə fu mɔ æftə ðæt."
SHORT = "hɛlo."
# The tiny model speaks fast (8 samples a generator frame): windows of tens of ms.
FAST = WindowPlan(first_s=0.03, later_s=0.06, margin_s=0.01, fade_ms=4.0)


@pytest.fixture(scope="module")
def lm() -> LoadedModel:
    return tiny_loaded()


def item(lm: LoadedModel, text: str, seed: int | None = None):  # type: ignore[no-untyped-def]
    ids = lm.model.phonemes_to_ids(text)
    return lm.model.item(ids, lm.voices.style("a", len(ids)), 1.0, seed)


def test_plan_cores_cover_the_chunk() -> None:
    plan = WindowPlan(first_s=1.0, later_s=3.0)
    assert plan.cores(50, 80) == [(0, 50)]  # under the first window: one
    assert plan.cores(100, 80) == [(0, 100)]  # a remainder under half a later window joins
    assert plan.cores(400, 80) == [(0, 80), (80, 400)]  # 80 frames left: joined
    assert plan.cores(500, 80) == [(0, 80), (80, 320), (320, 500)]
    for frames in range(1, 700, 7):
        cores = plan.cores(frames, 80)
        assert cores[0][0] == 0 and cores[-1][1] == frames
        assert all(a < b for a, b in cores)
        assert all(b == a2 for (_, b), (a2, _) in pairwise(cores))


@pytest.mark.parametrize("bad", [dict(first_s=0), dict(later_s=-1), dict(margin_s=-0.1),
                                 dict(margin_s=0.001, fade_ms=10)])
def test_plan_refuses_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        WindowPlan(**bad)


def test_one_window_is_the_whole_decode(lm: LoadedModel) -> None:
    it = item(lm, SHORT)
    whole = lm.model.forward_batch([it])[0]
    (piece,) = list(decode_windows(lm.model, it, WindowPlan(first_s=60)))
    assert piece.last and piece.durations is not None
    assert np.array_equal(piece.durations, whole.durations.numpy())
    assert np.array_equal(piece.audio, whole.audio.numpy())


@pytest.mark.parametrize("seed", [None, 7], ids=["no-noise", "seeded-noise"])
def test_pieces_against_the_whole_decode(lm: LoadedModel, seed: int | None) -> None:
    it = item(lm, LONG, seed)
    whole = lm.model.forward_batch([it])[0]
    pieces = list(decode_windows(lm.model, it, FAST))
    assert len(pieces) >= 3
    assert [p.last for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert pieces[0].durations is not None and all(p.durations is None for p in pieces[1:])
    assert np.array_equal(pieces[0].durations, whole.durations.numpy())  # the chunk's prosody
    audio = np.concatenate([p.audio for p in pieces])
    assert audio.dtype == np.float32 and len(audio) == len(whole.audio)
    # Per-window norm statistics move the audio a little; a misplaced window would move it
    # far more (the same audio shifted by 10 ms measures several dB).
    assert mel_distance_db(audio, whole.audio.numpy()) < 3.0
    shifted = np.concatenate([np.zeros(240, np.float32), whole.audio.numpy()[:-240]])
    assert mel_distance_db(shifted, whole.audio.numpy()) > mel_distance_db(
        audio, whole.audio.numpy())


def test_seams_make_no_click(lm: LoadedModel) -> None:
    it = item(lm, LONG)
    pieces = list(decode_windows(lm.model, it, FAST))
    audio = np.concatenate([p.audio for p in pieces])
    seams = np.cumsum([len(p.audio) for p in pieces[:-1]])
    for s in seams:
        assert seam_step(audio, s) <= 1.5 * local_step(audio, s), f"a click at sample {s}"
    # Without the crossfade the windows' different statistics do show at the seams.
    hard = np.concatenate([p.audio for p in decode_windows(
        lm.model, it, WindowPlan(FAST.first_s, FAST.later_s, FAST.margin_s, fade_ms=0))])
    assert len(hard) == len(audio)
    assert not np.array_equal(hard, audio)


def seam_step(audio: np.ndarray, s: int) -> float:
    """The largest sample-to-sample step at a seam (the sample before it and after)."""
    return float(np.abs(np.diff(audio[s - 3:s + 3])).max())


def local_step(audio: np.ndarray, s: int, reach: int = 96) -> float:
    """The largest step around a seam, the seam itself left out."""
    steps = np.abs(np.diff(audio[max(0, s - reach):s + reach]))
    mid = min(s, reach)
    return float(np.concatenate([steps[:mid - 3], steps[mid + 3:]]).max())


def test_runner_pieces_join_to_its_windows(lm: LoadedModel) -> None:
    runner = ModelRunner(lm, "float32", windows=FAST)
    request = ChunkRequest("s", "c", LONG, "a", 0.0)
    (cursor,) = runner.start_windows([request])
    pieces = []
    while not cursor.done:
        pieces += runner.next_pieces([cursor])
    direct = list(decode_windows(lm.model, item(lm, LONG), FAST))
    assert len(pieces) == len(direct)
    for a, b in zip(pieces, direct, strict=True):
        assert np.array_equal(a.audio, b.audio)
    with pytest.raises(RuntimeError):
        runner.next_pieces([cursor])  # no window left
    with pytest.raises(ConfigError):
        ModelRunner(lm).start_windows([request])


def test_engine_delivers_pieces_in_order(lm: LoadedModel) -> None:
    engine = Engine(ModelRunner(lm, "float32", windows=FAST), EDFPolicy(max_batch=1))
    engine.start(warm_up=False)
    try:
        first = engine.submit(ChunkRequest("s", "c", LONG, "a", 0.0)).result(30)
        results = chunk_pieces(first)
        assert len(results) >= 3
        assert len(first.durations) == len(LONG) + 2
        assert all(len(r.durations) == 0 for r in results[1:])
        offsets = np.cumsum([0] + [len(r.audio) for r in results[:-1]])
        assert [r.offset for r in results] == list(offsets)
        assert [r.inference_s for r in results] == sorted(r.inference_s for r in results)
        whole = np.concatenate([r.audio for r in results])
        assert results[-1].chunk_audio_s == len(whole) / 24000
        assert engine.stats().chunks == 1
        # A chunk that fits the first window comes in one result.
        short = engine.submit(ChunkRequest("s", "c", SHORT, "a", 0.0)).result(30)
        assert short.next is None and short.offset == 0
    finally:
        engine.stop()


class GatedPieces:
    """A windowed runner whose windows wait for a gate each: a cancel between them, and the
    order in which windows run. A cursor is [text, next window]."""

    adaptive = False

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.made = 0
        self.order: list[tuple[str, int]] = []
        self.batches: list[list[tuple[str, int]]] = []
        self.waiting = threading.Event()  # a window waits for the gate

    def prepare(self, request: ChunkRequest) -> None:
        pass

    def start(self, batch: Sequence[ChunkRequest]) -> list[list[Any]]:
        return [[r.phonemes, 0] for r in batch]

    def step(self, cursors: Sequence[list[Any]]) -> Iterator[tuple[int, Piece]]:
        self.waiting.set()
        assert self.gate.acquire(timeout=10)
        self.waiting.clear()
        out = []
        self.batches.append([(c[0], c[1]) for c in cursors])
        for c in cursors:
            i = c[1]
            c[1] += 1
            self.made += 1
            self.order.append((c[0], i))
            out.append(Piece(np.full(10, i, np.float32),
                             np.ones(3, np.int64) if i == 0 else None, i == 4))
        return enumerate(out)

    def warm_up(self) -> None:
        pass


def test_cancel_between_pieces_stops_the_windows() -> None:
    runner = GatedPieces()
    engine = Engine(runner, EDFPolicy(max_batch=1))
    engine.start()
    try:
        future = engine.submit(ChunkRequest("s", "c", "x", "v", 0.0))
        runner.gate.release()
        first = future.result(5)
        assert first.next is not None and first.audio[0] == 0
        runner.gate.release()
        second = first.next.result(5)
        assert second.offset == 10 and second.next is not None
        assert engine.cancel("s", "c") == 1
        with pytest.raises(ChunkCancelled):
            second.next.result(5)
        # Its third window waits for the gate (it was resumed at once: nothing else queued),
        # and its result is dropped; then the loop goes on with the next chunk.
        after: Future[ChunkResult] = engine.submit(ChunkRequest("s", "d", "y", "v", 0.0))
        runner.gate.release()
        runner.gate.release()
        assert after.result(5).audio[0] == 0
        assert runner.order[:4] == [("x", 0), ("x", 1), ("x", 2), ("y", 0)]
        assert ("x", 3) not in runner.order  # the cancelled chunk made no more windows
    finally:
        for _ in range(5):
            runner.gate.release()
        engine.stop()


def _behind_a_first_window(max_batch: int, later: str) -> tuple[GatedPieces, list[ChunkResult]]:
    """Context "a" submitted; while its first window runs, contexts ``later`` (one letter
    each, another session each) are submitted; every window then runs to the end. The runner
    (its order and batches) and each context's first result."""
    runner = GatedPieces()
    engine = Engine(runner, EDFPolicy(max_batch=max_batch))
    engine.start()
    try:
        futures = [engine.submit(ChunkRequest("s", "a", "a", "v", 0.0))]
        assert runner.waiting.wait(5)  # a's first window runs
        futures += [engine.submit(ChunkRequest(f"s{k}", k, k, "v", 0.0)) for k in later]
        for _ in range(5 * len(futures)):
            runner.gate.release()
        firsts = [f.result(5) for f in futures]
        for res in firsts:
            chunk_pieces(res, 5)
        return runner, firsts
    finally:
        for _ in range(15):
            runner.gate.release()
        engine.stop()


def test_another_contexts_first_window_runs_between_two_windows() -> None:
    """Earliest deadline first between windows: a new context's first window (due now) goes
    before the next window of a chunk whose listener still has audio in hand."""
    runner, _ = _behind_a_first_window(1, "b")
    assert runner.order[:3] == [("a", 0), ("b", 0), ("a", 1)]
    assert sorted(runner.order) == [(c, i) for c in "ab" for i in range(5)]


def test_windows_of_several_chunks_run_as_one_batch() -> None:
    """With batches of more than one, new contexts' first windows run beside the next window of
    a chunk already playing (earliest deadline first: the new ones are due now)."""
    runner, firsts = _behind_a_first_window(4, "bc")
    assert runner.batches[:2] == [[("a", 0)], [("b", 0), ("c", 0), ("a", 1)]]
    assert [r.batch_size for r in firsts] == [1, 3, 3]
    assert all(len(r.durations) == 3 for r in firsts)
    assert sorted(runner.order) == [(k, i) for k in "abc" for i in range(5)]
