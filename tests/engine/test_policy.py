"""The scheduling policy, without a model or a clock."""

from __future__ import annotations

import pytest

from realtime.engine.policy import EDFPolicy, FIFOPolicy
from realtime.engine.request import FRAMES_PER_PHONEME, ChunkRequest, Pending


def pend(seq: int, deadline: float, phonemes: int = 30, session: str = "s") -> Pending:
    req = ChunkRequest(session, "c", "a" * phonemes, "v", deadline, chunk_id=seq)
    return Pending(req, submitted=0.0, seq=seq, started_before=0)


def test_anchor_is_the_earliest_deadline() -> None:
    q = [pend(0, 5.0), pend(1, 1.0), pend(2, 3.0)]
    assert EDFPolicy(max_batch=1).select(q, 0.0)[0].seq == 1
    assert [p.seq for p in EDFPolicy(max_batch=3).select(q, 0.0)] == [1, 2, 0]


def test_ties_go_by_arrival() -> None:
    q = [pend(3, 1.0), pend(1, 1.0), pend(2, 1.0)]
    assert [p.seq for p in EDFPolicy(max_batch=2).select(q, 0.0)] == [1, 2]


def test_batch_size_bound() -> None:
    q = [pend(i, float(i)) for i in range(20)]
    assert len(EDFPolicy(max_batch=8).select(q, 0.0)) == 8


def test_padded_frames_bound() -> None:
    per = 100 * FRAMES_PER_PHONEME
    q = [pend(i, float(i), phonemes=100) for i in range(8)]
    batch = EDFPolicy(max_batch=8, max_frames=3 * per + 1).select(q, 0.0)
    assert len(batch) == 3
    # A long anchor alone may exceed the bound: it must still run.
    assert len(EDFPolicy(max_batch=8, max_frames=10).select(q, 0.0)) == 1


def test_similar_lengths_grouped() -> None:
    q = [pend(0, 0.0, 40), pend(1, 1.0, 400), pend(2, 2.0, 50), pend(3, 3.0, 8)]
    batch = EDFPolicy(max_batch=8, length_ratio=2.0).select(q, 0.0)
    assert [p.seq for p in batch] == [0, 2]


def test_no_starvation_of_an_odd_length() -> None:
    """A chunk that never fits others' groups runs once it is the earliest due."""
    policy = EDFPolicy(max_batch=4, length_ratio=1.5)
    queue = [pend(0, 10.0, 500)]
    seq = 1
    for step in range(50):
        queue += [pend(seq, float(step), 20), pend(seq + 1, float(step), 22)]
        seq += 2
        batch = policy.select(queue, float(step))
        queue = [p for p in queue if p not in batch]
        if any(p.seq == 0 for p in batch):
            assert step <= 11
            return
    pytest.fail("the long chunk starved")


def test_fifo_takes_one_in_arrival_order() -> None:
    q = [pend(2, 0.0), pend(1, 9.0)]
    assert [p.seq for p in FIFOPolicy().select(q, 0.0)] == [1]


def test_bad_bounds_refused() -> None:
    with pytest.raises(ValueError):
        EDFPolicy(max_batch=0)
    with pytest.raises(ValueError):
        EDFPolicy(length_ratio=0.5)


def test_batches_fit_the_graph_buckets() -> None:
    from realtime.engine.buckets import Buckets

    buckets = Buckets(rows=(1, 2, 4, 8, 16, 32), tokens=(64, 512), frames=(128, 256, 512),
                      max_cells=4096)
    policy = EDFPolicy(max_batch=64, buckets=buckets)
    # 40 phonemes ~ 120 frames, 150 with the margin: the 256-frame bucket, so 16 rows at most.
    q = [pend(i, float(i), phonemes=40) for i in range(40)]
    got = policy.select(q, 0.0)
    assert [p.seq for p in got] == list(range(16))
    # Short chunks: 32 rows of 128 frames fit; 33 would pad to 64 rows, so the batch is cut to
    # the row bucket below, dropping the latest deadline.
    q = [pend(i, float(i), phonemes=10) for i in range(33)]
    assert [p.seq for p in policy.select(q, 0.0)] == list(range(32))
    q = [pend(i, float(i), phonemes=10) for i in range(6)]
    assert len(policy.select(q, 0.0)) == 4
    # A chunk longer than every bucket still runs, alone (eagerly).
    assert len(policy.select([pend(0, 0.0, phonemes=400), pend(1, 1.0, phonemes=400)],
                             0.0)) == 1


def test_windows_bound_a_batch_by_its_windows() -> None:
    """With windowed decoding a batch decodes one window per chunk: long chunks are bounded
    and grouped by their next window, not by their whole length."""
    per = 200 * FRAMES_PER_PHONEME  # 600 frames: 15 s of audio each
    q = [pend(i, 0.0, phonemes=200) for i in range(100)] + [pend(100, 0.0, phonemes=15)]
    whole = EDFPolicy(max_batch=128, max_frames=20 * per)
    assert len(whole.select(q, 0.0)) == 20
    windowed = EDFPolicy(max_batch=128, max_frames=20 * per, window_s=(1.4, 3.4))
    # 1.4 s = 56 frames each; the short chunk (45 frames) is as long as those windows: it joins.
    assert len(windowed.select(q, 0.0)) == 101
    # A chunk between windows counts its later window (3.4 s: 136 frames).
    started = pend(101, 0.0, phonemes=200)
    started.cursor = object()  # type: ignore[assignment]
    assert windowed.size(started) == pytest.approx(136)
    assert windowed.size(q[100]) == q[100].size  # shorter than a window: its own length
