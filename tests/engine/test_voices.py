"""Voice packs from .pt and .npz, rows by phoneme count, blends, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.engine.voices import VoiceLibrary, parse_blend
from realtime.errors import ModelFileError, VoiceError


@pytest.fixture
def lib(tmp_path: Path) -> VoiceLibrary:
    a = torch.arange(510, dtype=torch.float32).view(510, 1, 1).expand(510, 1, 256).clone()
    torch.save(a, tmp_path / "aa.pt")
    np.savez(tmp_path / "more.npz", bb=np.ones((510, 1, 256), np.float32) * -3,
             cc=np.zeros((510, 256), np.float32))
    (tmp_path / "notes.txt").write_text("ignored")
    return VoiceLibrary.from_dir(tmp_path)


def test_loads_pt_and_npz(lib: VoiceLibrary) -> None:
    assert lib.names == ["aa", "bb", "cc"]


def test_row_is_chosen_by_phoneme_count(lib: VoiceLibrary) -> None:
    assert float(lib.style("aa", 1)[0]) == 0.0
    assert float(lib.style("aa", 42)[0]) == 41.0
    assert float(lib.style("aa", 10_000)[0]) == 509.0  # clamped to the last row
    assert lib.style("aa", 42).shape == (256,)


def test_blend_is_a_normalised_weighted_mean(lib: VoiceLibrary) -> None:
    got = lib.style("aa(2)+bb(1)", 31)
    assert torch.allclose(got, torch.full((256,), (2 * 30 + 1 * -3) / 3))
    assert torch.allclose(lib.style("aa + bb", 31), torch.full((256,), (30 - 3) / 2))
    assert torch.allclose(lib.style("aa(0.5)+bb(0.5)", 31), lib.style("aa+bb", 31))


def test_unknown_voice_lists_the_known(lib: VoiceLibrary) -> None:
    with pytest.raises(VoiceError, match="unknown voice 'zz'; known voices: aa, bb, cc"):
        lib.pack("aa(1)+zz(1)")


@pytest.mark.parametrize("spec", ["", "aa(", "aa(-1)", "aa(0)", "a a", "aa++bb"])
def test_bad_blend_syntax(spec: str) -> None:
    with pytest.raises(VoiceError):
        parse_blend(spec)


def test_bad_packs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="shape"):
        VoiceLibrary({"x": torch.zeros(510, 2, 256)})
    with pytest.raises(ModelFileError, match="NaN"):
        VoiceLibrary({"x": torch.full((510, 1, 256), float("nan"))})
    (tmp_path / "broken.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="corrupt"):
        VoiceLibrary.from_dir(tmp_path)
    with pytest.raises(ModelFileError, match="no voice packs"):
        VoiceLibrary.from_dir(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)
