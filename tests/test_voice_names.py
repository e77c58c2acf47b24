"""What a voice's name says: language, family, gender; the blend grammar and its language."""

from __future__ import annotations

import pytest

from realtime.errors import VoiceError
from realtime.voice_names import blend_language, parse_blend, voice_info


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
