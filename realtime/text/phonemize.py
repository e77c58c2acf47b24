"""Spoken words -> Kokoro phonemes: overrides, then misaki's lexicons, then espeak-ng.

English goes word by word (misaki's lexicons, espeak-ng for the rest). The espeak-ng languages
go clause by clause: a clause (the words up to spoken punctuation) is phonemized whole, since
their sounds cross word boundaries (French liaison: "les amis" -> lez amˈi; Spanish "la
biblioteca" -> la βiβliotˈeka), and its output words are then assigned back to the input words
(``align_words``) so that word timings still work.

``Phonemizer`` is safe to share between threads: its tables are never mutated after
construction, the caches are ``lru_cache``s (thread-safe), and espeak-ng calls are
serialised inside ``EspeakG2P``. A session with its own pronunciations gets a light copy from
``with_overrides``, sharing the lexicon and espeak-ng.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from realtime.errors import InputError
from realtime.text.g2p import SUPPORTED_LANGUAGES, EspeakG2P
from realtime.text.languages import language as find_language
from realtime.text.lexicon import Lexicon, load_lexicon
from realtime.text.phonemes import validate_phonemes
from realtime.text.words import SpokenWord

__all__ = ["Phonemized", "Phonemizer", "align_words"]

_LOG = logging.getLogger("realtime.text")
_VOWELS = frozenset("AIOQWYaeiouæɑɒɔəɛɜɪʊʌᵊᵻ")
_ACRONYM = re.compile(r"[A-Z]{2,5}")
_ACRONYM_PLURAL = re.compile(r"([A-Z]{2,5})s")


@dataclass(frozen=True, slots=True)
class Phonemized:
    """A phoneme string and, per input word, the ``[start, end)`` of its phonemes in it."""

    phonemes: str
    spans: tuple[tuple[int, int], ...]


class Phonemizer:
    """G2P for one of ``languages()``; for English, ``use_lexicon=False`` means espeak-ng only."""

    def __init__(self, language: str = "en-us", *, use_lexicon: bool = True,
                 overrides: Mapping[str, str] | None = None,
                 _shared: tuple[Lexicon | None, EspeakG2P] | None = None) -> None:
        self._english = find_language(language).english  # validates the language
        if _shared is None:
            espeak = EspeakG2P(language)
            lexicon = load_lexicon(language) if use_lexicon and self._english else None
        else:
            lexicon, espeak = _shared
        self.language = language
        self._lexicon = lexicon
        self._espeak = espeak
        self._overrides = {w: validate_phonemes(p) for w, p in (overrides or {}).items()}
        self._folded = {w.lower(): p for w, p in self._overrides.items()}
        self._cached = functools.lru_cache(maxsize=8192)(self._word)
        self._clause = functools.lru_cache(maxsize=2048)(self._phonemize_clause)

    @staticmethod
    def languages() -> tuple[str, ...]:
        return SUPPORTED_LANGUAGES

    def with_overrides(self, overrides: Mapping[str, str]) -> Phonemizer:
        """A phonemizer for one session: ``overrides`` (word -> phonemes) win over everything.

        Keys match as written, then case-insensitively; an unknown phoneme symbol raises
        ``InputError``.
        """
        merged = {**self._overrides, **overrides}
        return Phonemizer(self.language, overrides=merged,
                          _shared=(self._lexicon, self._espeak))

    def word(self, text: str) -> str:
        """Phonemes of one spoken word (no punctuation, no spaces inside)."""
        return self._cached(text)

    def _word(self, text: str) -> str:
        found = self._override(text)
        if found is not None:
            return found
        if not self._english:
            return self._espeak(text).replace(" ", "")
        if text in ("a", "A"):
            return "ɐ"  # the article; spelled letters come as SpokenWord.letter
        if text in ("an", "An"):
            return "ɐn"
        if text == "I":
            return "ˌI"
        if self._lexicon is not None:
            plural = _ACRONYM_PLURAL.fullmatch(text)
            if plural and self._lexicon.exact(text) is None:  # APIs, not the bee genus
                stem = self._lexicon.exact(plural.group(1))
                return (stem or self._spell(plural.group(1))) + "z"
            found = self._lexicon.lookup(text)
            if found is not None:
                return self._as_trained(found)
            if _ACRONYM.fullmatch(text):
                return self._spell(text)
        return self._espeak(text).replace(" ", "")

    def _as_trained(self, phonemes: str) -> str:
        # Kokoro v1.0 was trained on American flaps written T and glottal stops written t.
        if self.language == "en-us":
            return phonemes.replace("ɾ", "T").replace("ʔ", "t")
        return phonemes

    def _spell(self, letters: str) -> str:
        names = [self.letter(c) for c in letters]
        return "".join(n.replace("ˈ", "ˌ") for n in names[:-1]) + names[-1]

    def letter(self, char: str) -> str:
        """The name of a letter (``W`` -> dˈʌbᵊlju)."""
        found = self._lexicon.exact(char.upper()) if self._lexicon is not None else None
        return found or self._espeak(char.upper()).replace(" ", "")

    def phonemize(self, words: Sequence[SpokenWord]) -> Phonemized:
        """Join the words' phonemes with spaces, their punctuation attached; keep each span."""
        readings = self._readings(words) if self._english else self._clause_readings(words)
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0
        for w, reading in zip(words, readings, strict=True):
            text = reading + w.punct
            if not text:
                spans.append((pos, pos))
                continue
            if pieces:
                pos += 1
            spans.append((pos, pos + len(reading)))
            pieces.append(text)
            pos += len(text)
        return Phonemized(" ".join(pieces), tuple(spans))

    def _readings(self, words: Sequence[SpokenWord]) -> list[str]:
        readings = [self._reading(w) for w in words]
        for i, w in enumerate(words):  # "the" and "to" depend on the sound that follows
            lower = w.text.lower()
            if lower in ("the", "to") and w.phonemes is None and not self._overrides_has(w.text):
                following = readings[i + 1].lstrip("ˈˌ")[:1] if i + 1 < len(readings) else ""
                if lower == "the":
                    readings[i] = "ði" if following in _VOWELS else "ðə"
                elif following and not w.punct:
                    readings[i] = "tʊ" if following in _VOWELS else "tə"
        return readings

    def _clause_readings(self, words: Sequence[SpokenWord]) -> list[str]:
        """The espeak-ng languages: each clause phonemized whole, then split back into words.

        A clause ends at a word with spoken punctuation; a word with phonemes of its own (inline
        or an override) is read as given and ends the clause before it too.
        """
        readings: list[str] = []
        clause: list[str] = []

        def close() -> None:
            if clause:
                readings.extend(self._clause(tuple(clause)))
                clause.clear()

        for w in words:
            given = self._forced(w)
            if given is None:
                given = self._override(w.text)
            if given is not None:
                close()
                readings.append(given)
                continue
            clause.append(w.text)
            if w.punct:
                close()
        close()
        return readings

    def _phonemize_clause(self, texts: tuple[str, ...]) -> tuple[str, ...]:
        spoken = self._espeak(" ".join(texts)).split()
        return tuple(align_words(spoken, [self.word(t) for t in texts]))

    def _override(self, text: str) -> str | None:
        found = self._overrides.get(text)
        return found if found is not None else self._folded.get(text.lower())

    def _overrides_has(self, text: str) -> bool:
        return self._override(text) is not None

    @staticmethod
    def _forced(w: SpokenWord) -> str | None:
        if w.phonemes is not None:
            try:
                return validate_phonemes(w.phonemes)
            except InputError as exc:  # inline in LLM text: say the word rather than fail
                _LOG.warning("ignoring inline phonemes for %r: %s", w.text, exc.reason)
        return None

    def _reading(self, w: SpokenWord) -> str:
        forced = self._forced(w)
        if forced is not None:
            return forced
        if w.letter:
            return self.letter(w.text)
        return self.word(w.text)


_UNSTRESSED = str.maketrans("", "", "ˈˌː")
_MAX_GROUP = 6  # output words one input word may take (a number: "dos mil veinticuatro")


def align_words(spoken: Sequence[str], alone: Sequence[str]) -> list[str]:
    """Assign the phoneme words of a clause said whole (``spoken``) to its input words, whose
    phonemes said one by one are ``alone``: each input word gets a run of consecutive output
    words (perhaps none), all output words are used, in order, and the runs' lengths match
    the words' own lengths as closely as possible (stress and length marks not counted, and a
    run other than one word costs a little, so that equal counts pair one to one).
    """
    n, m = len(alone), len(spoken)
    if n == 0:
        return []
    size = [len(s.translate(_UNSTRESSED)) for s in spoken]
    want = [len(a.translate(_UNSTRESSED)) for a in alone]
    prefix = [0]
    for k in size:
        prefix.append(prefix[-1] + k)
    widest = max(_MAX_GROUP, -(-m // n) + 1)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back = [[0] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(m + 1):
            for k in range(min(j, widest) + 1):
                before = cost[i - 1][j - k]
                if before == inf:
                    continue
                c = before + abs(prefix[j] - prefix[j - k] - want[i - 1]) + 0.5 * abs(k - 1)
                if c < cost[i][j]:
                    cost[i][j], back[i][j] = c, k
    runs: list[str] = []
    j = m
    for i in range(n, 0, -1):
        k = back[i][j]
        runs.append(" ".join(spoken[j - k:j]))
        j -= k
    return runs[::-1]
