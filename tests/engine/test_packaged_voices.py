"""The voice packs shipped with realtime: all 41 official v1.0 packs, intact, float32."""

from __future__ import annotations

import hashlib

import numpy as np

from realtime.voice_names import voice_info
from realtime.weights.voices import packaged_voices

# sha256 over the names and raw float32 bytes of every pack, in name order: the archive holds
# exactly what scripts/pack_voices.py read from the .pt files listed in data/VOICES.md.
CONTENT_SHA256 = "abe719b8a72787dc55bb88a6b180e6c03d388bb62a573c30e92f0727314c7b31"
FAMILIES = {"American English": 20, "British English": 8, "Spanish": 3, "French": 1,
            "Hindi": 4, "Italian": 2, "Brazilian Portuguese": 3}


def content_digest(packs: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(packs):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(packs[name], dtype="<f4").tobytes())
    return digest.hexdigest()


def test_the_41_packs_are_shipped_intact() -> None:
    packs = packaged_voices()
    assert len(packs) == 41 and "af_heart" in packs
    for name, pack in packs.items():
        assert pack.shape == (510, 1, 256) and pack.dtype == np.float32, name
        assert np.isfinite(pack).all(), name
        assert 0.01 < float(np.abs(pack).mean()) < 10, name  # a style, not zeros or garbage
    counted: dict[str, int] = {}
    for name in packs:
        family = voice_info(name).family
        counted[family] = counted.get(family, 0) + 1
    assert counted == FAMILIES
    assert content_digest(packs) == CONTENT_SHA256
