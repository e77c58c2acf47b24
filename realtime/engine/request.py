"""What the engine is asked for and what it gives back: chunk requests, results, queue entries.

The engine serves chunks, not sessions: a request names its owner (session and context) only
so that a barge-in can cancel everything that owner has queued.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from realtime.kokoro import SAMPLE_RATE

# Kokoro speaks about 3 frames (of 25 ms) per phoneme at speed 1; the policy (padding bounds)
# and the sessions (deadlines of queued chunks) only need a rough size before the durations
# are known.
FRAMES_PER_PHONEME = 3.0
FRAME_S = 0.025


@dataclass(frozen=True, slots=True)
class ChunkRequest:
    """One chunk of phonemes to synthesise.

    ``deadline`` is on the engine's clock (seconds): the moment the owner's audio runs out,
    so the chunk is needed by then. A context's first chunk is needed now.
    """

    session: str
    context: str
    phonemes: str
    voice: str
    deadline: float
    speed: float = 1.0
    seed: int | None = None  # None: no harmonic-source noise (deterministic audio)
    chunk_id: int = 0

    @property
    def est_frames(self) -> float:
        return len(self.phonemes) * FRAMES_PER_PHONEME / self.speed

    @property
    def est_audio_s(self) -> float:
        return self.est_frames * FRAME_S


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The audio of one chunk, with what it cost.

    ``durations``: frames (``frame_samples`` samples each) per token, the boundary tokens at
    both ends included, so ``durations[1:-1]`` belong to the chunk's phonemes in order.

    With windowed decoding a chunk's audio comes in pieces: the first result carries the
    first piece and the durations, and ``next`` is the future of the following piece (a
    result like this one, empty durations, ``offset`` the chunk's samples before it); the
    last piece has no ``next``. ``inference_s`` runs from the batch's start to each piece.
    """

    request: ChunkRequest
    audio: np.ndarray  # float32, 24 kHz
    durations: np.ndarray  # int64
    queued_s: float  # from submit to the start of its batch
    inference_s: float  # the batch's run time
    batch_size: int
    waited_batches: int  # batches that ran (or were running) between its submit and its start
    next: Future[ChunkResult] | None = None  # the chunk's next piece (None: this is the last)
    offset: int = 0  # samples of the chunk in the pieces before this one

    @property
    def audio_s(self) -> float:
        """This piece's audio (the whole chunk's when it comes in one)."""
        return len(self.audio) / SAMPLE_RATE

    @property
    def chunk_audio_s(self) -> float:
        """The chunk's audio up to the end of this piece (the whole chunk's at the last)."""
        return (self.offset + len(self.audio)) / SAMPLE_RATE


class Cursor(Protocol):
    """One chunk's progress through its windows (the runner's own; the loop reads it, and with
    an adaptive plan cuts its next window: ``realtime.engine.pace.fit_windows``)."""

    index: int  # the window that comes next (0: the first)
    margin: int

    @property
    def done(self) -> bool:
        ...

    def bounds(self) -> tuple[int, int]:
        """The next window's frames ``[lo, hi)``, its margins included."""
        ...

    def cap_next(self, frames: int) -> bool:
        ...


@dataclass(eq=False, slots=True)
class Pending:
    """A queued request: the policy's view (deadline, size, order) and the engine's future."""

    request: ChunkRequest
    submitted: float
    seq: int  # arrival order, the tie-break
    started_before: int  # batches finished before it arrived
    future: Future[ChunkResult] = field(default_factory=Future)
    tail: Future[ChunkResult] | None = None  # the next piece's future, once a piece went out
    sent: int = 0  # samples delivered in pieces so far
    # A chunk waits in the queue between its windows: its cursor (the runner's), when its
    # first window began and when its first piece went out (engine clock), and when its next
    # one is needed.
    cursor: Cursor | None = None
    started: float | None = None
    first_out: float | None = None
    resume_by: float | None = None

    def played_until(self) -> float:
        """When the audio sent so far has played (engine clock): it plays from the chunk's
        deadline, or from its first piece if that came later (none out yet: the deadline)."""
        played_from = self.request.deadline
        if self.first_out is not None:
            played_from = max(played_from, self.first_out)
        return played_from + self.sent / SAMPLE_RATE

    @property
    def current(self) -> Future[ChunkResult]:
        """The future the chunk's next result (or failure) goes to."""
        return self.future if self.tail is None else self.tail

    @property
    def deadline(self) -> float:
        return self.request.deadline if self.resume_by is None else self.resume_by

    @property
    def size(self) -> float:
        return self.request.est_frames


async def joined(first: ChunkResult) -> ChunkResult:
    """A chunk's pieces awaited and joined into one result (the first's durations and queue
    time, the last's inference time); a chunk in one piece comes back as it is."""
    pieces, last = [first.audio], first
    while last.next is not None:
        last = await asyncio.wrap_future(last.next)
        pieces.append(last.audio)
    if last is first:
        return first
    return replace(first, audio=np.concatenate(pieces), inference_s=last.inference_s, next=None)
