"""The Opus frame codec (libopus through opuslib): mono, float input."""

from __future__ import annotations

import numpy as np
import opuslib

from realtime.codecs.config import EncoderConfig

OPUS_RATE = 48000  # Ogg Opus granule positions and pre-skip count at this rate


class OpusCodec:
    def __init__(self, config: EncoderConfig) -> None:
        self._encoder = opuslib.Encoder(config.sample_rate, 1, config.application)
        if config.bitrate is not None:
            self._encoder.bitrate = config.bitrate
        self._encoder.complexity = config.complexity
        self._frame = config.frame_samples
        self.lookahead: int = self._encoder.lookahead

    def encode(self, frame: np.ndarray) -> bytes:
        pcm = np.ascontiguousarray(frame, dtype=np.float32).tobytes()
        return bytes(self._encoder.encode_float(pcm, self._frame))

    def reset(self) -> None:
        # Clears the signal state; bitrate, complexity and application stay as set.
        self._encoder.reset_state()
