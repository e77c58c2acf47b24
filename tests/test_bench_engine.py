"""The engine benchmark's harness on the tiny model (the figures come from the real model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from realtime.bench.engine import engine_report, run_engine_bench, write_outputs
from realtime.engine.plan import WindowPlan
from realtime.weights.registry import LoadedModel
from realtime.weights.voices import VoiceLibrary
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def lm() -> LoadedModel:
    voices = VoiceLibrary({"v": torch.randn(510, 1, 32)}, style_width=32)
    return LoadedModel("tiny", Path("."), tiny_model(), voices, "v")


def test_bench_levels_json_and_plot(lm: LoadedModel, tmp_path: Path) -> None:
    result = run_engine_bench(lm, ["hɛlo.", "ðə kwɪk baʊn fɑks, ænd mɔ."], [1, 3], chunks=2,
                              threads=1, onnx=False)
    levels = result["levels"]
    assert isinstance(levels, list)
    assert [(lv["mode"], lv["concurrency"]) for lv in levels] == [
        ("sequential", 1), ("sequential", 3), ("batched", 1), ("batched", 3)]
    for lv in levels:
        assert lv["chunks"] == 2 * lv["concurrency"]
        assert lv["audio_s"] > 0 and lv["throughput"] > 0
        assert lv["latency_p95_ms"] >= lv["latency_p50_ms"] > 0
        assert lv["first_max_overtaken"] >= 0 and lv["first_max_waited_batches"] >= 0
    assert all(lv["mean_batch"] == 1.0 for lv in levels if lv["mode"] == "sequential")
    assert "sequential" in engine_report(result)
    write_outputs(result, tmp_path / "b.json", tmp_path / "b.png")
    assert json.loads((tmp_path / "b.json").read_text())["levels"][0]["mode"] == "sequential"
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_with_windows_reports_first_audio(lm: LoadedModel) -> None:
    """The batched mode in windows: the first piece comes before the whole first chunk, and
    every chunk's audio still comes back whole."""
    long = "ðə kwɪk baʊn fɑks, ænd mɔ wədz ðæn ðæt, ænd ə fu mɔ æftə ðæt."
    plan = WindowPlan(first_s=0.03, later_s=0.06, margin_s=0.01, fade_ms=4.0)
    plain = run_engine_bench(lm, [long], [4], chunks=1, threads=1, onnx=False,
                             sequential=False)
    windowed = run_engine_bench(lm, [long], [4], chunks=1, threads=1, onnx=False,
                                sequential=False, windows=plan)
    assert windowed["windows"] == {"first_s": 0.03, "later_s": 0.06}
    (a,), (b,) = plain["levels"], windowed["levels"]  # type: ignore[misc]
    assert b["audio_s"] == pytest.approx(a["audio_s"])
    # Whole chunks: the first audio is the whole first chunk (two clock reads apart).
    assert a["first_audio_p95_ms"] == pytest.approx(a["first_p95_ms"], abs=5)
    assert b["first_audio_p95_ms"] < b["first_p95_ms"]
    assert b["mean_batch"] > 1  # the sessions' windows ran together
