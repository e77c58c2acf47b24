"""MP3 for HTTP (OpenAI's default ``response_format``), encoded as the audio comes, over LAME.

The engine's 24 kHz mono goes in unresampled (MPEG-2 Layer III takes 24 kHz), at a constant
bitrate: every frame the same size, so a decoder can start anywhere in the stream and the
length of a response says its duration. 48 kbit/s is the lowest rate at which LAME keeps the
band the model makes (it low-passes at about 11.3 kHz of the 12 kHz there are, as at 56 and
64 kbit/s; at 40 kbit/s at 10.5 kHz, at 32 kbit/s at 8.3 kHz, dulling sibilants).
"""

from __future__ import annotations

import lameenc
import numpy as np

from realtime.codecs.config import INPUT_RATE
from realtime.codecs.wav import pcm16
from realtime.errors import ConfigError, InputError

__all__ = ["MP3_BITRATE", "MP3_BITRATES", "MP3_RATES", "Mp3Stream"]

MP3_BITRATE = 48  # kbit/s
# MPEG-2 Layer III: its sample rates (the engine's among them) and bitrates (kbit/s).
MP3_RATES = (16000, 22050, 24000)
MP3_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)


class Mp3Stream:
    """Float mono samples in (any chunking), MP3 frames out: ``push`` returns the bytes of the
    frames LAME has completed (often none for a short push: it holds about a frame and its
    look-ahead back), ``finish`` the rest, padding the last frame. The concatenation is one
    MP3 stream (no ID3 or Xing tag: nothing is rewritten once sent). One stream per object."""

    def __init__(self, sample_rate: int = INPUT_RATE, bitrate_kbps: int = MP3_BITRATE,
                 quality: int = 2) -> None:
        if sample_rate not in MP3_RATES:
            raise ConfigError(f"mp3 takes {', '.join(map(str, MP3_RATES))} Hz; got {sample_rate}")
        if bitrate_kbps not in MP3_BITRATES:
            raise ConfigError(f"mp3 at {sample_rate} Hz takes "
                              f"{', '.join(map(str, MP3_BITRATES))} kbit/s; got {bitrate_kbps}")
        self._lame = lameenc.Encoder()
        self._lame.set_in_sample_rate(sample_rate)
        self._lame.set_out_sample_rate(sample_rate)  # else LAME may pick a lower rate itself
        self._lame.set_channels(1)
        self._lame.set_bit_rate(bitrate_kbps)
        self._lame.set_quality(quality)  # 2: LAME's best; a few ms of CPU per second of audio
        self._lame.silence()  # LAME writes its settings to stdout otherwise
        self._started = False
        self._finished = False

    def push(self, samples: np.ndarray) -> bytes:
        if self._finished:
            raise InputError("this mp3 stream is finished")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise InputError(f"mp3 takes mono samples (1-D), got shape {samples.shape}")
        if not len(samples):
            return b""
        self._started = True
        return bytes(self._lame.encode(pcm16(samples)))

    def finish(self) -> bytes:
        """The held-back samples, the last frame padded; the stream is then over."""
        if self._finished:
            return b""
        self._finished = True
        # LAME refuses to flush what never started: an empty stream is empty.
        return bytes(self._lame.flush()) if self._started else b""
