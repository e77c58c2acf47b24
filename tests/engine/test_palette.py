"""Palette-coded checkpoints: every bit back, smaller where values repeat, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from realtime.errors import ModelFileError
from realtime.model import KModel
from realtime.weights import palette
from realtime.weights.checkpoint import (
    PACKED_FILE,
    WEIGHTS_FILE,
    load_model_dir,
    read_checkpoint,
    weights_path,
    write_model_dir,
)
from tests.conftest import tiny_model


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def _levels(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A dequantized-looking tensor: ``n`` levels times a scale, in random order."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, n, shape, generator=g).float() - n // 2
    return q * 0.0173


def test_each_kind_of_tensor_comes_back_bit_for_bit() -> None:
    int8_like = _levels(256, (64, 33), seed=1)
    int8_like[0, :3] = torch.tensor([-0.0, float("nan"), float("-inf")])  # 3 more values
    wide = _levels(300, (40, 50), seed=2)
    dense = torch.randn(2000, generator=torch.Generator().manual_seed(3))
    sd = {"int8_like": int8_like, "wide": wide, "dense": dense,
          "small": torch.tensor([1.5, -0.0]), "steps": torch.arange(5000)}
    packed = palette.pack({"decoder": sd})
    stored = packed["parts"]["decoder"]  # type: ignore[index]
    assert stored["int8_like"]["index"].dtype == torch.uint16  # 256 levels + 4 specials
    assert stored["wide"]["index"].dtype == torch.uint16
    assert stored["dense"] is dense and stored["small"] is sd["small"]
    assert stored["steps"] is sd["steps"]  # not float32: as it is
    back = palette.unpack(packed, Path("x"))["decoder"]
    for key, value in sd.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        assert torch.equal(_bits(back[key]), _bits(value)), key


def test_a_quantized_tensor_takes_a_byte_per_weight() -> None:
    t = _levels(256, (128, 128), seed=4)
    entry = palette.pack_tensor(t)
    assert isinstance(entry, dict) and entry["index"].dtype == torch.uint8
    assert entry["palette"].numel() <= 256
    assert torch.equal(palette.unpack_tensor(entry, "t"), t)


def _quantized_model() -> KModel:
    """The tiny model with every float weight on 255 levels, as the int8 export's are."""
    model = tiny_model(seed=5)
    with torch.no_grad():
        for p in model.parameters():
            scale = float(p.abs().max()) / 127 or 1.0
            p.copy_(torch.round(p / scale).clamp(-127, 127) * scale)
    return model


def test_a_packed_model_dir_loads_the_same_model_in_less_space(tmp_path: Path) -> None:
    model = _quantized_model()
    voices = {"v": torch.randn(510, 1, 2 * model.config.style_dim)}
    write_model_dir(tmp_path / "plain", model, voices)
    write_model_dir(tmp_path / "packed", model, voices, packed=True)
    assert weights_path(tmp_path / "packed").name == PACKED_FILE
    assert not (tmp_path / "packed" / WEIGHTS_FILE).exists()
    plain_size = (tmp_path / "plain" / WEIGHTS_FILE).stat().st_size
    assert (tmp_path / "packed" / PACKED_FILE).stat().st_size < 0.5 * plain_size
    loaded = load_model_dir(tmp_path / "packed")
    for part in KModel.PARTS:
        a, b = getattr(model, part).state_dict(), getattr(loaded, part).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(_bits(a[k]), _bits(b[k])) for k in a), part


def test_a_plain_checkpoint_wins_over_a_packed_one(tmp_path: Path) -> None:
    model = tiny_model(seed=5)
    write_model_dir(tmp_path / "m", model, {}, packed=True)
    assert weights_path(tmp_path / "m").name == PACKED_FILE
    torch.save({}, tmp_path / "m" / WEIGHTS_FILE)
    assert weights_path(tmp_path / "m").name == WEIGHTS_FILE


def _packed_file(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    raw = palette.pack({"decoder": {"w": _levels(256, (64, 64), seed=6)}})
    edit(raw)
    path = tmp_path / PACKED_FILE
    torch.save(raw, path)
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda raw: raw.update(format="realtime-palette-9"), "format 'realtime-palette-9'"),
    (lambda raw: raw["parts"]["decoder"]["w"].update(
        palette=raw["parts"]["decoder"]["w"]["palette"][:10].clone()), "past its palette of 10"),
    (lambda raw: raw["parts"]["decoder"]["w"].update(index=torch.zeros(3)), "uint8 or uint16"),
    (lambda raw: raw["parts"]["decoder"].update(w={"palette": torch.zeros(2)}),
     "neither a tensor"),
    (lambda raw: raw["parts"].update(decoder=[1, 2]), "not a state dict"),
])
def test_a_damaged_packed_file_is_named(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    path = _packed_file(tmp_path, edit)
    with pytest.raises(ModelFileError, match=message) as e:
        read_checkpoint(path)
    assert str(path) in str(e.value)
