"""Word timestamps from per-token durations."""

from __future__ import annotations

import pytest

from realtime.errors import InputError
from realtime.session.alignment import word_timings
from realtime.session.scheduler import TextScheduler
from realtime.text.phonemize import Phonemizer

PHONEMIZER = Phonemizer("en-us")


def test_words_get_times_and_source_names() -> None:
    scheduler = TextScheduler(PHONEMIZER)
    (chunk,) = scheduler.push("Paid $4.50 now", 0.0) + scheduler.end(0.0)
    durations = [3] + [2] * len(chunk.phonemes) + [4]  # BOS, phonemes, EOS
    timings = word_timings(chunk, durations, offset_ms=1000.0)
    assert [t.word for t in timings] == ["Paid", "$4.50", "now"]
    paid = chunk.words[0]
    assert timings[0].start_ms == 1000.0 + 3 * 25.0
    assert timings[0].end_ms == 1000.0 + (3 + 2 * paid.ph_end) * 25.0
    assert timings[1].start_ms < timings[1].end_ms <= timings[2].start_ms
    assert (timings[1].char_start, timings[1].char_end) == (5, 10)


def test_phoneme_input_words_and_bad_lengths() -> None:
    scheduler = TextScheduler(PHONEMIZER)
    (chunk,) = scheduler.push_phonemes("həlˈO wˈɜɹld", 0.0)
    timings = word_timings(chunk, [1] * (len(chunk.phonemes) + 2))
    assert [t.word for t in timings] == ["həlˈO", "wˈɜɹld"]
    with pytest.raises(InputError):
        word_timings(chunk, [1, 2, 3])
