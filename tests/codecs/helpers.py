"""Shared test helpers: a speech-like signal, chunked pushes, SNR with a small lag search."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from realtime.codecs.bench import speech_like
from realtime.codecs.encoder import Frame, StreamEncoder

__all__ = ["best_snr_db", "encode_chunked", "speech_like", "split"]


def split(samples: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Cut ``samples`` at the cumulative ``sizes`` (cycled), the rest in the last piece."""
    pieces, start, i = [], 0, 0
    while start < len(samples):
        size = max(1, sizes[i % len(sizes)]) if sizes else len(samples)
        pieces.append(samples[start:start + size])
        start += size
        i += 1
    return pieces


def encode_chunked(encoder: StreamEncoder, pieces: Sequence[np.ndarray]) -> list[Frame]:
    frames: list[Frame] = []
    for piece in pieces:
        frames += encoder.push(piece)
    return frames + encoder.flush()


def best_snr_db(ref: np.ndarray, out: np.ndarray, max_lag: int = 4, edge: int = 64) -> float:
    """SNR of ``out`` against ``ref`` (dB), at the best alignment within ``max_lag`` samples."""
    n = min(len(ref), len(out)) - 2 * edge
    best = -np.inf
    for lag in range(-max_lag, max_lag + 1):
        r = ref[edge:edge + n]
        o = out[edge + lag:edge + lag + n]
        if len(o) < n:
            continue
        best = max(best, 10 * np.log10(np.sum(r**2) / max(np.sum((r - o) ** 2), 1e-20)))
    return float(best)
