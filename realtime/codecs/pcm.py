"""Frame codecs for raw PCM16 little-endian and G.711 mu-law / A-law."""

from __future__ import annotations

import numpy as np

from realtime.codecs.config import EncoderConfig
from realtime.codecs.g711 import alaw_encode, mulaw_encode
from realtime.codecs.wav import pcm16, to_int16


class Pcm16Codec:
    lookahead = 0

    def __init__(self, config: EncoderConfig) -> None:
        del config

    def encode(self, frame: np.ndarray) -> bytes:
        return pcm16(frame)

    def reset(self) -> None:
        pass


class MulawCodec(Pcm16Codec):
    def encode(self, frame: np.ndarray) -> bytes:
        return mulaw_encode(to_int16(frame))


class AlawCodec(Pcm16Codec):
    def encode(self, frame: np.ndarray) -> bytes:
        return alaw_encode(to_int16(frame))
