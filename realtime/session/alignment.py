"""Word timestamps for a chunk: the model's per-token durations -> words on the audio timeline.

Pure arithmetic on a ``Chunk`` from the scheduler and the durations ``KModel`` returns for it
(one entry per token, BOS and EOS included; a frame is 600 samples = 25 ms at 24 kHz).
Words sharing a source span (the five spoken words of ``$4.50``) become one entry, named by
the characters the client sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from realtime.errors import InputError
from realtime.session.scheduler import Chunk

__all__ = ["FRAME_MS", "WordTiming", "word_timings"]

FRAME_MS = 25.0


@dataclass(frozen=True, slots=True)
class WordTiming:
    word: str  # as the client wrote it ("$4.50"); for phoneme input, the phonemes
    start_ms: float
    end_ms: float
    char_start: int
    char_end: int


def word_timings(chunk: Chunk, durations: Sequence[int], offset_ms: float = 0.0,
                 frame_ms: float = FRAME_MS) -> list[WordTiming]:
    """Times of the chunk's words; ``offset_ms`` is where the chunk's audio starts."""
    if len(durations) != len(chunk.phonemes) + 2:
        raise InputError(f"{len(durations)} durations for {len(chunk.phonemes)} phonemes "
                         "(expected one per phoneme plus BOS and EOS)")
    edges = [0, *accumulate(durations)]  # edges[i] = frames before token i

    def at(token: int) -> float:
        return offset_ms + edges[token] * frame_ms

    out: list[WordTiming] = []
    for w in chunk.words:
        if w.ph_end <= w.ph_start:
            continue  # nothing spoken for it
        start, end = at(w.ph_start + 1), at(w.ph_end + 1)
        last = out[-1] if out else None
        if last and w.char_end > w.char_start and (last.char_start, last.char_end) == (
                w.char_start, w.char_end):
            out[-1] = WordTiming(last.word, last.start_ms, end, last.char_start, last.char_end)
            continue
        if w.char_end > w.char_start:
            name = chunk.text[w.char_start - chunk.char_start:w.char_end - chunk.char_start]
        else:
            name = w.text
        out.append(WordTiming(name, start, end, w.char_start, w.char_end))
    return out
