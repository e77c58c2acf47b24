"""Spoken words -> Kokoro phonemes: overrides, then misaki's lexicons, then espeak-ng.

``Phonemizer`` is safe to share between threads: its tables are never mutated after
construction, the word cache is an ``lru_cache`` (thread-safe), and espeak-ng calls are
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
from realtime.text.lexicon import Lexicon, load_lexicon
from realtime.text.normalize import SpokenWord
from realtime.text.phonemes import validate_phonemes

__all__ = ["Phonemized", "Phonemizer"]

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
    """G2P for ``en-us`` / ``en-gb``; ``use_lexicon=False`` means espeak-ng only."""

    def __init__(self, language: str = "en-us", *, use_lexicon: bool = True,
                 overrides: Mapping[str, str] | None = None,
                 _shared: tuple[Lexicon | None, EspeakG2P] | None = None) -> None:
        if _shared is None:
            espeak = EspeakG2P(language)  # validates the language
            lexicon = load_lexicon(language) if use_lexicon else None
        else:
            lexicon, espeak = _shared
        self.language = language
        self._lexicon = lexicon
        self._espeak = espeak
        self._overrides = {w: validate_phonemes(p) for w, p in (overrides or {}).items()}
        self._folded = {w.lower(): p for w, p in self._overrides.items()}
        self._cached = functools.lru_cache(maxsize=8192)(self._word)

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
        found = self._overrides.get(text)
        if found is None:
            found = self._folded.get(text.lower())
        if found is not None:
            return found
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
        readings = [self._reading(w) for w in words]
        for i, w in enumerate(words):  # "the" and "to" depend on the sound that follows
            lower = w.text.lower()
            if lower in ("the", "to") and w.phonemes is None and not self._overrides_has(w.text):
                following = readings[i + 1].lstrip("ˈˌ")[:1] if i + 1 < len(readings) else ""
                if lower == "the":
                    readings[i] = "ði" if following in _VOWELS else "ðə"
                elif following and not w.punct:
                    readings[i] = "tʊ" if following in _VOWELS else "tə"
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

    def _overrides_has(self, text: str) -> bool:
        return text in self._overrides or text.lower() in self._folded

    def _reading(self, w: SpokenWord) -> str:
        if w.phonemes is not None:
            try:
                return validate_phonemes(w.phonemes)
            except InputError as exc:  # inline in LLM text: say the word rather than fail
                _LOG.warning("ignoring inline phonemes for %r: %s", w.text, exc.reason)
        if w.letter:
            return self.letter(w.text)
        return self.word(w.text)
