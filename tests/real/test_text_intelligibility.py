"""Intelligibility of the text front end with the real model: normalise, G2P, schedule, speak,
transcribe offline, and compare the spoken words (both sides normalised the same way)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from realtime.text.normalize import normalize, spoken_text
from realtime.text.numbers import digits
from realtime.text.phonemize import Phonemizer
from tests.real.conftest import Speaker, Transcriber, word_error_rate

pytestmark = pytest.mark.real

SENTENCES = [
    "Dr. Smith paid $4.50 for coffee on 3/14.",
    "The meeting starts at 10:30am on March 14th, 2024.",
    "Our revenue grew 15% to €1,200 last year.",
    "Mr. Jones lives at 221 Baker St. in London.",
    "It costs £3 and weighs about 5 kg.",
    "Call me at 555-123-4567 after 6pm.",
    "**Important:** back up your files every day.",
    "- Buy milk\n- Walk the dog\n- Pay the rent",
    "## Summary\nThe project finished in 1999.",
    "See the [docs](https://example.com/docs) for details.",
    "Send an e-mail to help@example.com today.",
    "The temperature dropped to -5 degrees overnight.",
    "She finished 2nd out of 30 runners.",
    "I downloaded 3 GB in about 10 minutes.",
    "We drove 120 km to see St. Paul's Cathedral.",
    "Use `pip install` and e.g. a virtual environment.",
    "The package weighs 2.5 kg and costs $19.99.",
    "Prof. Brown wrote 3 books between 2010 and 2015.",
    "Tickets are $1.5 million in total, approx. 40% more.",
    "The train leaves at 7:05 and arrives at 9:00.",
    "About 1/2 of the 250 guests arrived before 8pm.",
    "Her flight on 12/25 was delayed by 45 minutes.",
]


# A phone-like run: at least 7 digits, in groups joined by hyphens, dots or spaces.
_DIGIT_RUN = re.compile(r"\d(?:[-. ]?\d){6,}")


def heard_digits(text: str) -> str:
    """Whisper writes a spoken digit string in a grouping of its own ("5-55-1234-567",
    "555-1234567", "5 5 5 ..."), which then reads as other numbers. A phone-like run becomes its
    digits, one word each, as our normaliser speaks it; insertions and drops still count."""
    return _DIGIT_RUN.sub(lambda m: " ".join(digits(m.group())), text)


@pytest.mark.parametrize("use_lexicon", [True, False], ids=["lexicon+espeak", "espeak-only"])
def test_normalised_text_is_intelligible(served: Speaker, transcribe: Transcriber,
                                         tmp_path: Path, use_lexicon: bool) -> None:
    phonemizer = Phonemizer("en-us", use_lexicon=use_lexicon)
    references, hypotheses = [], []
    started = time.perf_counter()
    for n, text in enumerate(SENTENCES):
        audio = served.text(phonemizer, text)
        heard = transcribe(audio, tmp_path, f"s{n}")
        references.append(spoken_text(normalize(text)))
        hypotheses.append(spoken_text(normalize(heard_digits(heard))))
    wer = word_error_rate(references, hypotheses)
    label = "lexicon+espeak" if use_lexicon else "espeak-only"
    print(f"\n{label} ({served.dtype}): WER {wer:.3f} over {len(SENTENCES)} sentences "
          f"({time.perf_counter() - started:.0f} s)")
    for ref, hyp in zip(references, hypotheses, strict=True):
        if word_error_rate([ref], [hyp]) > 0:
            print(f"  ref: {ref}\n  hyp: {hyp}")
    assert wer <= (0.05 if use_lexicon else 0.08)


def test_heard_digit_runs_are_spelled_digit_by_digit() -> None:
    for heard in ("Call me at 5-55-1234-567 after 6 p.m.", "Call me at 555-1234567 after 6 p.m.",
                  "Call me at 5 5 5 1 2 3 4 5 6 7 after 6 p.m."):
        assert heard_digits(heard) == ("Call me at five five five one two three four five six "
                                       "seven after 6 p.m.")
    assert heard_digits("In 2024 it was 120 km, $19.99.") == "In 2024 it was 120 km, $19.99."
