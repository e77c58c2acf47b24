"""Normalisation: what LLMs write -> spoken words, each mapped back to its characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.text.normalize import normalize, spoken_text

CASES = [
    # cardinals, ordinals, decimals, negatives
    ("I have 3 cats and 1,200 fish.", "I have three cats and one thousand two hundred fish"),
    ("She came 2nd, he came 21st.", "She came second he came twenty first"),
    ("Pi is 3.14 and -2 is negative.", "Pi is three point one four and minus two is negative"),
    ("It fell to -5 degrees.", "It fell to minus five degrees"),
    ("A million is 1000000.", "A million is one million"),
    # currency
    ("Dr. Smith paid $4.50 on 3/14.",
     "doctor Smith paid four dollars and fifty cents on March fourteenth"),
    ("It costs €1,200 or £3.", "It costs one thousand two hundred euros or three pounds"),
    ("Just $1 or $0.99 or $1.01.",
     "Just one dollar or ninety nine cents or one dollar and one cent"),
    ("Raised $1.5M and $2 billion.",
     "Raised one point five million dollars and two billion dollars"),
    # percentages, years, decades, dates, times
    ("Up 15% or 2.5 %.", "Up fifteen percent or two point five percent"),
    ("In 1999 and 2024, the 1990s.",
     "In nineteen ninety nine and twenty twenty four the nineteen nineties"),
    ("Born 2005.", "Born two thousand and five"),
    ("On March 14th, 2024 and 2024-03-15.",
     "On March fourteenth twenty twenty four and March fifteenth twenty twenty four"),
    ("Due 14 March 2024.", "Due the fourteenth of March twenty twenty four"),
    ("At 10:30am, 3pm, 7:05 and 9:00.",
     "At ten thirty A M three P M seven oh five and nine o'clock"),
    ("Add 1/2 cup, pages 10-20.", "Add one half cup pages ten to twenty"),
    ("On 31/12/2024 and 12/25.",
     "On December thirty first twenty twenty four and December twenty fifth"),
    # phone numbers, units
    ("Call 555-123-4567 now.",
     "Call five five five one two three four five six seven now"),
    ("Call +1 (555) 123-4567.",
     "Call plus one five five five one two three four five six seven"),
    ("Ran 5 km, saved 3 GB, 1 kg, 2.5x.",
     "Ran five kilometers saved three gigabytes one kilogram two point five times"),
    # abbreviations, titles, initials, acronyms
    ("Mr. and Mrs. Jones met Prof. Lee.", "mister and missus Jones met professor Lee"),
    ("St. Paul lives on Main St. today.", "saint Paul lives on Main street today"),
    ("Fruit, e.g. apples, i.e. food, etc.",
     "Fruit for example apples that is food et cetera"),
    ("J. R. R. Tolkien, U.S. author.", "J R R Tolkien U S author"),
    ("The FBI and NASA use APIs.", "The FBI and NASA use APIs"),
    ("No. 5 is here.", "number five is here"),
    # URLs, e-mail, symbols
    ("See https://example.com/docs.", "See example dot com slash docs"),
    ("Mail john.smith@example.com or visit www.google.com.",
     "Mail john dot smith at example dot com or visit W W W dot google dot com"),
    ("Salt & pepper + oil @ home.", "Salt and pepper plus oil at home"),
    # Markdown and emoji
    ("**Bold** and *italic* and __under__.", "Bold and italic and under"),
    ("# Title\n- one item\n- two items\n1. first", "Title one item two items first"),
    ("Read [the docs](https://x.io/a) and `code`.", "Read the docs and code"),
    ("Great job 🎉👍!", "Great job"),
    ("![logo](http://x.io/l.png) Hello", "Hello"),
]


@pytest.mark.parametrize(("text", "spoken"), CASES)
def test_spoken_words(text: str, spoken: str) -> None:
    assert spoken_text(normalize(text)) == spoken


@pytest.mark.parametrize(("text", "spoken"), CASES)
def test_spans_point_at_the_source(text: str, spoken: str) -> None:
    words = normalize(text)
    previous = 0
    for w in words:
        assert 0 <= w.start < w.end <= len(text)
        assert w.start >= previous or w.start == words[words.index(w) - 1].start
        previous = w.start
        assert text[w.start:w.end].strip() == text[w.start:w.end]


def test_span_examples() -> None:
    text = "Dr. Smith paid $4.50 on 3/14."
    words = normalize(text)
    pairs = [(w.text, text[w.start:w.end]) for w in words]
    assert pairs[:3] == [("doctor", "Dr."), ("Smith", "Smith"), ("paid", "paid")]
    assert {src for spoken, src in pairs[3:8]} == {"$4.50"}
    assert pairs[-2:] == [("March", "3/14"), ("fourteenth", "3/14")]
    link = "See [the docs](https://x.io) now"
    assert [link[w.start:w.end] for w in normalize(link)] == ["See", "the", "docs", "now"]


def test_base_offsets_shift_spans() -> None:
    assert [(w.start, w.end) for w in normalize("hi you", base=100)] == [(100, 102), (103, 106)]


def test_punctuation_is_kept_for_prosody() -> None:
    words = normalize("Well... yes, I think so -- maybe? No! Fine; ok: go.")
    assert [w.punct for w in words] == ["…", ",", "", "", "—", "?", "!", ";", ":", "."]


def test_line_breaks_end_items() -> None:
    words = normalize("- milk\n- eggs")
    assert [(w.text, w.punct) for w in words] == [("milk", "."), ("eggs", "")]


def test_inline_phonemes() -> None:
    text = "Say [Kokoro](/kˈOkəɹO/) now."
    words = normalize(text)
    assert words[1].text == "Kokoro" and words[1].phonemes == "kˈOkəɹO"
    assert text[words[1].start:words[1].end] == "[Kokoro](/kˈOkəɹO/)"


def test_british_dates_and_units() -> None:
    assert spoken_text(normalize("On 14/3 we ran 5 km.", "en-gb")) == (
        "On the fourteenth of March we ran five kilometres")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .,!?$€%:/-@#*_[]()`\n0123456789AZé😀")),
               max_size=60))
def test_any_text_normalises_with_valid_spans(text: str) -> None:
    for w in normalize(text):
        assert w.text and " " not in w.text
        assert 0 <= w.start <= w.end <= len(text)
