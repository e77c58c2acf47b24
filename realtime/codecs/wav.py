"""WAV (RIFF, 16-bit PCM mono): whole files, and a header for HTTP streaming."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# The size fields of a WAV streamed before its length is known: players read to the end.
STREAMING_SIZE = 0xFFFFFFFF


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 (clipped, rounded)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return np.round(clipped * 32767.0).astype(np.int16)


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> little-endian int16 bytes (clipped)."""
    return to_int16(samples).astype("<i2").tobytes()


def wav_header(sample_rate: int, num_samples: int | None = None) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV.

    ``num_samples=None`` writes the streaming form (sizes 0xFFFFFFFF), for an HTTP response whose
    length is not known when it starts.
    """
    if num_samples is None:
        data_size = riff_size = STREAMING_SIZE
    else:
        data_size = 2 * num_samples
        riff_size = 36 + data_size
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, 2 * sample_rate, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", data_size)
    )


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    data = pcm16(samples)
    return wav_header(sample_rate, len(data) // 2) + data


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    path.write_bytes(wav_bytes(samples, sample_rate))
