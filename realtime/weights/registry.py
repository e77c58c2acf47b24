"""Weight sets registered by name, chosen by configuration (``--model``).

Adding a KModel version whose config differs is a new entry here: the config travels with the
model directory (``config.json``), so no other code changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from realtime.catalog import DEFAULT_MODEL, MODEL_DESCRIPTIONS
from realtime.errors import ConfigError, UnknownModelError
from realtime.model import KModel
from realtime.weights.checkpoint import VOICES_DIR, load_model_dir
from realtime.weights.embedded import ensure_embedded_model
from realtime.weights.tiny import build_tiny
from realtime.weights.voices import VoiceLibrary, packaged_voices

log = logging.getLogger("realtime.engine")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str  # one of catalog.MODEL_DESCRIPTIONS, which describes it
    default_voice: str
    # Returns the model directory; gets the user's --model-dir (if any) and the cache dir.
    locate: Callable[[Path | None, Path | None], Path]
    # Builds the model and voices in memory instead (no files): the tiny test model.
    build: Callable[[], tuple[KModel, VoiceLibrary]] | None = None
    # Voice packs added to the directory's (same names: these win).
    extra_voices: Callable[[], Mapping[str, np.ndarray]] | None = None

    @property
    def description(self) -> str:
        return MODEL_DESCRIPTIONS[self.name]


def _official(model_dir: Path | None, cache_dir: Path | None) -> Path:
    if model_dir is None:  # the official files from the Hugging Face hub, cached
        from realtime.weights.hub import ensure_hub_model  # huggingface_hub only when it is needed

        return ensure_hub_model(cache_dir)
    return model_dir


def _embedded(model_dir: Path | None, cache_dir: Path | None) -> Path:
    if model_dir is not None:
        raise ConfigError("model 'kokoro-v1.0-int8' is the embedded import; it takes no "
                          "--model-dir (use --model kokoro-v1.0 for a directory of your own)")
    return ensure_embedded_model(cache_dir)


def _in_memory(model_dir: Path | None, cache_dir: Path | None) -> Path:
    if model_dir is not None:
        raise ConfigError("model 'tiny-random' is built in memory; it takes no --model-dir")
    return Path("(in memory)")


MODELS: dict[str, ModelSpec] = {
    "kokoro-v1.0-int8": ModelSpec("kokoro-v1.0-int8", "af_heart", _embedded,
                                  extra_voices=packaged_voices),
    "kokoro-v1.0": ModelSpec("kokoro-v1.0", "af_heart", _official),
    "tiny-random": ModelSpec("tiny-random", "jf_alpha", _in_memory,
                             lambda: build_tiny(real_rate=True)),
}


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model ready to run: which one it is, where it came from, and its voices."""

    name: str
    path: Path
    model: KModel
    voices: VoiceLibrary
    default_voice: str

    @property
    def device(self) -> torch.device:
        return self.model.device



def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU")
    return dev


def load_model(name: str = DEFAULT_MODEL, model_dir: Path | None = None,
               cache_dir: Path | None = None, device: str = "auto") -> LoadedModel:
    """Resolve a registered model name to a loaded KModel with its voices."""
    spec = MODELS.get(name)
    if spec is None:
        raise UnknownModelError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    path = spec.locate(model_dir, cache_dir)
    dev = resolve_device(device)
    if spec.build is not None:
        model, voices = spec.build()
        model = model.to(dev).eval()
    else:
        model = load_model_dir(path, dev)
        width = 2 * model.config.style_dim
        voices = VoiceLibrary.from_dir(path / VOICES_DIR, width)
        if spec.extra_voices is not None:
            voices = VoiceLibrary({**voices.packs, **spec.extra_voices()}, width)
    default_voice = spec.default_voice if spec.default_voice in voices.names else voices.names[0]
    log.info("model %s loaded from %s on %s (%d voices)", name, path, dev, len(voices.names))
    return LoadedModel(name, path, model, voices, default_voice)
