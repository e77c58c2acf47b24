"""Which queued chunks run next, and together: pure, no model, no clock of its own.

Earliest deadline first. The batch is anchored on the queued chunk with the earliest deadline
(ties: arrival order), so every chunk runs once the chunks due before it have run: none
starves. Others join the anchor in deadline order while the batch stays within its bounds
(size, padded frames) and their length is close to the anchor's (padding is wasted work).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .request import Pending


class Policy(Protocol):
    def select(self, queue: Sequence[Pending], now: float) -> list[Pending]:
        """The next batch, taken from ``queue`` (not empty); the anchor comes first."""
        ...


@dataclass(frozen=True, slots=True)
class EDFPolicy:
    """Earliest deadline first, with batches bounded and grouped by length.

    ``max_batch``: chunks per batch. ``max_frames``: bound on batch size x the longest chunk's
    estimated frames (the padded work). ``length_ratio``: a chunk joins only if its estimated
    length is within this factor of the anchor's, either way.
    """

    max_batch: int = 8
    max_frames: float = 12_000.0
    length_ratio: float = 2.5

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.length_ratio < 1:
            raise ValueError("length_ratio must be at least 1")

    def select(self, queue: Sequence[Pending], now: float) -> list[Pending]:
        ordered = sorted(queue, key=lambda p: (p.deadline, p.seq))
        anchor = ordered[0]
        batch = [anchor]
        longest = anchor.size
        for cand in ordered[1:]:
            if len(batch) >= self.max_batch:
                break
            size = max(cand.size, 1.0)
            ratio = max(size, anchor.size) / max(min(size, anchor.size), 1.0)
            if ratio > self.length_ratio:
                continue
            if (len(batch) + 1) * max(longest, size) > self.max_frames:
                continue
            batch.append(cand)
            longest = max(longest, size)
        return batch


@dataclass(frozen=True, slots=True)
class FIFOPolicy:
    """One chunk at a time in arrival order: the sequential baseline for benchmarks."""

    def select(self, queue: Sequence[Pending], now: float) -> list[Pending]:
        return [min(queue, key=lambda p: p.seq)]
