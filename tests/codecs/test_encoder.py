from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.codecs import CODECS, FRAME_MS, SAMPLE_RATES, Frame, make_encoder
from realtime.codecs.g711 import alaw_decode, mulaw_decode
from realtime.codecs.resample import resample
from realtime.errors import ConfigError, InputError, RealtimeError
from tests.codecs.helpers import best_snr_db, encode_chunked, speech_like, split

SIGNAL = speech_like(1.0)
PCM_CASES = [("pcm16", r) for r in SAMPLE_RATES["pcm16"]] + [("mulaw", 8000), ("alaw", 8000)]
DECODE = {
    "pcm16": lambda b: np.frombuffer(b, "<i2"),
    "mulaw": mulaw_decode,
    "alaw": alaw_decode,
}


def decode(codec: str, frames: list[Frame]) -> np.ndarray:
    return np.concatenate([DECODE[codec](f.data) for f in frames]).astype(np.float32) / 32767


@pytest.mark.parametrize(
    ("codec", "rate", "frame_ms", "size"),
    [
        ("mulaw", 8000, 20, 160), ("alaw", 8000, 20, 160), ("mulaw", 8000, 10, 80),
        ("pcm16", 8000, 20, 320), ("pcm16", 16000, 20, 640), ("pcm16", 22050, 20, 882),
        ("pcm16", 24000, 20, 960), ("pcm16", 44100, 10, 882), ("pcm16", 48000, 20, 1920),
        ("pcm16", 48000, 60, 5760),
    ],
)
def test_exact_frame_byte_sizes(codec: str, rate: int, frame_ms: int, size: int) -> None:
    frames = encode_chunked(make_encoder(codec, rate, frame_ms), split(SIGNAL, [1234]))
    assert {len(f.data) for f in frames} == {size}
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(f.duration_ms == frame_ms and f.offset_ms == f.index * frame_ms for f in frames)


@pytest.mark.parametrize(("codec", "rate"), PCM_CASES)
def test_round_trip_snr_and_length(codec: str, rate: int) -> None:
    encoder = make_encoder(codec, rate, 20)
    frames = encode_chunked(encoder, split(SIGNAL, [2400]))
    ref = resample(SIGNAL, 24000, rate)
    out = decode(codec, frames)
    frame = encoder.config.frame_samples
    assert len(out) == -(-len(ref) // frame) * frame  # the last frame padded, nothing more
    assert sum(f.valid_samples for f in frames) == len(ref)
    assert np.all(out[len(ref):] == 0) if codec == "pcm16" else True
    snr = best_snr_db(ref, out[: len(ref)], max_lag=0)
    assert snr > (60 if codec == "pcm16" else 30), snr


@settings(max_examples=25, deadline=None)
@given(
    case=st.sampled_from(PCM_CASES),
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=10),
)
def test_chunked_output_equals_whole(case: tuple[str, int], sizes: list[int]) -> None:
    codec, rate = case
    whole = encode_chunked(make_encoder(codec, rate, 20), [SIGNAL])
    chunked = encode_chunked(make_encoder(codec, rate, 20), split(SIGNAL, sizes))
    assert [f.data for f in chunked] == [f.data for f in whole]


def test_flush_ends_a_stream_and_the_encoder_goes_on() -> None:
    encoder = make_encoder("pcm16", 24000, 20)
    assert encoder.push(np.full(300, 0.25, np.float32)) == []
    frames = encoder.flush()
    assert [(f.index, f.valid_samples) for f in frames] == [(0, 300)]
    assert encoder.flush() == []  # nothing new: no empty frame
    frames = encoder.push(np.full(480, 0.25, np.float32))
    assert [(f.index, f.valid_samples) for f in frames] == [(1, 480)]
    assert encoder.flush() == []


def test_flush_pads_the_partial_frame_with_silence() -> None:
    encoder = make_encoder("pcm16", 24000, 20)
    frames = encoder.push(np.full(500, 0.5, np.float32)) + encoder.flush()
    pcm = np.frombuffer(b"".join(f.data for f in frames), "<i2")
    assert len(pcm) == 960 and np.all(pcm[:500] == 16384) and np.all(pcm[500:] == 0)
    assert [f.valid_samples for f in frames] == [480, 20]


def test_reset_drops_held_audio_and_restarts() -> None:
    encoder = make_encoder("mulaw", 8000, 20)
    encoder.push(SIGNAL[:1000])
    encoder.reset()
    after = encode_chunked(encoder, [SIGNAL])
    fresh = encode_chunked(make_encoder("mulaw", 8000, 20), [SIGNAL])
    assert [f.data for f in after] == [f.data for f in fresh]
    assert after[0].index == 0


def test_clipping_and_silence() -> None:
    frames = encode_chunked(make_encoder("pcm16", 24000, 10), [np.array([2.0, -2.0, 0.0] * 80)])
    pcm = np.frombuffer(frames[0].data, "<i2")
    assert pcm[:3].tolist() == [32767, -32767, 0]
    mu = encode_chunked(make_encoder("mulaw", 8000, 20), [np.zeros(480, np.float32)])
    assert mu[0].data == b"\xff" * 160


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("flac", 8000, 20), ["unknown codec", "opus, pcm16, mulaw, alaw"]),
        (("mulaw", 16000, 20), ["mulaw supports sample_rate 8000 Hz", "16000"]),
        (("pcm16", 32000, 20), ["8000, 16000, 22050, 24000, 44100, 48000"]),
        (("opus", 44100, 20), ["8000, 12000, 16000, 24000, 48000"]),
        (("opus", 48000, 30), ["frame_ms 10, 20, 40, 60", "got 30"]),
        (("pcm16", 22050, 10), ["at 22050 Hz supports frame_ms 20, 40"]),
        (("pcm16", 24000, 20.0), ["frame_ms"]),
        (("pcm16", "24000", 20), ["sample_rate"]),
    ],
)
def test_unsupported_values_name_what_is_supported(
    args: tuple[Any, ...], words: list[str]
) -> None:
    with pytest.raises(InputError) as caught:
        make_encoder(*args)
    assert caught.value.code == "bad_input"
    for word in words:
        assert word in caught.value.reason


@pytest.mark.parametrize(
    "opts", [{"bitrate": 100}, {"complexity": 11}, {"application": "music"}, {"input_rate": 0}]
)
def test_bad_opus_settings_are_config_errors(opts: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        make_encoder("opus", 48000, 20, **opts)


def test_non_mono_input_is_refused() -> None:
    with pytest.raises(InputError, match="mono"):
        make_encoder("pcm16", 24000).push(np.zeros((2, 480), np.float32))


def test_every_supported_combination_builds() -> None:
    for codec in CODECS:
        for rate in SAMPLE_RATES[codec]:
            for ms in FRAME_MS[codec]:
                try:
                    encoder = make_encoder(codec, rate, ms)
                except RealtimeError:
                    assert rate * ms % 1000  # only sizes without a whole number of samples
                    continue
                assert encoder.config.frame_samples * 1000 == rate * ms
