from __future__ import annotations

import io
import struct
import wave

import numpy as np

from realtime.codecs import make_encoder
from realtime.codecs.wav import STREAMING_SIZE, wav_bytes, wav_header
from tests.codecs.helpers import encode_chunked, speech_like

SIGNAL = speech_like(0.3)


def test_whole_wav_reads_back() -> None:
    data = wav_bytes(SIGNAL, 24000)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        assert w.getnframes() == len(SIGNAL)
        pcm = np.frombuffer(w.readframes(len(SIGNAL)), "<i2")
    np.testing.assert_allclose(pcm / 32767, SIGNAL, atol=1 / 32767)


def test_streaming_header_then_encoder_frames() -> None:
    header = wav_header(16000)
    assert len(header) == 44 and header[:4] == b"RIFF" and header[36:40] == b"data"
    assert struct.unpack("<I", header[4:8])[0] == STREAMING_SIZE
    assert struct.unpack("<I", header[40:44])[0] == STREAMING_SIZE
    frames = encode_chunked(make_encoder("pcm16", 16000, 20), [SIGNAL])
    body = b"".join(f.data for f in frames)
    # A player reading the stream: the header's format applies to the frames that follow.
    fixed = wav_header(16000, len(body) // 2) + body
    with wave.open(io.BytesIO(fixed)) as w:
        assert w.getframerate() == 16000 and w.getnframes() == len(body) // 2
    assert fixed[:44] == wav_header(16000, len(body) // 2)
