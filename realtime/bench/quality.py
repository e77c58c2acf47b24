"""Audio compared the way a listener would: log-mel spectra, blind to phase.

Kokoro's harmonic source integrates F0 into a phase, so a tiny change anywhere before it (float
ordering, half precision, a rounded style vector) shifts the waveform sample by sample while the
sound stays the same. A sample-wise measure calls that a large difference; the mean absolute
difference of log-mel spectra in dB does not. Numpy only: the tests, the benchmarks and the GPU
check share it.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["log_mel", "mel_distance_db"]

N_FFT = 1024
HOP = 256
N_MELS = 80
RANGE_DB = 80.0  # compared within this range below the loudest bin (silence equals silence)


@functools.cache
def _mel_filters(rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular filters on the HTK mel scale, ``[n_mels, n_fft // 2 + 1]``."""
    def mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = hz(np.linspace(mel(np.array(0.0)), mel(np.array(rate / 2)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float64)


def log_mel(audio: np.ndarray, rate: int = 24_000) -> np.ndarray:
    """Log-mel power spectrogram in dB, ``[frames, N_MELS]`` (Hann window, hop 256)."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    frames = 1 + (len(x) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(x[idx] * np.hanning(N_FFT)[None, :], axis=1)) ** 2
    power = spectrum @ _mel_filters(rate).T
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def mel_distance_db(a: np.ndarray, b: np.ndarray, rate: int = 24_000) -> float:
    """Mean absolute log-mel difference in dB; the longer input is cut to the shorter.

    Callers that care about length compare lengths themselves (durations are exact).
    """
    n = min(len(a), len(b))
    if n == 0:
        raise ValueError("cannot compare empty audio")
    ma, mb = log_mel(a[:n], rate), log_mel(b[:n], rate)
    floor = max(float(ma.max()), float(mb.max())) - RANGE_DB
    return float(np.mean(np.abs(np.maximum(ma, floor) - np.maximum(mb, floor))))
