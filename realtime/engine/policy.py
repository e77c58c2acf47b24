"""Which queued chunks run next, and together: pure, no model, no clock of its own.

Earliest deadline first. The batch is anchored on the queued chunk with the earliest deadline
(ties: arrival order), so every chunk runs once the chunks due before it have run: none
starves. Others join the anchor in deadline order while the batch stays within its bounds
(size, padded frames) and their length is close to the anchor's (padding is wasted work).
With graph buckets (a GPU), the bound is the padded shape a graph runs (rows and frames rounded
up to buckets), and the batch is cut to a row bucket: 33 chunks would pad to 64 rows, so the
33rd, due last, waits for the next batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from realtime.engine.buckets import Buckets
from realtime.engine.request import FRAME_S, Pending

# Frames are estimated from phoneme counts before the durations are known; a bucket is chosen
# from the estimate with this margin, so that the real frames usually fit the same graph.
ESTIMATE_MARGIN = 1.25


class Policy(Protocol):
    def select(self, queue: Sequence[Pending], now: float) -> list[Pending]:
        """The next batch, taken from ``queue`` (not empty); the anchor comes first."""
        ...


@dataclass(frozen=True, slots=True)
class EDFPolicy:
    """Earliest deadline first, with batches bounded and grouped by length.

    ``max_batch``: chunks per batch. ``max_frames``: bound on batch size x the longest chunk's
    estimated frames (the padded work). ``length_ratio``: a chunk joins only if its estimated
    length is within this factor of the anchor's, either way. ``buckets``: the static shapes
    batches run in (see the module doc); their ``max_cells`` bounds the padded work instead.
    ``window_s``: with windowed decoding, a batch decodes one window of each chunk (seconds of
    the first and of each later window, margins included): lengths are compared and bounded by
    that, not by the whole chunk.
    """

    max_batch: int = 8
    max_frames: float = 12_000.0
    length_ratio: float = 2.5
    buckets: Buckets | None = None
    window_s: tuple[float, float] | None = None

    def size(self, p: Pending) -> float:
        """A chunk's estimated frames of padded work in its next batch: all of it, or with
        windowed decoding (``window_s``: the first and each later window's seconds, margins
        included) at most its next window's."""
        if self.window_s is None:
            return p.size
        window = self.window_s[0] if p.cursor is None else self.window_s[1]
        return min(p.size, window / FRAME_S)

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.length_ratio < 1:
            raise ValueError("length_ratio must be at least 1")

    def select(self, queue: Sequence[Pending], now: float) -> list[Pending]:
        ordered = sorted(queue, key=lambda p: (p.deadline, p.seq))
        anchor = ordered[0]
        batch = [anchor]
        first = longest = self.size(anchor)
        for cand in ordered[1:]:
            if len(batch) >= self.max_batch:
                break
            size = max(self.size(cand), 1.0)
            ratio = max(size, first) / max(min(size, first), 1.0)
            if ratio > self.length_ratio:
                continue
            if not self._fits(len(batch) + 1, max(longest, size)):
                continue
            batch.append(cand)
            longest = max(longest, size)
        if self.buckets is not None:
            rows = max([r for r in self.buckets.rows if r <= len(batch)], default=len(batch))
            batch = batch[:rows]
        return batch

    def _fits(self, rows: int, frames: float) -> bool:
        b = self.buckets
        if b is None:
            return rows * frames <= self.max_frames
        padded_rows = b.rows_for(rows) or rows
        return b.frames_for(padded_rows, int(frames * ESTIMATE_MARGIN) + 1) is not None


@dataclass(frozen=True, slots=True)
class FIFOPolicy:
    """One chunk at a time in arrival order: the sequential baseline for benchmarks."""

    def select(self, queue: Sequence[Pending], now: float) -> list[Pending]:
        return [min(queue, key=lambda p: p.seq)]
