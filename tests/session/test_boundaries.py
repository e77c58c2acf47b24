"""Where streamed text may be cut: settled sentence, clause and word boundaries."""

from __future__ import annotations

import pytest

from realtime.session.boundaries import Boundary, Kind, find_boundaries, word_cuts

S, C = Kind.SENTENCE, Kind.CLAUSE


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello. World", [(7, S)]),
    ("Hello.", []),  # what follows has not arrived
    ("Hello. ", []),  # the whitespace may go on
    ("Hi! Are you ok?! Yes", [(4, S), (17, S)]),
    ("Dr. Smith", []),
    ("Paid $4.50 today. OK", [(18, S)]),
    ("J. R. R. Tolkien. He", [(18, S)]),
    ("so am I. Then", [(9, S)]),
    ("in the U.S. Then", []),
    ("e.g. this, and that", [(11, C)]),
    ("etc. Then", [(5, S)]),
    ("etc. and", []),
    ("approx. five", []),
    ("Well... I see", [(8, C)]),
    ("Visit example.com. Now", [(19, S)]),
    ("It said \"Stop.\" Then", [(16, S)]),
    ("**Note:** go", [(10, C)]),
    ("one\ntwo", [(4, S)]),
    ("a -- b — c", [(5, C), (9, C)]),
    ("costs 1,200 and 10:30", []),
    ("[a, b](/x/) c, d", [(15, C)]),
    ("`a, b` c, d", [(10, C)]),
])
def test_boundaries(text: str, expected: list[tuple[int, Kind]]) -> None:
    assert find_boundaries(text) == [Boundary(p, k) for p, k in expected]


def test_end_of_input_settles_the_last_boundary() -> None:
    assert find_boundaries("Hello.", final=True) == [Boundary(6, S)]
    assert find_boundaries("Hello. ", final=True) == [Boundary(7, S)]


def test_start_offset() -> None:
    assert find_boundaries("Hi. Yo. Ok", start=4) == [Boundary(8, S)]


def test_word_cuts() -> None:
    assert word_cuts("Hello there my fri") == [6, 12, 15]
    assert word_cuts("Dr. Smith and J. R. R. Tolkien ") == [10, 14, 31]
    assert word_cuts("see [the docs](x) now") == [4, 18]
