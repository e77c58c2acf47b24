"""WAV (RIFF, 16-bit PCM) writing."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> little-endian int16 bytes (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (np.round(clipped * 32767.0)).astype("<i2").tobytes()


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm16(samples))
    return buf.getvalue()


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    path.write_bytes(wav_bytes(samples, sample_rate))
