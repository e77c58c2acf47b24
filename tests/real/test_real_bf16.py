"""bfloat16 on a CPU with bfloat16 arithmetic (the server's default there): Whisper hears the
same words as in float32, and the audio stays within the bound docs/engine.md gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from realtime.bench.quality import mel_distance_db
from realtime.engine.runner.runner import native_bf16
from tests.real.conftest import Transcriber, normalise

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not native_bf16(), reason="no bfloat16 arithmetic here")]

PHONEMES = json.loads((Path(__file__).parents[2] / "scripts" / "gpu_check_phonemes.json")
                      .read_text(encoding="utf-8"))
TEXTS = [t for t in PHONEMES if len(PHONEMES[t]) > 40][:5]
MEL_BOUND_DB = 2.0  # measured 0.84-1.06 dB per sentence (docs/engine.md)


def test_bf16_sounds_like_float32(real, transcribe: Transcriber,  # type: ignore[no-untyped-def]
                                  tmp_path: Path) -> None:
    model = real.model
    for n, text in enumerate(TEXTS):
        ids = model.phonemes_to_ids(PHONEMES[text])
        item = model.item(ids, real.voices.style("af_heart", len(ids)))
        full = model.forward_batch([item])[0]
        with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
            half = model.forward_batch([item])[0]
        assert torch.equal(half.durations, full.durations)  # the text side stays float32
        distance = mel_distance_db(half.audio.numpy(), full.audio.numpy())
        print(f"\n{len(full.audio) / 24000:.1f} s: bfloat16 {distance:.2f} dB from float32")
        assert distance <= MEL_BOUND_DB
        assert normalise(transcribe(half.audio.numpy(), tmp_path, f"h{n}")) == normalise(
            transcribe(full.audio.numpy(), tmp_path, f"f{n}"))
