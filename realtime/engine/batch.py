"""The runner as the engine loop sees it: one typed interface, and no torch.

The loop hands a runner a batch of chunks and gets their audio back in pieces. Every chunk is
decoded in windows: ``start`` does the work before the generator for new chunks and gives each
a ``Cursor``; ``step`` decodes the next window of each cursor given and yields a ``Piece`` per
chunk as soon as it is ready. A runner without a window plan decodes each chunk whole, as its
only window (``WholeChunks``), so the loop has one path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from realtime.engine.request import ChunkRequest, Cursor

__all__ = ["Cursor", "Piece", "RunOutput", "Runner", "WholeChunk", "WholeChunks"]

RunOutput = tuple[int, np.ndarray, np.ndarray]  # index in the batch, audio, durations


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a chunk's audio (float32, 24 kHz). ``durations`` (the whole chunk's, frames per
    phoneme) come with the first piece; ``last`` marks the final one."""

    audio: np.ndarray
    durations: np.ndarray | None
    last: bool


class Runner(Protocol):
    """What the engine loop calls, from its own thread."""

    @property
    def adaptive(self) -> bool:
        """Whether later windows are cut to the generator's measured pace."""
        ...

    def prepare(self, request: ChunkRequest) -> None:
        """Validate a request before it is queued (raise InputError / VoiceError)."""
        ...

    def start(self, batch: Sequence[ChunkRequest]) -> list[Cursor]:
        """New chunks' work before their first window, together: a cursor each, in order."""
        ...

    def step(self, cursors: Sequence[Cursor]) -> Iterable[tuple[int, Piece]]:
        """The next window of each cursor, as one batch: ``(index, piece)`` for every one,
        each as soon as it is ready (the loop delivers early pieces early)."""
        ...

    def warm_up(self) -> None:
        ...


class WholeChunk:
    """A chunk decoded whole: a cursor of one window."""

    margin = 0

    def __init__(self, request: ChunkRequest) -> None:
        self.request = request
        self.index = 0

    @property
    def done(self) -> bool:
        return self.index > 0

    def bounds(self) -> tuple[int, int]:
        return 0, round(self.request.est_frames)

    def cap_next(self, frames: int) -> bool:
        return False


class WholeChunks:
    """A runner that decodes chunks whole: subclasses give ``run`` (every chunk's audio and
    durations, each yielded as soon as it is ready); ``start`` and ``step`` make it a runner
    whose every chunk is one window."""

    adaptive = False

    def run(self, batch: Sequence[ChunkRequest]) -> Iterable[RunOutput]:
        raise NotImplementedError

    def prepare(self, request: ChunkRequest) -> None:
        """Nothing to check beyond what ``run`` raises."""

    def warm_up(self) -> None:
        """Nothing to warm up."""

    def start(self, batch: Sequence[ChunkRequest]) -> list[Cursor]:
        return [WholeChunk(r) for r in batch]

    def step(self, cursors: Sequence[Cursor]) -> Iterator[tuple[int, Piece]]:
        whole = [c for c in cursors if isinstance(c, WholeChunk)]
        if len(whole) != len(cursors):
            raise TypeError("a whole-chunk runner steps only its own cursors")
        for index, audio, durations in self.run([c.request for c in whole]):
            whole[index].index = 1
            yield index, Piece(audio, durations, True)
