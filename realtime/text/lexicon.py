"""misaki's pronunciation lexicons (gold, then silver), read as data: no spaCy, no misaki code.

The JSON files ship in the ``misaki`` wheel already in Kokoro's symbol set. A value is either
phonemes or a map from part-of-speech tag to phonemes; without a tagger we take ``DEFAULT``
(or the first non-empty reading).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping

__all__ = ["Lexicon", "load_lexicon"]

_FILES = {"en-us": ("us_gold.json", "us_silver.json"), "en-gb": ("gb_gold.json", "gb_silver.json")}
_VOICELESS = frozenset("ptkfθ")
_SIBILANT = frozenset("szʃʒʧʤ")


def _reading(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        default = value.get("DEFAULT")
        if isinstance(default, str) and default:
            return default
        return next((v for v in value.values() if isinstance(v, str) and v), None)
    return None


def _load(name: str) -> dict[str, str]:
    raw = json.loads(importlib.resources.files("misaki.data").joinpath(name)
                     .read_text(encoding="utf-8"))
    table = {}
    for word, value in raw.items():
        reading = _reading(value)
        if reading:
            table[word] = reading
    return table


class Lexicon:
    """Word -> phonemes for one accent; immutable after construction, so safe to share."""

    def __init__(self, language: str, entries: Mapping[str, str]) -> None:
        self.language = language
        self._entries = entries
        self._plural_vowel = "ᵻ" if language == "en-us" else "ɪ"

    def __len__(self) -> int:
        return len(self._entries)

    def exact(self, word: str) -> str | None:
        return self._entries.get(word)

    def lookup(self, word: str) -> str | None:
        """Phonemes of ``word``: as written, lower-cased, then simple -'s / -s / -es forms."""
        found = self._entries.get(word)
        if found is None and not word.isupper():
            found = self._entries.get(word.lower())
        if found is None and len(word) > 1 and word.isupper():
            found = self._entries.get(word.lower()) if len(word) > 5 else None
        if found is not None:
            return found
        for ending in ("'s", "s'", "es", "s"):
            if len(word) > len(ending) + 1 and word.lower().endswith(ending):
                stem = self.lookup_plain(word[: -len(ending)])
                if stem is not None and (ending != "es" or stem[-1:] in _SIBILANT):
                    return self._with_s(stem)
        return None

    def lookup_plain(self, word: str) -> str | None:
        found = self._entries.get(word)
        if found is None and not word.isupper():
            found = self._entries.get(word.lower())
        return found

    def _with_s(self, stem: str) -> str:
        last = stem.rstrip("ˈˌː")[-1:]
        if last in _SIBILANT:
            return stem + self._plural_vowel + "z"
        return stem + ("s" if last in _VOICELESS else "z")


@functools.cache
def load_lexicon(language: str) -> Lexicon:
    """The merged gold + silver lexicon of ``language`` (gold wins); loaded once per process."""
    gold, silver = _FILES[language]
    entries = _load(silver)
    entries.update(_load(gold))
    return Lexicon(language, entries)
