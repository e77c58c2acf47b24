"""G2P: misaki lexicons, espeak-ng fallback, overrides, inline phonemes, phoneme validation."""

from __future__ import annotations

import threading

import pytest

from realtime.errors import InputError
from realtime.text.g2p import vocab_symbols
from realtime.text.lexicon import _reading, load_lexicon
from realtime.text.normalize import SpokenWord, normalize
from realtime.text.phonemes import validate_phonemes
from realtime.text.phonemize import Phonemizer


@pytest.fixture(scope="module")
def us() -> Phonemizer:
    return Phonemizer("en-us")


@pytest.fixture(scope="module")
def gb() -> Phonemizer:
    return Phonemizer("en-gb")


def test_lexicon_entry_formats() -> None:
    assert _reading("kˈæt") == "kˈæt"
    assert _reading({"DEFAULT": "ɹˈid", "VBD": "ɹˈɛd"}) == "ɹˈid"
    assert _reading({"NOUN": None, "VERB": "ˈæbz"}) == "ˈæbz"
    assert _reading({"NOUN": None}) is None and _reading(None) is None


def test_lexicon_lookups() -> None:
    lex = load_lexicon("en-us")
    assert len(lex) > 150_000
    assert lex.lookup("cat") == "kˈæt"
    assert lex.lookup("Cat") == "kˈæt"  # capitalised at a sentence start
    assert lex.lookup("read") == "ɹˈid"  # a POS-keyed entry: DEFAULT
    assert lex.lookup("cat's") == "kˈæts"  # possessive from the stem
    assert lex.lookup("boxes") == "bˈɑksᵻz"
    assert lex.lookup("zzqx") is None


def test_words_from_lexicon_and_espeak(us: Phonemizer, gb: Phonemizer) -> None:
    assert us.word("hello") == "həlˈO"
    assert gb.word("hello") == "həlˈQ"
    assert us.word("FBI") == "ˌɛfbˌiˈI"  # an acronym not in the lexicon is spelled
    assert us.word("APIs").endswith("z") and "ˈI" in us.word("APIs")
    unknown = us.word("Zorbleflax")  # not in any lexicon: espeak-ng
    assert unknown and set(unknown) <= vocab_symbols()


def test_the_before_vowels(us: Phonemizer) -> None:
    out = us.phonemize(normalize("the owl and the cat")).phonemes
    assert out.startswith("ði ") and " ðə kˈæt" in out


def test_phoneme_spans_cover_each_word(us: Phonemizer) -> None:
    words = normalize("Hello, world! It costs $4.")
    ph = us.phonemize(words)
    assert ph.phonemes == "həlˈO, wˈɜɹld! ɪt kˈɔsts fˈɔɹ dˈɑləɹz."
    got = [ph.phonemes[a:b] for a, b in ph.spans]
    assert got == ["həlˈO", "wˈɜɹld", "ɪt", "kˈɔsts", "fˈɔɹ", "dˈɑləɹz"]


@pytest.mark.parametrize("language", ["en-us", "en-gb"])
def test_output_is_in_the_vocab(language: str) -> None:
    text = ("Dr. O'Brien's 3 APIs cost $4.50 on 3/14 at 10:30am; J. R. R. Tolkien "
            "e-mailed help@example.com about https://x.io/docs, 15% & 5 km.")
    out = Phonemizer(language).phonemize(normalize(text, language)).phonemes
    assert set(out) <= vocab_symbols()


def test_session_lexicon_override(us: Phonemizer) -> None:
    custom = us.with_overrides({"Kokoro": "kˈOkəɹO", "tomato": "təmˈɑtO"})
    assert custom.word("Kokoro") == "kˈOkəɹO"
    assert custom.word("kokoro") == "kˈOkəɹO"  # lower-case key match
    assert custom.word("tomato") == "təmˈɑtO"
    assert us.word("tomato") != "təmˈɑtO"  # the shared one is untouched
    with pytest.raises(InputError, match="U\\+0067"):
        us.with_overrides({"good": "good"})  # ASCII g is not Kokoro's ɡ


def test_inline_phonemes_win(us: Phonemizer) -> None:
    ph = us.phonemize(normalize("Say [Kokoro](/kˈOkəɹO/) now."))
    assert ph.phonemes == "sˈA kˈOkəɹO nˈW."
    bad = us.phonemize(normalize("Say [cat](/k#t/) now."))  # invalid: the word is read
    assert bad.phonemes == "sˈA kˈæt nˈW."


def test_forced_words_without_text() -> None:
    ph = Phonemizer("en-us").phonemize([SpokenWord("x", 0, 1, phonemes="ɛks")])
    assert ph.phonemes == "ɛks"


def test_validate_phonemes() -> None:
    assert validate_phonemes(" həlˈO  wˈɜɹld. ") == "həlˈO wˈɜɹld."
    assert validate_phonemes("") == ""
    with pytest.raises(InputError) as info:
        validate_phonemes("hɛlo 7 ǃ")
    assert "'7'" in info.value.reason and "U+01C3" in info.value.reason
    assert info.value.code == "bad_input"


def test_espeak_only_choice() -> None:
    espeak = Phonemizer("en-us", use_lexicon=False)
    assert espeak.word("hello") and set(espeak.word("hello")) <= vocab_symbols()


def test_shared_between_threads_matches_serial(us: Phonemizer) -> None:
    texts = ["Dr. Smith paid $4.50 on 3/14.", "Zorbleflax and Quuxington met 3 APIs.",
             "The quick brown fox jumps over the lazy dog."]
    fresh = Phonemizer("en-us")
    expected = [fresh.phonemize(normalize(t)).phonemes for t in texts]
    errors: list[BaseException] = []
    results: list[list[str]] = [[] for _ in range(4)]
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        try:
            g2p = Phonemizer("en-us") if n % 2 else us
            barrier.wait()
            for i in range(15):
                results[n].append(g2p.phonemize(normalize(texts[i % 3])).phonemes)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for got in results:
        assert got == [expected[i % 3] for i in range(15)]
