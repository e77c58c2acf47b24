"""The sentence-boundary scheduler: streamed text deltas -> phoneme chunks, Sans-I/O.

One ``TextScheduler`` per context. Feed it ``push(text, now)``, ``push_phonemes``, ``flush``,
``end`` and ``poll(now)``; each returns the chunks that became ready. The clock is always
passed in (seconds, e.g. ``time.monotonic()``), and ``next_deadline()`` says when ``poll`` is
next worth calling. Nothing here sleeps, locks or does I/O.

Where a chunk ends depends only on the text, never on how it was split into deltas: a cut is
made only at a *settled* boundary (see ``boundaries``), so feeding a text in any pieces gives
the same chunks as feeding it whole. Time enters only through ``max_buffer_delay_ms``
(a chunk goes out when text has waited that long), ``flush`` and ``end``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from realtime.errors import ConfigError, InputError
from realtime.kokoro import MAX_PHONEMES
from realtime.session.boundaries import Boundary, Kind, find_boundaries, word_cuts
from realtime.text.normalize import SpokenWord, normalize
from realtime.text.phonemes import validate_phonemes
from realtime.text.phonemize import Phonemizer

__all__ = ["Chunk", "ChunkReason", "SchedulerConfig", "TextScheduler", "Word", "estimate_audio_s"]


ChunkReason = Literal["eager", "sentence", "length", "timeout", "flush", "end", "phonemes"]
# Kokoro's audio for a chunk of English text, roughly: a fixed part (onset and the pause at the
# end) and a part per character, in seconds (fitted to the embedded model at speed 1).
AUDIO_S_PER_CHUNK = 0.75
AUDIO_S_PER_CHAR = 0.072
_SENTENCE_MARKS = frozenset(".!?")
_CLAUSE_MARKS = frozenset(",;:—…")


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """How eagerly text becomes chunks. Defaults suit an LLM streaming 20-100 tokens/s."""

    max_buffer_delay_ms: float = 400.0  # text waiting this long without a boundary goes out
    first_min_words: int = 3  # the first chunk may end at a clause once it has this many words
    min_chunk_chars: int = 60  # later chunks merge sentences until at least this long
    max_chunk_chars: int = 300  # past this a chunk is cut at a clause, then a word boundary
    max_phonemes: int = MAX_PHONEMES
    eager_first: bool = True  # False: the first chunk follows the same rules as later ones
    # Where synthesis is only a little faster than real time (a CPU), each chunk must be
    # synthesised while the audio before it plays, or the listener hears a gap. With
    # `plan_rtf` set, later chunks are capped so that this holds at that real-time factor
    # (None: no such cap; see `_planned_limit`).
    plan_rtf: float | None = None
    min_planned_chars: int = 30  # the planned cap never goes below this
    # The engine decodes chunks in windows, the first one this long (seconds of audio): a
    # chunk's audio then starts after its first window, not after all of it, so chunks stay
    # sentence-sized: the first chunk ends at a sentence (not at a clause), and a later one is
    # capped only where even its first window would come late (None: whole-chunk decoding).
    window_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_buffer_delay_ms < 0:
            raise ConfigError("max_buffer_delay_ms must be >= 0")
        if self.first_min_words < 1:
            raise ConfigError("first_min_words must be >= 1")
        if not 0 <= self.min_chunk_chars <= self.max_chunk_chars:
            raise ConfigError("need 0 <= min_chunk_chars <= max_chunk_chars")
        if self.plan_rtf is not None and not 0 < self.plan_rtf < 1:
            raise ConfigError("plan_rtf must be between 0 and 1 (or None)")
        if self.min_planned_chars < 1:
            raise ConfigError("min_planned_chars must be at least 1")
        if not 1 <= self.max_phonemes <= MAX_PHONEMES:
            raise ConfigError(f"max_phonemes must be in 1..{MAX_PHONEMES}")


@dataclass(frozen=True, slots=True)
class Word:
    """A spoken word: its characters in the context's text, its phonemes in the chunk's."""

    text: str  # the spoken form ("four" for the first word of "$4.50")
    char_start: int  # offsets into the context's text as the client sent it (all deltas)
    char_end: int
    ph_start: int  # [ph_start, ph_end) in Chunk.phonemes (token ph_start + 1 after BOS)
    ph_end: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of synthesis. ``phonemes == ""`` means nothing to say (skip synthesis)."""

    index: int  # 0, 1, ... per context
    text: str  # exactly the client's characters [char_start, char_end)
    char_start: int
    char_end: int
    phonemes: str  # Kokoro symbols, at most max_phonemes
    words: tuple[Word, ...]
    reason: ChunkReason


_WORD_RE = re.compile(r"[^\W_]+")


class TextScheduler:
    """Per-context text buffer that decides when and where chunks end.

    Not thread-safe: one per context, driven by one task. The ``Phonemizer`` it is given may
    be shared by all of them. Offsets count Unicode code points (Python ``str`` indices).
    """

    def __init__(self, phonemizer: Phonemizer, config: SchedulerConfig | None = None, *,
                 lexicon: Mapping[str, str] | None = None) -> None:
        self.config = config or SchedulerConfig()
        self._g2p = phonemizer.with_overrides(lexicon) if lexicon else phonemizer
        self.language = phonemizer.language
        self._buf = ""  # text not yet in a chunk
        self._base = 0  # offset of _buf in the context's text
        self._index = 0
        self._ahead_s = 0.0  # audio the listener has in hand when the next chunk starts (plan)
        self._since: float | None = None  # when the pending text started waiting
        self._overdue = False  # the delay passed but no cut was possible yet
        self._ended = False
        # Set by the owner: the buffer delay of chunks after the first is not due before this
        # (the listener still has audio until about then; see Context.text_hold_until).
        self.hold_until: float | None = None

    @property
    def pending_text(self) -> str:
        return self._buf

    @property
    def ended(self) -> bool:
        return self._ended

    def next_deadline(self) -> float | None:
        """When ``poll`` should next be called (same clock as ``now``), or None."""
        if self._ended or self._since is None or self._overdue:
            return None
        due = self._since + self.config.max_buffer_delay_ms / 1000.0
        if self._index > 0 and self.hold_until is not None:
            due = max(due, self.hold_until)
        return due

    def push(self, text: str, now: float) -> list[Chunk]:
        """Append a text delta (split anywhere); return the chunks it completes."""
        self._check_open()
        if not text:
            return []
        if self._since is None and text.strip():
            self._since = now
        self._buf += text
        chunks = self._advance(final=False, now=now)
        if self._overdue or self._due(now):
            chunks += self._timeout(now)
        return chunks

    def push_phonemes(self, phonemes: str, now: float) -> list[Chunk]:
        """A span given as phonemes: validated, then spoken after all text before it.

        The text buffered so far goes out first (as on ``flush``); the phonemes follow as
        chunks of their own with empty text (``char_start == char_end``), one ``Word`` per
        space-separated group. An unknown symbol raises ``InputError`` and changes nothing.
        """
        self._check_open()
        clean = validate_phonemes(phonemes)
        chunks = self.flush(now)
        if clean:
            at = self._base + len(self._buf)
            words = [SpokenWord(p, at, at, phonemes=p) for p in clean.split(" ")]
            chunks += self._build("", at, words, "phonemes")
        return chunks

    def flush(self, now: float) -> list[Chunk]:
        """Everything buffered goes out now (whitespace alone is kept for the next chunk)."""
        self._check_open()
        if not self._buf.strip():
            return []
        return self._emit(len(self._buf), "flush", now)

    def end(self, now: float) -> list[Chunk]:
        """No more input: the rest goes out, then the scheduler refuses further input."""
        self._check_open()
        chunks = self._advance(final=True, now=now)
        if self._buf:
            chunks += self._emit(len(self._buf), "end", now)
        self._ended = True
        self._since = None
        return chunks

    def poll(self, now: float) -> list[Chunk]:
        """Chunks due because text has waited ``max_buffer_delay_ms`` without a boundary."""
        if self._ended or not self._due(now):
            return []
        return self._timeout(now)

    # internals

    def _check_open(self) -> None:
        if self._ended:
            raise InputError("this context has ended: no more text")

    def _due(self, now: float) -> bool:
        deadline = self.next_deadline()
        return deadline is not None and now >= deadline

    def _advance(self, final: bool, now: float) -> list[Chunk]:
        chunks: list[Chunk] = []
        while self._buf:
            decided = self._decide(final)
            if decided is None:
                break
            chunks += self._emit(*decided, now)
        return chunks

    def _decide(self, final: bool) -> tuple[int, ChunkReason] | None:
        """Where the pending text must end: a function of the text alone (see the module doc)."""
        buf, cfg = self._buf, self.config
        bounds = find_boundaries(buf, 0, final, self.language)
        limit = cfg.max_chunk_chars
        planned = self._planned_limit()
        if planned is not None and planned < limit:
            cut = self._planned_cut(buf, bounds, planned)
            if cut is not None:
                return cut
        eager = cfg.eager_first and self._index == 0
        for b in bounds:
            if b.pos > limit:
                break
            if eager and (b.kind is Kind.SENTENCE or (
                    cfg.window_s is None
                    and len(_WORD_RE.findall(buf, 0, b.pos)) >= cfg.first_min_words)):
                return b.pos, "eager"
            if b.kind is Kind.SENTENCE and len(buf[:b.pos].strip()) >= cfg.min_chunk_chars:
                return b.pos, "sentence"
        if buf[limit:].strip():  # too long, and settled up to the limit: cut within it
            for kind in (Kind.SENTENCE, Kind.CLAUSE):
                picks = [b.pos for b in bounds if b.kind is kind and b.pos <= limit]
                if picks:
                    return picks[-1], "length"
            cuts = [c for c in word_cuts(buf, 0, self.language) if c < len(buf)]
            within = [c for c in cuts if c <= limit]
            if within:
                return within[-1], "length"
            return (cuts[0], "length") if cuts else None  # one huge token: cut after it
        return None

    def _planned_cut(self, buf: str, bounds: list[Boundary], planned: int
                     ) -> tuple[int, ChunkReason] | None:
        """A cut under the planned cap, at a sentence or clause boundary only (a cut inside a
        clause costs more intelligibility than a short gap costs): the first sentence end of
        ``min_chunk_chars`` (or the cap) within the cap; else, once the text runs past the cap,
        the last boundary in its second half, or else the first boundary after it. None: no
        such cut is settled yet (the unplanned rules apply)."""
        least = min(self.config.min_chunk_chars, planned)
        size = [len(buf[:b.pos].strip()) for b in bounds]
        for b, n in zip(bounds, size, strict=True):
            if b.pos > planned:
                break
            if b.kind is Kind.SENTENCE and n >= least:
                return b.pos, "sentence"
        if not buf[planned:].strip():
            return None
        within = [b.pos for b, n in zip(bounds, size, strict=True)
                  if planned // 2 <= n and b.pos <= planned]
        if within:
            return within[-1], "length"
        after = [b.pos for b in bounds if planned < b.pos <= self.config.max_chunk_chars]
        return (after[0], "length") if after else None

    def _planned_limit(self) -> int | None:
        """The longest next chunk (characters) that is synthesised before the audio already
        planned runs out, at ``plan_rtf`` = r.

        With chunks synthesised back to back, chunk k is ready at r(a_0 + ... + a_k) and due
        when a_0 .. a_k-1 have played from r a_0, so it needs
        r a_k <= a_0 + (1 - r)(a_1 + ... + a_k-1): ``_ahead_s`` is that right-hand side. Audio
        is estimated from characters (``estimate_audio_s``), so this stays a function of the text.
        """
        r = self.config.plan_rtf
        if r is None or self._index == 0:  # the first chunk: the eager rule
            return None
        window = self.config.window_s
        if window is not None and r * (window + AUDIO_S_PER_CHUNK) <= self._ahead_s:
            return None  # its first window is in time however long it is
        chars = (self._ahead_s / r - AUDIO_S_PER_CHUNK) / AUDIO_S_PER_CHAR
        return max(self.config.min_planned_chars, int(chars))

    def _timeout(self, now: float) -> list[Chunk]:
        bounds = find_boundaries(self._buf, 0, False, self.language)
        cuts = word_cuts(self._buf, 0, self.language)
        cut = bounds[-1].pos if bounds else (cuts[-1] if cuts else None)
        if cut is None:
            self._overdue = True  # wait for the word in progress to finish
            return []
        chunks = self._emit(cut, "timeout", now)
        return chunks + self._advance(final=False, now=now)

    def _emit(self, cut: int, reason: ChunkReason, now: float) -> list[Chunk]:
        piece, self._buf = self._buf[:cut], self._buf[cut:]
        base, self._base = self._base, self._base + cut
        if piece.strip() and self.config.plan_rtf is not None:
            audio = estimate_audio_s(len(piece.strip()))
            # The first chunk's audio is all in hand when the second starts; from then on each
            # chunk adds its audio but uses r of it in synthesising the next (see _planned_limit).
            self._ahead_s += audio if self._index == 0 else (1 - self.config.plan_rtf) * audio
        self._overdue = False
        self._since = now if self._buf.strip() else None
        return self._build(piece, base, normalize(piece, self.language, base), reason)

    def _build(self, piece: str, base: int, words: list[SpokenWord],
               reason: ChunkReason) -> list[Chunk]:
        """One chunk for ``piece``, or several if its phonemes exceed the limit."""
        limit = self.config.max_phonemes
        out: list[Chunk] = []
        start, end = base, base + len(piece)
        while True:
            ph = self._g2p.phonemize(words)
            if len(ph.phonemes) <= limit or len(words) <= 1:
                out.append(self._chunk(piece[start - base:], start, end, words, ph.phonemes,
                                       ph.spans, reason))
                return out
            k = _split_index(words, ph.spans, limit)
            head = words[:k]
            cut = max(start, min(head[-1].end if words[k].start == head[-1].start
                                 else words[k].start, end))
            head_ph = self._g2p.phonemize(head)
            out.append(self._chunk(piece[start - base:cut - base], start, cut, head,
                                   head_ph.phonemes, head_ph.spans, "length"))
            words, start = words[k:], cut

    def _chunk(self, text: str, start: int, end: int, words: list[SpokenWord], phonemes: str,
               spans: tuple[tuple[int, int], ...], reason: ChunkReason) -> Chunk:
        limit = self.config.max_phonemes
        phonemes = phonemes[:limit]  # only a single word longer than the limit gets here
        records = tuple(Word(w.text, w.start, w.end, min(a, limit), min(b, limit))
                        for w, (a, b) in zip(words, spans, strict=True))
        chunk = Chunk(self._index, text, start, end, phonemes, records, reason)
        self._index += 1
        return chunk


def _split_index(words: list[SpokenWord], spans: tuple[tuple[int, int], ...],
                 limit: int) -> int:
    """How many leading words to keep: last sentence end, clause end, then word that fits."""
    fits = [k for k in range(1, len(words))
            if spans[k - 1][1] + len(words[k - 1].punct) <= limit]
    if not fits:
        return 1
    for good in (lambda k: bool(set(words[k - 1].punct) & _SENTENCE_MARKS),
                 lambda k: bool(set(words[k - 1].punct) & _CLAUSE_MARKS),
                 lambda k: words[k].start != words[k - 1].start):
        chosen = [k for k in fits if good(k)]
        if chosen:
            return chosen[-1]
    return fits[-1]


def estimate_audio_s(chars: int) -> float:
    """Kokoro's audio for a chunk of ``chars`` characters of English, roughly (speed 1)."""
    return AUDIO_S_PER_CHUNK + AUDIO_S_PER_CHAR * chars
