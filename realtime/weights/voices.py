"""Voice packs: one style vector per utterance length, and weighted blends of them.

A pack is a float tensor ``[510, 1, 256]``; the row for an utterance of ``n`` phonemes is
``pack[n - 1]``. A blend ``jf_alpha(2)+jm_kumo(1)`` is the weighted mean of packs, weights
normalised to sum to one (a name without a weight counts 1; grammar in ``realtime.voice_names``).
"""

from __future__ import annotations

import threading
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from realtime.errors import ModelFileError, unknown_voice
from realtime.voice_names import VoiceInfo, parse_blend, voice_info
from realtime.weights.checkpoint import torch_load

__all__ = ["PACKAGED_VOICES", "VoiceLibrary", "load_npz", "packaged_voices", "parse_blend"]

_BLEND_CACHE = 64
# The official Kokoro-82M v1.0 packs for English and the espeak-ng languages (41, float32),
# shipped with the package; provenance and licence beside them (data/VOICES.md).
PACKAGED_VOICES = "kokoro-v1.0-voices.npz"


class VoiceLibrary:
    """Named voice packs, validated on load.

    Safe to share between threads: the packs never change after construction, and the cache
    of blends (bounded, least recently used out first) is guarded by a lock, since the engine
    thread reads it while the event loop validates a client's new blend.
    """

    def __init__(self, packs: Mapping[str, Tensor | np.ndarray], style_width: int = 256) -> None:
        self.style_width = style_width
        self._packs: dict[str, Tensor] = {}
        for name, pack in packs.items():
            t = torch.as_tensor(np.asarray(pack) if not isinstance(pack, Tensor) else pack)
            t = t.float()
            if t.dim() == 2:
                t = t.unsqueeze(1)
            if t.dim() != 3 or t.shape[1] != 1 or t.shape[2] != style_width or t.shape[0] < 1:
                raise ModelFileError(f"voice '{name}' has shape {tuple(t.shape)}; expected "
                                     f"[rows, 1, {style_width}]")
            if not bool(torch.isfinite(t).all()):
                raise ModelFileError(f"voice '{name}' contains NaN or infinite values")
            self._packs[name] = t.contiguous()
        self._cache: OrderedDict[str, Tensor] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return sorted(self._packs)

    @property
    def packs(self) -> Mapping[str, Tensor]:
        return dict(self._packs)

    def info(self) -> list[VoiceInfo]:
        """Every voice with its language, family and gender, by name."""
        return [voice_info(name) for name in self.names]

    def pack(self, spec: str) -> Tensor:
        """The pack for a voice name or a blend written ``a(2)+b(1)``."""
        single = self._packs.get(spec)
        if single is not None:
            return single
        with self._lock:
            cached = self._cache.get(spec)
            if cached is not None:
                self._cache.move_to_end(spec)
                return cached
        terms = parse_blend(spec)
        for name, _ in terms:
            if name not in self._packs:
                raise unknown_voice(name, self._packs)
        rows = min(self._packs[name].shape[0] for name, _ in terms)
        total = sum(w for _, w in terms)
        mixed = sum((self._packs[name][:rows] * (w / total) for name, w in terms),
                    torch.zeros(rows, 1, self.style_width))
        with self._lock:  # blends come from clients: keep the cache bounded
            self._cache[spec] = mixed
            while len(self._cache) > _BLEND_CACHE:
                self._cache.popitem(last=False)
        return mixed

    def style(self, spec: str, n_phonemes: int) -> Tensor:
        """The 256-wide style vector for an utterance of ``n_phonemes`` phonemes."""
        pack = self.pack(spec)
        row = min(max(n_phonemes, 1), pack.shape[0]) - 1
        return pack[row, 0]

    @classmethod
    def from_dir(cls, path: Path, style_width: int = 256) -> VoiceLibrary:
        """Every ``*.pt`` (one pack each, named by file) and ``*.npz`` (one pack per array)."""
        if not path.is_dir():
            raise ModelFileError(f"voices directory not found: {path}")
        packs: dict[str, Tensor | np.ndarray] = {}
        for file in sorted(path.iterdir()):
            if file.suffix == ".pt":
                packs[file.stem] = _load_pt(file)
            elif file.suffix == ".npz":
                packs.update(load_npz(file))
        if not packs:
            raise ModelFileError(f"no voice packs (*.pt, *.npz) in {path}")
        return cls(packs, style_width)


def _load_pt(file: Path) -> Tensor:
    value = torch_load(file, "voice file")
    if not isinstance(value, Tensor):
        raise ModelFileError(f"voice file {file} must hold a tensor, found {type(value).__name__}")
    return value


def load_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"voice archive {file} is corrupt or unreadable: {exc}") from exc


def packaged_voices() -> dict[str, np.ndarray]:
    """The 41 official v1.0 packs shipped with realtime (English and the espeak-ng languages)."""
    path = Path(str(resources.files("realtime.weights") / "data" / PACKAGED_VOICES))
    if not path.is_file():
        raise ModelFileError(f"the packaged voices are missing ({path}); reinstall realtime")
    return load_npz(path)
