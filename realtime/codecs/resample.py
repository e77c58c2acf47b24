"""Streaming resampling with soxr: chunk by chunk, equal to resampling the whole stream at once.

soxr compensates its filter delay, so the first output sample is time zero; it holds back a few
milliseconds of input until more arrives or the stream is flushed.
"""

from __future__ import annotations

import numpy as np
import soxr

_EMPTY = np.zeros(0, dtype=np.float32)


class StreamResampler:
    """Mono float32 resampler: ``push`` chunks, ``flush`` at the end of a stream, ``reset`` on
    cancel. With equal rates it passes samples through untouched."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, "float32", quality)

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x)

    def flush(self) -> np.ndarray:
        """The held-back tail; the resampler is then ready for a new stream."""
        if self._stream is None:
            return _EMPTY
        tail = self._stream.resample_chunk(_EMPTY, last=True)
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Drop whatever is held back (a cancel)."""
        if self._stream is not None:
            self._stream.clear()


def resample(samples: np.ndarray, in_rate: int, out_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample a whole signal at once (the reference the streaming path must match)."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if in_rate == out_rate:
        return x
    return np.asarray(soxr.resample(x, in_rate, out_rate, quality), dtype=np.float32)
