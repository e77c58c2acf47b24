"""Voice packs from .pt and .npz, rows by phoneme count, blends, errors."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from realtime.errors import ModelFileError, VoiceError
from realtime.weights.voices import VoiceLibrary, parse_blend


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


def test_blend_cache_is_bounded_and_keeps_recent_blends(lib: VoiceLibrary) -> None:
    first = lib.pack("aa(1)+bb(1)")
    for k in range(1, 80):
        lib.pack(f"aa({k})+bb(1)")
        assert lib.pack("aa(1)+bb(1)") is first  # in use, so never the one evicted
    assert len(lib._cache) == 64
    assert lib.pack("aa") is lib.packs["aa"]  # a plain name is never cached as a blend


class _Preempting(OrderedDict[str, torch.Tensor]):
    """A blend cache that gives up the GIL inside every operation (``sleep(0)``), so that the
    interleavings a free-threaded or unlucky run would hit happen here every time."""

    def __contains__(self, key: object) -> bool:
        time.sleep(0)
        found = super().__contains__(key)
        time.sleep(0)
        return found

    def __getitem__(self, key: str) -> torch.Tensor:
        time.sleep(0)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        time.sleep(0)
        return super().get(key, default)

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        time.sleep(0)
        super().__setitem__(key, value)

    def clear(self) -> None:
        time.sleep(0)
        super().clear()


def test_blends_are_safe_across_threads() -> None:
    """Engine threads read cached blends while a client's new blends push past the bound: no
    read may fail (the old check-then-get raised KeyError here) or give a wrong pack."""
    packs = {n: torch.full((510, 1, 8), float(i)) for i, n in enumerate(("aa", "bb", "cc"))}
    lib = VoiceLibrary(packs, style_width=8)
    lib._cache = _Preempting()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        k = 0
        try:
            while not stop.is_set():
                w = k % 3 + 1
                got = lib.style(f"aa({w})+cc(1)", 7)
                if not torch.allclose(got, torch.full((8,), 2.0 / (w + 1))):  # aa 0, cc 2
                    raise AssertionError(f"aa({w})+cc(1) gave {float(got[0])}")
                k += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def writer() -> None:
        try:
            for k in range(400):
                lib.pack(f"bb({k + 1})+cc(1)")
        finally:
            stop.set()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(lib._cache) <= 64


def test_info_reads_language_family_and_gender_from_names() -> None:
    lib = VoiceLibrary({n: torch.zeros(510, 1, 8) for n in ("af_heart", "em_alex", "jf_alpha",
                                                           "custom")}, style_width=8)
    got = {v.name: (v.language, v.family, v.gender) for v in lib.info()}
    assert got == {"af_heart": ("en-us", "American English", "female"),
                   "em_alex": ("es", "Spanish", "male"),
                   "jf_alpha": ("en-us", "Japanese", "female"),
                   "custom": ("en-us", "Other", "unknown")}
