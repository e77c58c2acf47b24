"""G.711 mu-law and A-law, vectorised with numpy (ITU-T G.711, as in the classic g711.c).

Encoders take int16 linear PCM and return one byte per sample; decoders take the bytes back to
int16 through a 256-entry table.
"""

from __future__ import annotations

import numpy as np

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635
# Segment ends of 13-bit A-law magnitudes.
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
# floor(log2(n)) for n in 0..255 (n >= 1 in use): the mu-law exponent of (magnitude + bias) >> 7.
_LOG2 = np.array([0] + [int(n).bit_length() - 1 for n in range(1, 256)], dtype=np.int32)


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 samples -> mu-law bytes."""
    x = np.asarray(pcm, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _MULAW_CLIP) + _MULAW_BIAS
    exponent = _LOG2[mag >> 7]
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mag = (((u & 0x0F) << 3) + _MULAW_BIAS << exponent) - _MULAW_BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def alaw_encode(pcm: np.ndarray) -> bytes:
    """int16 samples -> A-law bytes."""
    x = np.asarray(pcm, dtype=np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left").astype(np.int32)
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8).tobytes()


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_MULAW_DECODE = _mulaw_table()
_ALAW_DECODE = _alaw_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """mu-law bytes -> int16 samples."""
    return _MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> np.ndarray:
    """A-law bytes -> int16 samples."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
