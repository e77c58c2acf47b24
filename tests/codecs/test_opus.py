from __future__ import annotations

import numpy as np
import opuslib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.codecs import SAMPLE_RATES, Frame, StreamEncoder, make_encoder
from realtime.codecs.resample import resample
from tests.codecs.helpers import best_snr_db, encode_chunked, speech_like, split

SIGNAL = speech_like(1.0)


def decode(encoder: StreamEncoder, frames: list[Frame]) -> np.ndarray:
    """libopus's decoder at the codec rate, the encoder's lookahead removed."""
    decoder = opuslib.Decoder(encoder.config.sample_rate, 1)
    pcm = b"".join(decoder.decode(f.data, encoder.config.frame_samples) for f in frames)
    return (np.frombuffer(pcm, "<i2").astype(np.float32) / 32768)[encoder.lookahead:]


@pytest.mark.parametrize("rate", SAMPLE_RATES["opus"])
@pytest.mark.parametrize("frame_ms", [10, 20, 40, 60])
def test_round_trip_voip_default(rate: int, frame_ms: int) -> None:
    encoder = make_encoder("opus", rate, frame_ms)
    frames = encode_chunked(encoder, split(SIGNAL, [1000, 333]))
    ref = resample(SIGNAL, 24000, rate)
    out = decode(encoder, frames)
    # Flush pads the lookahead too: every input sample comes out, plus under one frame.
    assert len(ref) <= len(out) < len(ref) + encoder.config.frame_samples
    assert sum(f.valid_samples for f in frames) == len(ref)
    assert all(0 < len(f.data) <= 1275 for f in frames)
    # voip mode shapes noise for the ear, so the waveform SNR stays modest (measured 7-12 dB).
    assert best_snr_db(ref, out[: len(ref)]) > 6.0


@pytest.mark.parametrize("rate", [8000, 48000])
def test_bitrate_and_application_apply(rate: int) -> None:
    ref = resample(SIGNAL, 24000, rate)
    sizes = {}
    for bitrate in (12000, 64000):
        encoder = make_encoder("opus", rate, 20, bitrate=bitrate, application="audio")
        frames = encode_chunked(encoder, [SIGNAL])
        sizes[bitrate] = sum(len(f.data) for f in frames)
        snr = best_snr_db(ref, decode(encoder, frames)[: len(ref)])
    assert sizes[12000] < sizes[64000] * 0.5
    assert snr > 20.0  # the 64 kbit/s audio-mode stream follows the waveform closely


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=8))
def test_chunking_does_not_change_packets(sizes: list[int]) -> None:
    whole = encode_chunked(make_encoder("opus", 16000, 20), [SIGNAL[:12000]])
    chunked = encode_chunked(make_encoder("opus", 16000, 20), split(SIGNAL[:12000], sizes))
    assert [f.data for f in chunked] == [f.data for f in whole]


def test_reset_gives_a_fresh_stream_and_keeps_settings() -> None:
    encoder = make_encoder("opus", 24000, 20, bitrate=16000, complexity=5)
    encoder.push(SIGNAL)
    encoder.reset()
    again = encode_chunked(encoder, [SIGNAL[:9600]])
    fresh = encode_chunked(make_encoder("opus", 24000, 20, bitrate=16000, complexity=5),
                           [SIGNAL[:9600]])
    assert [f.data for f in again] == [f.data for f in fresh]
