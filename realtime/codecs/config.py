"""What the encoders support, and their validated configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from realtime.errors import ConfigError, InputError
from realtime.kokoro import SAMPLE_RATE

Codec = Literal["opus", "pcm16", "mulaw", "alaw"]
OpusApplication = Literal["voip", "audio", "restricted_lowdelay"]

CODECS: tuple[Codec, ...] = get_args(Codec)
# The rate the engine produces, and so what encoders take in by default.
INPUT_RATE = SAMPLE_RATE

SAMPLE_RATES: dict[Codec, tuple[int, ...]] = {
    "opus": (8000, 12000, 16000, 24000, 48000),
    "pcm16": (8000, 16000, 22050, 24000, 44100, 48000),
    "mulaw": (8000,),
    "alaw": (8000,),
}
_PCM_FRAME_MS = (10, 20, 40, 60, 80, 100)
FRAME_MS: dict[Codec, tuple[int, ...]] = {
    "opus": (10, 20, 40, 60),
    "pcm16": _PCM_FRAME_MS,
    "mulaw": _PCM_FRAME_MS,
    "alaw": _PCM_FRAME_MS,
}
DEFAULT_FRAME_MS = 20
OPUS_BITRATE_RANGE = (6000, 510000)


def frame_ms_for(codec: Codec, sample_rate: int) -> tuple[int, ...]:
    """Frame durations that hold a whole number of samples at this rate (22050 Hz: not 10 ms)."""
    return tuple(ms for ms in FRAME_MS[codec] if sample_rate * ms % 1000 == 0)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _listed(values: tuple[object, ...]) -> str:
    return ", ".join(str(v) for v in values)


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """One encoder's settings, checked when built.

    ``codec``, ``sample_rate`` and ``frame_ms`` come from clients: a bad one is an ``InputError``.
    ``bitrate``, ``complexity`` and ``application`` are server settings used by Opus only (a bad
    one is a ``ConfigError``); ``bitrate=None`` leaves libopus's default for the rate.
    """

    codec: Codec
    sample_rate: int
    frame_ms: int = DEFAULT_FRAME_MS
    bitrate: int | None = None
    complexity: int = 9
    application: OpusApplication = "voip"
    input_rate: int = INPUT_RATE

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise InputError(f"unknown codec {self.codec!r}; supported: {_listed(CODECS)}")
        rates = SAMPLE_RATES[self.codec]
        if not _is_int(self.sample_rate) or self.sample_rate not in rates:
            raise InputError(
                f"{self.codec} supports sample_rate {_listed(rates)} Hz; got {self.sample_rate!r}"
            )
        sizes = frame_ms_for(self.codec, self.sample_rate)
        if not _is_int(self.frame_ms) or self.frame_ms not in sizes:
            raise InputError(
                f"{self.codec} at {self.sample_rate} Hz supports frame_ms {_listed(sizes)}; "
                f"got {self.frame_ms!r}"
            )
        lo, hi = OPUS_BITRATE_RANGE
        if self.bitrate is not None and not lo <= self.bitrate <= hi:
            raise ConfigError(f"opus bitrate must be {lo}..{hi} bit/s; got {self.bitrate!r}")
        if not 0 <= self.complexity <= 10:
            raise ConfigError(f"opus complexity must be 0..10; got {self.complexity!r}")
        if self.application not in get_args(OpusApplication):
            raise ConfigError(
                f"opus application must be one of {_listed(get_args(OpusApplication))}; "
                f"got {self.application!r}"
            )
        if self.input_rate <= 0:
            raise ConfigError(f"input_rate must be positive; got {self.input_rate!r}")

    @property
    def frame_samples(self) -> int:
        """Samples per frame at ``sample_rate``."""
        return self.sample_rate * self.frame_ms // 1000
