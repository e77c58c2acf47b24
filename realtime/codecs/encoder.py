"""The streaming encoder: float samples in, chunk by chunk; fixed-duration frames out.

One ``StreamEncoder`` per audio stream (a context). It resamples from the engine's rate to the
codec's, cuts fixed frames and hands each to a ``FrameCodec`` (Opus, PCM16, mu-law, A-law).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from realtime.codecs.config import Codec, EncoderConfig, OpusApplication
from realtime.codecs.opus import OpusCodec
from realtime.codecs.pcm import AlawCodec, MulawCodec, Pcm16Codec
from realtime.codecs.resample import StreamResampler
from realtime.errors import InputError


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded frame of ``frame_ms``: an Opus packet, or PCM16-LE / mu-law / A-law bytes.

    ``samples`` is the frame's length at the codec rate; ``valid_samples`` how many of them are
    the stream's audio rather than the padding a flush adds (Ogg uses it to trim the end).
    """

    data: bytes
    index: int
    frame_ms: int
    samples: int
    valid_samples: int

    @property
    def offset_ms(self) -> int:
        return self.index * self.frame_ms

    @property
    def duration_ms(self) -> int:
        return self.frame_ms


class FrameCodec(Protocol):
    """Encodes one frame of float32 samples at the codec rate."""

    # Samples (at the codec rate) by which a decoder's output lags its input: flush pads them.
    lookahead: int

    def encode(self, frame: np.ndarray) -> bytes: ...

    def reset(self) -> None: ...


class StreamEncoder:
    """Push float32 mono samples (at ``config.input_rate``) in any chunking; get whole frames.

    ``push`` returns the frames completed so far; ``flush`` ends the stream (the last partial
    frame padded with silence) and leaves the encoder ready for more; ``reset`` drops everything
    held (a cancel) and starts the frame count again. The frames are the same whatever the
    chunking.
    """

    def __init__(self, config: EncoderConfig, codec: FrameCodec) -> None:
        self.config = config
        self._codec = codec
        self._resampler = StreamResampler(config.input_rate, config.sample_rate)
        self._size = config.frame_samples
        self._pending = np.zeros(0, dtype=np.float32)
        self._index = 0
        self._unflushed = False  # real audio encoded since the last flush

    @property
    def lookahead(self) -> int:
        """The codec's decoder delay in samples at ``config.sample_rate`` (Opus pre-skip)."""
        return self._codec.lookahead

    @property
    def frames_out(self) -> int:
        return self._index

    def push(self, samples: np.ndarray) -> list[Frame]:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise InputError(f"expected mono samples (1-D), got shape {x.shape}")
        return self._take(self._resampler.push(x), final=False)

    def flush(self) -> list[Frame]:
        return self._take(self._resampler.flush(), final=True)

    def reset(self) -> None:
        self._resampler.reset()
        self._codec.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._index = 0
        self._unflushed = False

    def _take(self, new: np.ndarray, final: bool) -> list[Frame]:
        buf = np.concatenate((self._pending, new)) if len(self._pending) else new
        valid = len(buf)
        if final and (valid or self._unflushed):
            padded = -(-(valid + self._codec.lookahead) // self._size) * self._size
            buf = np.concatenate((buf, np.zeros(padded - valid, dtype=np.float32)))
        whole = len(buf) // self._size * self._size
        frames = []
        for start in range(0, whole, self._size):
            chunk = buf[start:start + self._size]
            frames.append(Frame(
                data=self._codec.encode(chunk), index=self._index, frame_ms=self.config.frame_ms,
                samples=self._size, valid_samples=max(0, min(self._size, valid - start)),
            ))
            self._index += 1
        self._pending = buf[whole:].copy()
        self._unflushed = not final and (self._unflushed or whole > 0)
        return frames


FrameCodecFactory = Callable[[EncoderConfig], FrameCodec]


FRAME_CODECS: dict[Codec, FrameCodecFactory] = {
    "opus": OpusCodec, "pcm16": Pcm16Codec, "mulaw": MulawCodec, "alaw": AlawCodec,
}


def make_encoder(
    codec: str,
    sample_rate: int,
    frame_ms: int = 20,
    *,
    bitrate: int | None = None,
    complexity: int = 9,
    application: OpusApplication = "voip",
    input_rate: int = 24000,
) -> StreamEncoder:
    """Build a streaming encoder; raises ``InputError`` naming what is supported for a codec,
    rate or frame size we do not have, ``ConfigError`` for bad Opus settings."""
    config = EncoderConfig(
        codec=cast(Codec, codec),  # checked by EncoderConfig
        sample_rate=sample_rate, frame_ms=frame_ms, bitrate=bitrate,
        complexity=complexity, application=application, input_rate=input_rate,
    )
    return StreamEncoder(config, FRAME_CODECS[config.codec](config))
