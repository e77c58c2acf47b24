from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.codecs.resample import StreamResampler, resample
from tests.codecs.helpers import speech_like, split

RATES = [8000, 12000, 16000, 22050, 24000, 44100, 48000]
SIGNAL = speech_like(0.5)


def stream(resampler: StreamResampler, pieces: list[np.ndarray]) -> np.ndarray:
    out = [resampler.push(p) for p in pieces] + [resampler.flush()]
    return np.concatenate(out)


@pytest.mark.parametrize("rate", RATES)
def test_whole_stream_length_and_content(rate: int) -> None:
    whole = resample(SIGNAL, 24000, rate)
    assert abs(len(whole) - len(SIGNAL) * rate / 24000) <= 1
    chunked = stream(StreamResampler(24000, rate), split(SIGNAL, [480]))
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    rate=st.sampled_from(RATES),
    sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=12),
)
def test_any_chunking_equals_whole(rate: int, sizes: list[int]) -> None:
    whole = resample(SIGNAL, 24000, rate)
    chunked = stream(StreamResampler(24000, rate), split(SIGNAL, sizes))
    assert len(chunked) == len(whole)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_no_click_at_seams() -> None:
    # A pure tone cut into odd chunks: the output's sample-to-sample step never exceeds the
    # tone's own largest step (a seam discontinuity would).
    t = np.arange(24000) / 24000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = stream(StreamResampler(24000, 16000), split(tone, [97, 1, 333, 2048]))
    max_step = 0.5 * 2 * np.pi * 440 / 16000
    assert np.max(np.abs(np.diff(out[50:-50]))) <= max_step * 1.05


def test_flush_readies_a_new_stream_and_reset_drops() -> None:
    r = StreamResampler(24000, 8000)
    first = stream(r, [SIGNAL])
    second = stream(r, [SIGNAL])
    np.testing.assert_array_equal(first, second)
    r.push(SIGNAL[:1000])
    r.reset()
    np.testing.assert_array_equal(stream(r, [SIGNAL]), first)


def test_equal_rates_pass_through() -> None:
    r = StreamResampler(24000, 24000)
    np.testing.assert_array_equal(stream(r, split(SIGNAL, [7])), SIGNAL)
