"""Adaptive window sizes: the generator's measured speed, and each chunk's next window cut to
what that speed makes before the chunk's listener runs out of audio (``WindowPlan.adaptive``,
docs/windows.md). Pure: no torch (the engine loop imports it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# The share of a chunk's remaining audio that its next window may take to make: the rest is
# room for the pace's error (a window's time varies, the more so on a shared machine).
SAFETY = 0.85


class Capped(Protocol):
    """What :func:`fit_windows` needs of a cursor (``realtime.engine.batch.Cursor``)."""

    margin: int

    def cap_next(self, frames: int) -> bool:
        ...


class GeneratorPace:
    """The generator's measured speed over windows, for an adaptive plan: seconds per frame of
    a batch's windows (rows x the widest window, margins included), an exponentially weighted
    mean (each new batch counts for half: a machine whose speed drifts is followed within a
    few windows). Kept apart for batches of first windows (short: their fixed costs weigh
    more per frame) and of later ones; a later window is judged by the later windows' pace
    once one has been seen, by the first windows' until then (the more cautious)."""

    WEIGHT = 0.5

    def __init__(self) -> None:
        self.first: float | None = None
        self.later: float | None = None

    def observe(self, seconds: float, frames: int, first: bool = False) -> None:
        """A batch of windows took ``seconds`` for ``frames`` (rows x the widest window);
        ``first``: a batch with a first window in it."""
        if frames <= 0 or seconds <= 0:
            return
        sample, kept = seconds / frames, self.first if first else self.later
        mean = sample if kept is None else kept + self.WEIGHT * (sample - kept)
        if first:
            self.first = mean
        else:
            self.later = mean

    def frames_within(self, seconds: float, rows: int = 1) -> int | None:
        """Frames of window per row that a batch of ``rows`` later windows makes in
        ``seconds`` at the pace seen (None: nothing seen yet)."""
        per_frame = self.later if self.later is not None else self.first
        if per_frame is None:
            return None
        return max(0, int(seconds / (per_frame * max(1, rows))))


def fit_windows(cursors: Sequence[Capped], budgets: Sequence[float], pace: GeneratorPace,
                rows: int | None = None, safety: float = SAFETY) -> int:
    """Cut each cursor's next window so that, at ``pace``, the batch it runs in (``rows``
    windows; default: these cursors) is done within ``safety`` of its ``budget`` (seconds until
    that chunk's audio so far has played; a first window is not cut): its own frames at most
    what fits, less both margins. How many were cut."""
    cut = 0
    for cursor, budget in zip(cursors, budgets, strict=True):
        fits = pace.frames_within(max(0.0, budget) * safety, rows or len(cursors))
        if fits is not None and cursor.cap_next(fits - 2 * cursor.margin):
            cut += 1
    return cut
