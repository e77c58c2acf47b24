"""The exceptions of realtime, in one place.

Hierarchy::

    RealtimeError            base; carries a machine-readable ``code`` and a human ``reason``
    ├── ConfigError          a configuration value or a model config.json is invalid
    ├── ModelFileError       a weights, voice or model file is missing, corrupt or mismatched
    │   ├── StateDictMismatch  tensors missing from / unexpected in a checkpoint (names listed)
    │   └── ModelDownloadError the model's files could not be fetched (hub unreachable, offline
    │                          with nothing cached): use local files with --model-dir
    ├── UnknownModelError    a model name that is not registered
    ├── VoiceError           an unknown voice name or a malformed voice / blend
    ├── InputError           bad synthesis input (unknown phoneme symbol, too long, bad speed)
    └── EngineError          the engine refused or lost a chunk
        ├── EngineBusy       its queue is full (back off, or another replica)
        ├── EngineStopped    it is not running (not started, draining or stopped)
        │   └── EngineLost   it was serving and its process was lost (died, hung, restarted):
        │                    the session is closed; reconnect and resend what was not spoken
        └── ChunkCancelled   the chunk was cancelled before its audio was delivered
"""

from __future__ import annotations

from collections.abc import Iterable


class RealtimeError(Exception):
    """Base class: every error we raise carries a ``code`` and a ``reason``."""

    code = "internal_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(RealtimeError):
    code = "bad_config"


class ModelFileError(RealtimeError):
    code = "model_file"


class StateDictMismatch(ModelFileError):
    """A checkpoint's tensors do not match the model: names the missing and unexpected ones."""

    code = "state_dict_mismatch"

    def __init__(
        self,
        part: str,
        missing: list[str],
        unexpected: list[str],
        mis_shaped: list[str] | None = None,
    ) -> None:
        self.part = part
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mis_shaped = sorted(mis_shaped or [])
        parts = []
        for label, names in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("wrong shape", self.mis_shaped),
        ):
            if names:
                more = f" (+{len(names) - 20} more)" if len(names) > 20 else ""
                shown = ", ".join(names[:20]) + more
                parts.append(f"{label}: {shown}")
        super().__init__(f"checkpoint part '{part}' does not match the model: " + "; ".join(parts))


class ModelDownloadError(ModelFileError):
    """The model's files are not here and could not be downloaded; the reason is one line."""

    code = "model_download"


class UnknownModelError(RealtimeError):
    code = "unknown_model"


class VoiceError(RealtimeError):
    code = "unknown_voice"


class InputError(RealtimeError):
    code = "bad_input"


class EngineError(RealtimeError):
    code = "engine_error"


class EngineBusy(EngineError):
    code = "engine_busy"


class EngineStopped(EngineError):
    code = "engine_stopped"


class EngineLost(EngineStopped):
    # An EngineStopped too: whoever only asks "is the engine serving?" (HTTP 503) needs no change.
    code = "engine_lost"


class ChunkCancelled(EngineError):
    code = "cancelled"


def unknown_symbols(symbols: Iterable[str]) -> InputError:
    """The error for phonemes outside a model's vocabulary (the model raises the same)."""
    return InputError("unknown phoneme symbol(s): " + ", ".join(repr(c) for c in sorted(symbols)))


def unknown_voice(name: str, known: Iterable[str]) -> VoiceError:
    return VoiceError(f"unknown voice '{name}'; known voices: {', '.join(sorted(known))}")
