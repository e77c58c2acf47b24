"""The streaming MP3 encoder, checked by decoding its output with libsndfile (soundfile)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from realtime.codecs.mp3 import Mp3Stream
from realtime.errors import ConfigError, InputError
from tests.codecs.helpers import speech_like, split

RATE = 24000
# MP3 decoders give back the encoder's delay and the last frame's padding (no Xing tag says
# how much to trim): at most two 576-sample granules and LAME's 529-sample delay, and more.
SLACK = 2 * 576 + 576 + 529


def sine(freq: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def encode(pieces: list[np.ndarray]) -> tuple[bytes, list[bytes]]:
    stream = Mp3Stream(RATE)
    out = [stream.push(p) for p in pieces]
    out.append(stream.finish())
    return b"".join(out), out


def test_a_sine_comes_back_at_its_frequency_and_length() -> None:
    data, _ = encode([sine(440.0, 2.0)])
    assert data[:2] == b"\xff\xf3"  # frame sync; MPEG-2 Layer III (the 24 kHz family)
    out, rate = decode(data)
    assert rate == RATE and out.ndim == 1
    assert 2 * RATE <= len(out) <= 2 * RATE + SLACK
    middle = out[RATE // 2:RATE // 2 + RATE]  # one second, away from the edges
    spectrum = np.abs(np.fft.rfft(middle))
    assert abs(np.argmax(spectrum) * RATE / len(middle) - 440.0) <= 1.0
    assert 0.4 < np.max(np.abs(middle)) < 0.6  # the amplitude survives


def test_constant_bitrate_48k() -> None:
    """CBR: 48 kbit/s for 2 s is about 12 kB (what the docs promise for bandwidth)."""
    data, _ = encode([sine(300.0, 2.0)])
    assert 0.95 * 12_000 <= len(data) <= 12_000 + 2 * 144 + 576


def test_pieces_make_one_decodable_stream_as_they_come() -> None:
    signal = speech_like(1.5)
    pieces = split(signal, [2400, 37, 4800, 961, 12000])
    data, outs = encode(pieces)
    assert sum(1 for o in outs[:-1] if o) >= 3  # bytes come out along the way, not at the end
    assert len(outs[-1]) < len(data) / 2
    whole, _ = encode([signal])
    assert data == whole  # LAME's output does not depend on how the input was cut
    out, rate = decode(data)
    assert rate == RATE and len(signal) <= len(out) <= len(signal) + SLACK


def test_edges() -> None:
    stream = Mp3Stream(RATE)
    assert stream.push(np.zeros(0, np.float32)) == b""
    assert stream.finish() == b""  # nothing pushed: an empty stream
    assert stream.finish() == b""
    with pytest.raises(InputError, match="finished"):
        stream.push(sine(100.0, 0.1))
    with pytest.raises(InputError, match="mono"):
        Mp3Stream(RATE).push(np.zeros((10, 2), np.float32))
    with pytest.raises(ConfigError, match="44100"):
        Mp3Stream(44100)
    with pytest.raises(ConfigError, match="kbit/s; got 50"):
        Mp3Stream(RATE, bitrate_kbps=50)
