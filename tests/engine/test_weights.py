"""The official checkpoint layout: strict loading, clear errors, compatible writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from realtime.errors import ConfigError, ModelFileError, StateDictMismatch
from realtime.model import KModel, KModelConfig
from realtime.weights.checkpoint import (
    CONFIG_FILE,
    VOICES_DIR,
    WEIGHTS_FILE,
    load_model_dir,
    read_checkpoint,
    write_model_dir,
)
from realtime.weights.voices import VoiceLibrary
from tests.conftest import tiny_model


def _voices(model: KModel) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {"v_one": torch.randn(510, 1, 2 * model.config.style_dim, generator=g),
            "v_two": torch.randn(510, 1, 2 * model.config.style_dim, generator=g)}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model = tiny_model(seed=5)
    dest = tmp_path / "tiny-model"
    write_model_dir(dest, model, _voices(model))
    return dest


def test_written_dir_is_in_the_official_layout(model_dir: Path) -> None:
    assert sorted(p.name for p in model_dir.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE, VOICES_DIR]
    raw = torch.load(model_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert sorted(raw) == sorted(KModel.PARTS)
    for part, sd in raw.items():
        assert all(k.startswith("module.") for k in sd), part
    assert "module.cnn.0.0.weight_g" in raw["text_encoder"]
    assert "module.cnn.0.0.weight_v" in raw["text_encoder"]
    assert "module.pooler.weight" in raw["bert"]
    pack = torch.load(model_dir / VOICES_DIR / "v_one.pt", weights_only=True)
    assert pack.shape == (510, 1, 32)
    assert json.loads((model_dir / CONFIG_FILE).read_text())["hidden_dim"] == 32


def test_round_trip_loads_strictly_and_speaks_the_same(model_dir: Path) -> None:
    original = tiny_model(seed=5)
    loaded = load_model_dir(model_dir)
    for part in KModel.PARTS:
        a, b = getattr(original, part).state_dict(), getattr(loaded, part).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    style = torch.randn(32)
    assert torch.equal(original("ab ab.", style).audio, loaded("ab ab.", style).audio)


def _rewrite(model_dir: Path, edit) -> None:  # type: ignore[no-untyped-def]
    raw = torch.load(model_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    edit(raw)
    torch.save(raw, model_dir / WEIGHTS_FILE)


def test_removed_tensor_is_named(model_dir: Path) -> None:
    _rewrite(model_dir, lambda raw: raw["decoder"].pop("module.generator.conv_post.weight_v"))
    with pytest.raises(StateDictMismatch, match=r"missing: generator\.conv_post\.weight_v") as e:
        load_model_dir(model_dir)
    assert e.value.part == "decoder"


def test_renamed_tensor_is_named_both_ways(model_dir: Path) -> None:
    def rename(raw: dict) -> None:  # type: ignore[type-arg]
        raw["predictor"]["module.F0_proj.weights"] = raw["predictor"].pop("module.F0_proj.weight")

    _rewrite(model_dir, rename)
    with pytest.raises(StateDictMismatch) as e:
        load_model_dir(model_dir)
    assert e.value.missing == ["F0_proj.weight"]
    assert e.value.unexpected == ["module.F0_proj.weights"]


def test_wrong_shape_is_named(model_dir: Path) -> None:
    _rewrite(model_dir, lambda raw: raw["bert_encoder"].update(
        {"module.bias": torch.zeros(7)}))
    with pytest.raises(StateDictMismatch, match=r"wrong shape: bias \(7,\)"):
        load_model_dir(model_dir)


def test_identity_adain_affine_is_accepted_other_values_are_not(model_dir: Path) -> None:
    key = "module.encode.norm1.norm.weight"
    _rewrite(model_dir, lambda raw: raw["decoder"].update({key: torch.ones(34)}))
    load_model_dir(model_dir)
    _rewrite(model_dir, lambda raw: raw["decoder"].update({key: torch.full((34,), 2.0)}))
    with pytest.raises(ModelFileError, match="not the identity"):
        load_model_dir(model_dir)


def test_keys_without_module_prefix_also_load(model_dir: Path) -> None:
    _rewrite(model_dir, lambda raw: raw.update(
        {p: {k.removeprefix("module."): v for k, v in sd.items()} for p, sd in raw.items()}))
    load_model_dir(model_dir)


@pytest.mark.parametrize("cut", [0, 100, 0.5])
def test_truncated_checkpoint_gives_a_clear_error(model_dir: Path, cut: float) -> None:
    path = model_dir / WEIGHTS_FILE
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        read_checkpoint(path)


def test_missing_part_and_missing_file(model_dir: Path, tmp_path: Path) -> None:
    _rewrite(model_dir, lambda raw: raw.pop("predictor"))
    with pytest.raises(StateDictMismatch, match="missing: predictor"):
        load_model_dir(model_dir)
    with pytest.raises(ModelFileError, match="not found"):
        load_model_dir(tmp_path / "nowhere")


def test_config_errors_are_clear(model_dir: Path) -> None:
    raw = json.loads((model_dir / CONFIG_FILE).read_text())
    del raw["n_token"]
    (model_dir / CONFIG_FILE).write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="n_token"):
        load_model_dir(model_dir)
    (model_dir / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model_dir(model_dir)


def test_config_round_trip_keeps_everything() -> None:
    from tests.conftest import tiny_config

    cfg = tiny_config(dim_in=64, multispeaker=True)
    again = KModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.extra == {"dim_in": 64, "multispeaker": True}


def test_voices_of_the_written_dir_load(model_dir: Path) -> None:
    lib = VoiceLibrary.from_dir(model_dir / VOICES_DIR, style_width=32)
    assert lib.names == ["v_one", "v_two"]
