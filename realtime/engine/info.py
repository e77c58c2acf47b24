"""What a session needs to know of the model without having it, and the engine's face.

A session worker process has no torch and no model: it gets a ``ModelInfo`` from the engine
(its name, voices, vocabulary) and validates requests with it before they cross to the engine,
with the same errors (and codes) the model itself raises. ``EngineClient`` is what the server
talks to: the in-process ``Engine`` and the remote one (``realtime.engine.ipc``) both are one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from realtime.errors import InputError, VoiceError
from realtime.kokoro import FRAME_SAMPLES, MAX_PHONEMES
from realtime.voice_names import parse_blend

from .request import ChunkRequest, ChunkResult

__all__ = ["EngineClient", "EngineStats", "ModelInfo", "unknown_symbols", "unknown_voice"]


def unknown_symbols(symbols: Iterable[str]) -> InputError:
    """The error for phonemes outside a model's vocabulary (the model raises the same)."""
    return InputError("unknown phoneme symbol(s): " + ", ".join(repr(c) for c in sorted(symbols)))


def unknown_voice(name: str, known: Iterable[str]) -> VoiceError:
    return VoiceError(f"unknown voice '{name}'; known voices: {', '.join(sorted(known))}")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A loaded model as sessions see it: no tensors, cheap to send between processes."""

    name: str
    voices: tuple[str, ...]
    default_voice: str
    vocab: frozenset[str]
    device: str = "cpu"
    frame_samples: int = FRAME_SAMPLES
    window_s: float | None = None  # a chunk's first piece (windowed decoding); None: whole

    def check_voice(self, spec: str) -> None:
        """A voice name or blend whose every name is known, or ``VoiceError``."""
        for name, _ in parse_blend(spec):
            if name not in self.voices:
                raise unknown_voice(name, self.voices)

    def check(self, request: ChunkRequest) -> None:
        """What the model would refuse, refused here first (``InputError`` / ``VoiceError``)."""
        unknown = {c for c in request.phonemes if c not in self.vocab}
        if unknown:
            raise unknown_symbols(unknown)
        if not request.phonemes:
            raise InputError("no phonemes to synthesise")
        if len(request.phonemes) > MAX_PHONEMES:
            raise InputError(f"{len(request.phonemes)} phonemes exceed the limit of "
                             f"{MAX_PHONEMES} per chunk")
        if not request.speed > 0:
            raise InputError(f"speed must be positive, got {request.speed}")
        self.check_voice(request.voice)

    def as_wire(self) -> dict[str, Any]:
        return {"name": self.name, "voices": list(self.voices),
                "default_voice": self.default_voice, "vocab": "".join(sorted(self.vocab)),
                "device": self.device, "frame_samples": self.frame_samples,
                "window_s": self.window_s}

    @staticmethod
    def from_wire(data: dict[str, Any]) -> ModelInfo:
        return ModelInfo(str(data["name"]), tuple(data["voices"]), str(data["default_voice"]),
                         frozenset(data["vocab"]), str(data["device"]),
                         int(data["frame_samples"]),
                         None if data.get("window_s") is None else float(data["window_s"]))


@dataclass(frozen=True, slots=True)
class EngineStats:
    queued: int
    running: int
    batches: int
    chunks: int
    cancelled: int


class EngineClient(Protocol):
    """The engine as the server uses it, in this process or in another."""

    info: ModelInfo

    def clock(self) -> float:
        """Seconds, monotonic: the clock of request deadlines (the same in every process)."""
        ...

    def submit(self, request: ChunkRequest) -> Future[ChunkResult]:
        """Queue a chunk; validation errors are raised at once, refusals (busy, stopped) too."""
        ...

    def cancel(self, session: str, context: str | None = None) -> object:
        """Drop an owner's chunks: queued ones never run, their futures fail now."""
        ...

    @property
    def running(self) -> bool:
        ...

    def stats(self) -> EngineStats:
        ...

    def watch(self, callback: Callable[[bool, str], None]) -> None:
        """``callback(up, reason)`` when the engine is lost or back (from any thread)."""
        ...

    def stop(self, timeout: float = 30.0) -> None:
        ...
