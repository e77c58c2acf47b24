"""What a session needs to know of the model without having it.

A session worker process has no torch and no model: it gets a ``ModelInfo`` from the engine
(its name, voices, vocabulary) and validates requests with it before they cross to the engine,
with the same errors (and codes) the model itself raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from realtime.engine.request import ChunkRequest
from realtime.errors import InputError, unknown_symbols, unknown_voice
from realtime.kokoro import FRAME_SAMPLES, MAX_PHONEMES
from realtime.voice_names import parse_blend

__all__ = ["EngineStats", "ModelInfo"]


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
    plan: dict[str, object] = field(default_factory=dict)  # the engine's (EnginePlan.describe)

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

    def as_wire(self) -> dict[str, object]:
        return {"name": self.name, "voices": list(self.voices),
                "default_voice": self.default_voice, "vocab": "".join(sorted(self.vocab)),
                "device": self.device, "frame_samples": self.frame_samples,
                "window_s": self.window_s, "plan": self.plan}

    @staticmethod
    def from_wire(data: dict[object, object]) -> ModelInfo:
        voices, vocab, frame_samples = data["voices"], data["vocab"], data["frame_samples"]
        window_s, plan = data.get("window_s"), data.get("plan") or {}
        if not (isinstance(voices, list) and isinstance(vocab, str)
                and isinstance(frame_samples, int) and isinstance(plan, dict)
                and (window_s is None or isinstance(window_s, int | float))):
            raise TypeError(f"a malformed model info: {data!r}")
        return ModelInfo(str(data["name"]), tuple(map(str, voices)),
                         str(data["default_voice"]), frozenset(vocab), str(data["device"]),
                         frame_samples, None if window_s is None else float(window_s),
                         {str(k): v for k, v in plan.items()})


@dataclass(frozen=True, slots=True)
class EngineStats:
    queued: int
    running: int
    batches: int
    chunks: int
    cancelled: int
