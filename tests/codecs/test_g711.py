from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from realtime.codecs.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode

ALL_CODES = bytes(range(256))


def test_reference_values() -> None:
    # ITU-T G.711 / the classic g711.c: silence, the extremes, and one mid value each.
    assert mulaw_encode(np.array([0, 1000, -1000, 32767, -32768])) == bytes(
        [0xFF, 0xCE, 0x4E, 0x80, 0x00]
    )
    assert alaw_encode(np.array([0, 1000, -1000, 32767, -32768])) == bytes(
        [0xD5, 0xFA, 0x7A, 0xAA, 0x2A]
    )
    mu = mulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xCE]))
    assert mu.tolist() == [0, 0, 32124, -32124, 988]
    a = alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A, 0xFA]))
    assert a.tolist() == [8, -8, 32256, -32256, 1008]


def test_decode_tables_are_monotonic_per_sign() -> None:
    # Codes 0x80..0xFF (mu-law, after the inversion) run from the loudest positive down to zero.
    mu = mulaw_decode(ALL_CODES).astype(int)
    assert np.all(np.diff(mu[0x80:]) < 0) and np.all(np.diff(mu[:0x80]) > 0)
    a = np.sort(alaw_decode(ALL_CODES).astype(int))
    assert len(set(a.tolist())) == 256


def test_decode_then_encode_is_identity() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # mu-law has two zeros (0x7F and 0xFF); the encoder writes the positive one.
    mu_again = mulaw_encode(mulaw_decode(ALL_CODES))
    assert mu_again == ALL_CODES.replace(b"\x7f", b"\xff")


@pytest.mark.parametrize(
    ("encode", "decode"), [(mulaw_encode, mulaw_decode), (alaw_encode, alaw_decode)]
)
def test_quantisation_error_is_logarithmic(
    encode: Callable[[np.ndarray], bytes], decode: Callable[[bytes], np.ndarray]
) -> None:
    x = np.arange(-32768, 32768, 7, dtype=np.int16)
    y = decode(encode(x)).astype(int)
    err = np.abs(y - x.astype(int))
    # The step doubles with each segment: the error stays within ~1/16 of the magnitude + 16.
    assert np.all(err <= np.abs(x.astype(int)) / 16 + 16)
    assert np.all(np.sign(y[np.abs(x) > 16]) == np.sign(x[np.abs(x) > 16]))
