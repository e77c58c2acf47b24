"""Kokoro v1.0 weights in the official layout: read strictly, write compatibly.

A model directory holds ``config.json``, ``kokoro-v1_0.pth`` (a dict of five state dicts, keys
prefixed ``module.``, weight-normed layers as ``weight_g``/``weight_v``) and ``voices/*.pt``.
The embedded import writes the same checkpoint palette-coded (``kokoro-v1_0.palette.pt``,
``palette.py``) in place of ``kokoro-v1_0.pth``; both load to the same tensors.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from realtime.errors import ModelFileError, StateDictMismatch
from realtime.model import KModel, KModelConfig
from realtime.weights import palette

WEIGHTS_FILE = "kokoro-v1_0.pth"
PACKED_FILE = "kokoro-v1_0.palette.pt"
CONFIG_FILE = "config.json"
VOICES_DIR = "voices"
_PREFIX = "module."
# Kokoro declares its AdaIN norms affine, yet the checkpoint has no affine weights: they stay at
# 1 / 0, i.e. identity. Our model has none. A checkpoint that does carry them is accepted only
# if they are that identity.
_ADAIN_AFFINE = re.compile(r"(^|\.)(norm1|norm2|adain1\.\d+|adain2\.\d+)\.norm\.(weight|bias)$")
# Tensors the official files carry that KModel never uses.
_UNUSED = {"bert": re.compile(r"^pooler\.(weight|bias)$|^embeddings\.position_ids$")}


def weights_path(model_dir: Path) -> Path:
    """The directory's checkpoint: ``kokoro-v1_0.pth``, else ``kokoro-v1_0.palette.pt``."""
    packed = model_dir / PACKED_FILE
    return packed if packed.is_file() and not (model_dir / WEIGHTS_FILE).is_file() else (
        model_dir / WEIGHTS_FILE)


def read_checkpoint(path: Path) -> dict[str, dict[str, Tensor]]:
    """Load a checkpoint of part -> state dict (plain or palette-coded), with clear errors for
    missing or corrupt files."""
    if not path.is_file():
        raise ModelFileError(f"weights file not found: {path}")
    raw = torch_load(path, "weights file")
    if palette.is_packed(raw):
        raw = palette.unpack(raw, path)
    if not isinstance(raw, Mapping):
        raise ModelFileError(f"weights file {path} must hold a dict of state dicts, "
                             f"found {type(raw).__name__}")
    missing = [p for p in KModel.PARTS if p not in raw]
    extra = [p for p in raw if p not in KModel.PARTS]
    if missing or extra:
        raise StateDictMismatch("(top level)", missing, [str(e) for e in extra])
    out: dict[str, dict[str, Tensor]] = {}
    for part in KModel.PARTS:
        sd = raw[part]
        if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
            raise ModelFileError(f"weights file {path}: part '{part}' is not a state dict")
        out[part] = dict(sd)
    return out


def torch_load(path: Path, what: str) -> object:
    """``torch.load`` (tensors only, no code) with one clear error for a damaged file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError,
            ValueError, AttributeError, TypeError) as exc:
        detail = (str(exc).splitlines() or [""])[0][:200]
        raise ModelFileError(f"{what} {path} is corrupt or truncated "
                             f"({type(exc).__name__}: {detail})") from exc


def load_state(model: KModel, checkpoint: Mapping[str, Mapping[str, Tensor]]) -> None:
    """Load all five parts strictly: any missing, unexpected or mis-shaped tensor is named."""
    for part in KModel.PARTS:
        module = getattr(model, part)
        target = module.state_dict()
        given: dict[str, Tensor] = {}
        unexpected: list[str] = []
        for key, value in checkpoint[part].items():
            name = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
            if name in target:
                given[name] = value
            elif not (_is_unused(part, name)
                      or (_ADAIN_AFFINE.search(name) and _is_identity_affine(name, value))):
                unexpected.append(key)
        missing = [k for k in target if k not in given]
        bad = [f"{k} {tuple(given[k].shape)} != {tuple(v.shape)}"
               for k, v in target.items() if k in given and given[k].shape != v.shape]
        if missing or unexpected or bad:
            raise StateDictMismatch(part, missing, unexpected, bad)
        module.load_state_dict(given, strict=True)


def _is_unused(part: str, name: str) -> bool:
    return part in _UNUSED and _UNUSED[part].search(name) is not None


def _is_identity_affine(name: str, value: Tensor) -> bool:
    fill = 1.0 if name.endswith("weight") else 0.0
    if bool(torch.all(value == fill)):
        return True
    raise ModelFileError(f"AdaIN affine tensor {name} is not the identity; this KModel has "
                         "affine-free AdaIN norms and cannot represent it")


def checkpoint_from_model(model: KModel) -> dict[str, dict[str, Tensor]]:
    """Our weights as the official checkpoint dict (``module.`` prefixes, pooler included).

    KModel never uses ALBERT's pooler and the int8 export does not carry it; zeros are written
    so that loaders expecting the official tensor set (``AlbertModel`` with its pooler) accept
    the file.
    """
    out: dict[str, dict[str, Tensor]] = {}
    for part in KModel.PARTS:
        sd = {_PREFIX + k: v.detach().cpu().contiguous()
              for k, v in getattr(model, part).state_dict().items()}
        out[part] = sd
    hidden = model.config.plbert.hidden_size
    out["bert"][_PREFIX + "pooler.weight"] = torch.zeros(hidden, hidden)
    out["bert"][_PREFIX + "pooler.bias"] = torch.zeros(hidden)
    return out


def write_model_dir(dest: Path, model: KModel, voices: Mapping[str, Tensor],
                    packed: bool = False) -> None:
    """Write ``model`` and ``voices`` as a model directory, atomically: ``dest`` appears whole
    or not at all (written beside it under a temporary name, then renamed). ``packed`` writes
    the checkpoint palette-coded."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(dest)
    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / VOICES_DIR).mkdir(parents=True)
        (tmp / CONFIG_FILE).write_text(json.dumps(model.config.to_dict(), indent=2,
                                                  ensure_ascii=False), encoding="utf-8")
        checkpoint = checkpoint_from_model(model)
        if packed:
            torch.save(palette.pack(checkpoint), tmp / PACKED_FILE)
        else:
            torch.save(checkpoint, tmp / WEIGHTS_FILE)
        for name, pack in voices.items():
            torch.save(pack.detach().cpu().float().contiguous(), tmp / VOICES_DIR / f"{name}.pt")
        _fsync_tree(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not weights_path(dest).is_file():  # not a concurrent writer that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_partials(dest: Path) -> None:
    """Remove what interrupted writers of ``dest`` left behind (their process is gone)."""
    for stale in dest.parent.glob(f".{dest.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def load_model_dir(path: Path, device: str | torch.device = "cpu") -> KModel:
    """Build a KModel from ``path/config.json`` and load its checkpoint strictly."""
    if not path.is_dir():
        raise ModelFileError(f"model directory not found: {path}")
    model = KModel(KModelConfig.from_file(path / CONFIG_FILE))
    load_state(model, read_checkpoint(weights_path(path)))
    return model.to(device).eval()
