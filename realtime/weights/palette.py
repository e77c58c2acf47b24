"""Palette-coded checkpoints: the same float32 weights, stored smaller where they allow it.

The embedded model comes from an int8 export, so most of its dequantized tensors hold at most
256 distinct float32 values. Such a tensor is stored as its distinct values (the palette) and,
per element, the index of its value: one byte per weight instead of four (two bytes for a
palette of up to 65,536 values). Palettes are taken over the values' bit patterns, so unpacking
gives back every bit (signed zeros and NaNs included); any other tensor is stored as it is.
The embedded import's checkpoint shrinks from 327 MB to 127 MB, on disk and in the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeGuard

import torch
from torch import Tensor

from realtime.errors import ModelFileError

FORMAT = "realtime-palette-1"
_MIN_ELEMENTS = 1024  # smaller tensors are not worth a palette


def pack_tensor(t: Tensor) -> Tensor | dict[str, Tensor]:
    """``t`` itself, or ``{"palette", "index"}`` when that is smaller (float32 tensors only)."""
    if t.dtype != torch.float32 or t.numel() < _MIN_ELEMENTS:
        return t
    bits, index = torch.unique(t.contiguous().view(torch.int32), return_inverse=True)
    n = bits.numel()
    if n <= 1 << 8:
        index = index.to(torch.uint8)
    elif n <= 1 << 16 and 2 * t.numel() + 4 * n < 4 * t.numel():
        index = index.to(torch.uint16)
    else:
        return t
    return {"palette": bits.view(torch.float32), "index": index}


def unpack_tensor(entry: object, where: str) -> Tensor:
    if isinstance(entry, Tensor):
        return entry
    if not isinstance(entry, Mapping) or set(entry) != {"palette", "index"}:
        raise ModelFileError(f"{where}: neither a tensor nor a palette and an index")
    palette, index = entry["palette"], entry["index"]
    if not (isinstance(palette, Tensor) and palette.dtype == torch.float32 and palette.dim() == 1
            and isinstance(index, Tensor) and index.dtype in (torch.uint8, torch.uint16)):
        raise ModelFileError(f"{where}: the palette must be 1-d float32 and the index uint8 or "
                             "uint16")
    index = index.to(torch.int64)
    if index.numel() and int(index.max()) >= palette.numel():
        raise ModelFileError(f"{where}: an index points past its palette of {palette.numel()}")
    return palette[index]


def pack(checkpoint: Mapping[str, Mapping[str, Tensor]]) -> dict[str, object]:
    """A checkpoint (part -> state dict) in the palette form that ``torch.save`` writes."""
    return {"format": FORMAT,
            "parts": {part: {k: pack_tensor(v) for k, v in sd.items()}
                      for part, sd in checkpoint.items()}}


def is_packed(raw: object) -> TypeGuard[Mapping[str, object]]:
    """Whether ``torch.load`` read a palette-coded checkpoint (a plain one has no format)."""
    return isinstance(raw, Mapping) and "format" in raw


def unpack(raw: Mapping[str, object], path: Path) -> dict[str, dict[str, Tensor]]:
    """The checkpoint ``pack`` was given, from what ``torch.load`` read at ``path``."""
    if raw.get("format") != FORMAT or not isinstance(parts := raw.get("parts"), Mapping):
        raise ModelFileError(f"weights file {path} is in format {raw.get('format')!r}; this "
                             f"release reads {FORMAT!r}")
    out: dict[str, dict[str, Tensor]] = {}
    for part, sd in parts.items():
        if not isinstance(sd, Mapping):
            raise ModelFileError(f"weights file {path}: part {part!r} is not a state dict")
        out[part] = {k: unpack_tensor(v, f"weights file {path}: {part}.{k}")
                     for k, v in sd.items()}
    return out
