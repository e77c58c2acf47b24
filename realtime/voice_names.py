"""What a voice's name says, and the blend grammar: facts shared by every layer, no torch.

Kokoro names its voice packs ``<language><gender>_<name>``: ``af_heart`` is an American English
female voice, ``em_alex`` a Spanish male one. The language letter also picks the G2P that text
for the voice goes through, unless a context asks for another language. Japanese and Mandarin
voices have no G2P of their own here: they read English with the American G2P.

A blend ``af_heart(2)+am_michael(1)`` is the weighted mean of packs (weights normalised; a name
without a weight counts 1). Its language is that of its heaviest voice (the first on a tie).

OpenAI's voice names (``alloy``, ``ash``, ...) are what OpenAI's TTS clients send by default; the
OpenAI-compatible speech route speaks them with a Kokoro voice from ``OPENAI_VOICES`` (overridden
or extended by ``ServerConfig.openai_voices``). The WebSocket protocol speaks Kokoro's names only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from realtime.errors import ConfigError, VoiceError

__all__ = ["DEFAULT_LANGUAGE", "FAMILIES", "OPENAI_VOICES", "VoiceInfo", "blend_language",
           "openai_voices", "parse_blend", "voice_info"]

DEFAULT_LANGUAGE = "en-us"  # the G2P of a voice whose name follows no known scheme

# language letter -> (family shown to people, the G2P language its text goes through)
FAMILIES: dict[str, tuple[str, str]] = {
    "a": ("American English", "en-us"),
    "b": ("British English", "en-gb"),
    "e": ("Spanish", "es"),
    "f": ("French", "fr-fr"),
    "h": ("Hindi", "hi"),
    "i": ("Italian", "it"),
    "p": ("Brazilian Portuguese", "pt-br"),
    "j": ("Japanese", "en-us"),
    "z": ("Mandarin Chinese", "en-us"),
}
_GENDERS = {"f": "female", "m": "male"}

# OpenAI's 13 voice names -> a voice of the embedded model: five share their name with a Kokoro
# pack; the others get a voice of the same gender (fable and ballad British ones, as OpenAI's
# sound). A table of names, not of the model: the server offers only the entries whose voice the
# loaded model has.
OPENAI_VOICES: dict[str, str] = {
    "alloy": "af_alloy",
    "ash": "am_michael",
    "ballad": "bm_george",
    "cedar": "am_adam",
    "coral": "af_heart",
    "echo": "am_echo",
    "fable": "bm_fable",
    "marin": "af_kore",
    "nova": "af_nova",
    "onyx": "am_onyx",
    "sage": "af_sarah",
    "shimmer": "af_bella",
    "verse": "am_puck",
}
_ALIAS = re.compile(r"^[A-Za-z0-9_.\-]+$")
_NAME = re.compile(r"^([a-z])([fm])_[a-z0-9_]+$")
_TERM = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\(\s*([0-9]*\.?[0-9]+)\s*\))?\s*$")


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A voice as clients see it (``ready.voice_info``, ``/v1/voices``, ``realtime voices``)."""

    name: str
    language: str  # the G2P its text goes through by default (en-us, en-gb, es, ...)
    family: str  # e.g. "American English", "Japanese"; "Other" for names outside the scheme
    gender: str  # female, male, or unknown

    def as_wire(self) -> dict[str, str]:
        return {"name": self.name, "language": self.language, "family": self.family,
                "gender": self.gender}


def voice_info(name: str) -> VoiceInfo:
    """Language, family and gender of a voice, read from its name."""
    m = _NAME.match(name)
    if m is None or m.group(1) not in FAMILIES:
        return VoiceInfo(name, DEFAULT_LANGUAGE, "Other", "unknown")
    family, language = FAMILIES[m.group(1)]
    return VoiceInfo(name, language, family, _GENDERS[m.group(2)])


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """``"af_heart(2)+am_michael"`` -> ``[("af_heart", 2.0), ("am_michael", 1.0)]``."""
    if not isinstance(spec, str) or not spec.strip():
        raise VoiceError("voice must be a non-empty name or a blend such as "
                         "'af_heart(2)+am_michael(1)'")
    terms: list[tuple[str, float]] = []
    for part in spec.split("+"):
        m = _TERM.match(part)
        if m is None:
            raise VoiceError(f"cannot parse voice term {part.strip()[:64]!r} in {spec[:128]!r}; "
                             "write names joined by '+', each with an optional positive weight, "
                             "e.g. a(2)+b(1)")
        weight = float(m.group(2)) if m.group(2) is not None else 1.0
        if weight <= 0:
            raise VoiceError(f"voice weight must be positive in {spec[:128]!r}")
        terms.append((m.group(1), weight))
    return terms


def blend_language(spec: str) -> str:
    """The G2P language of a voice or blend: that of its heaviest voice (first on a tie)."""
    terms = parse_blend(spec)
    heaviest = max(terms, key=lambda t: t[1])  # max keeps the first of equal weights
    return voice_info(heaviest[0]).language


def openai_voices(entries: Iterable[str] = ()) -> dict[str, str]:
    """``OPENAI_VOICES`` with ``name=voice`` entries over it (each adds a name or replaces its
    voice; the voice may be a blend). ``ConfigError`` names an entry that is not of that form."""
    table = dict(OPENAI_VOICES)
    for entry in entries:
        name, sep, voice = str(entry).partition("=")
        name, voice = name.strip(), voice.strip()
        if not sep or not _ALIAS.match(name):
            raise ConfigError(f"openai_voices entry {entry!r} is not name=voice "
                              "(e.g. REALTIME_OPENAI_VOICES=alloy=af_bella,nova=af_sky)")
        try:
            parse_blend(voice)
        except VoiceError as exc:
            raise ConfigError(f"openai_voices entry {entry!r}: {exc.reason}") from exc
        table[name] = voice
    return table
