"""Voice packs: one style vector per utterance length, and weighted blends of them.

A pack is a float tensor ``[510, 1, 256]``; the row for an utterance of ``n`` phonemes is
``pack[n - 1]``. A blend ``jf_alpha(2)+jm_kumo(1)`` is the weighted mean of packs, weights
normalised to sum to one (a name without a weight counts 1).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from realtime.errors import ModelFileError, VoiceError

from .weights import torch_load

_BLEND_CACHE = 64
_TERM = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\(\s*([0-9]*\.?[0-9]+)\s*\))?\s*$")


class VoiceLibrary:
    """Named voice packs, validated on load."""

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
        self._cache: dict[str, Tensor] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._packs)

    @property
    def packs(self) -> Mapping[str, Tensor]:
        return dict(self._packs)

    def pack(self, spec: str) -> Tensor:
        """The pack for a voice name or a blend written ``a(2)+b(1)``."""
        if spec in self._cache:
            return self._cache[spec]
        terms = parse_blend(spec)
        for name, _ in terms:
            if name not in self._packs:
                raise VoiceError(f"unknown voice '{name}'; known voices: {', '.join(self.names)}")
        rows = min(self._packs[name].shape[0] for name, _ in terms)
        total = sum(w for _, w in terms)
        mixed = sum((self._packs[name][:rows] * (w / total) for name, w in terms),
                    torch.zeros(rows, 1, self.style_width))
        if len(self._cache) >= _BLEND_CACHE:  # blends come from clients: keep the cache bounded
            self._cache.clear()
        self._cache[spec] = mixed
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


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """``"jf_alpha(2)+jm_kumo"`` -> ``[("jf_alpha", 2.0), ("jm_kumo", 1.0)]``."""
    if not isinstance(spec, str) or not spec.strip():
        raise VoiceError("voice must be a non-empty name or a blend such as "
                         "'jf_alpha(2)+jm_kumo(1)'")
    terms: list[tuple[str, float]] = []
    for part in spec.split("+"):
        m = _TERM.match(part)
        if m is None:
            raise VoiceError(f"cannot parse voice term {part.strip()!r} in {spec!r}; write "
                             "names joined by '+', each with an optional positive weight, "
                             "e.g. a(2)+b(1)")
        weight = float(m.group(2)) if m.group(2) is not None else 1.0
        if weight <= 0:
            raise VoiceError(f"voice weight must be positive in {spec!r}")
        terms.append((m.group(1), weight))
    return terms


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
