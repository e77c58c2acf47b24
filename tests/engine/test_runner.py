"""The model runner on the tiny model: batched requests, dtypes, warm-up, through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.bench.quality import mel_distance_db
from realtime.engine.buckets import Buckets
from realtime.engine.loop import Engine
from realtime.engine.plan import Kernels
from realtime.engine.policy import EDFPolicy
from realtime.engine.request import ChunkRequest
from realtime.engine.runner.runner import ModelRunner
from realtime.errors import ConfigError, InputError, VoiceError
from realtime.weights.registry import LoadedModel
from tests.conftest import tiny_loaded


@pytest.fixture(scope="module")
def lm() -> LoadedModel:
    return tiny_loaded()


# Only symbols of the tiny vocab.
TEXTS = ["hɛlo.", "ðə kwɪk baʊn fɑks", "a", "sʌmtɪŋ lɑŋə ðæn ðə ʌðəz, wɪð ə kɑmə ænd mɔ wədz."]


def reqs(texts: list[str]) -> list[ChunkRequest]:
    return [ChunkRequest("s", f"c{i}", t, "a" if i % 2 else "b", 0.0, speed=1.0 + 0.1 * i)
            for i, t in enumerate(texts)]


@pytest.mark.parametrize("graphs", [None, Buckets(rows=(1, 2, 8), tokens=(16, 64),
                                                  frames=(32, 128, 512), max_cells=1024)],
                         ids=["own-shape", "buckets"])
def test_batch_equals_one_by_one(lm: LoadedModel, graphs: Buckets | None) -> None:
    rs = reqs(TEXTS)
    runner = ModelRunner(lm, "float32", graphs)  # the calibrated bound is float32's
    together = sorted(runner.run(rs), key=lambda out: out[0])
    assert [i for i, _, _ in together] == list(range(len(rs)))
    for r, (_, audio, durations) in zip(rs, together, strict=True):
        ((_, alone_audio, alone_dur),) = list(ModelRunner(lm, "float32").run([r]))
        assert np.array_equal(durations, alone_dur)
        assert audio.dtype == np.float32 and audio.shape == alone_audio.shape
        assert mel_distance_db(audio, alone_audio) <= 0.05


def test_prepare_validates(lm: LoadedModel) -> None:
    runner = ModelRunner(lm)
    with pytest.raises(InputError, match="'Q'"):
        runner.prepare(ChunkRequest("s", "c", "hQ", "a", 0.0))
    with pytest.raises(VoiceError):
        runner.prepare(ChunkRequest("s", "c", "hɛlo", "nobody", 0.0))
    with pytest.raises(InputError):
        runner.prepare(ChunkRequest("s", "c", "hɛlo", "a", 0.0, speed=0.0))


def test_bfloat16_autocast_close_to_float32(lm: LoadedModel) -> None:
    """The half-precision path (CUDA's float16 in production) exercised on the CPU."""
    (r,) = [x for x in reqs(TEXTS) if x.context == "c1"]
    ((_, ref, _),) = list(ModelRunner(lm, "float32").run([r]))
    ((_, got, _),) = list(ModelRunner(lm, dtype="bfloat16").run([r]))
    assert got.shape == ref.shape and np.isfinite(got).all()
    corr = float(np.corrcoef(ref, got)[0, 1])
    assert corr > 0.9


def test_dtype_checked(lm: LoadedModel) -> None:
    with pytest.raises(ConfigError):
        ModelRunner(lm, dtype="float16")  # CPU
    with pytest.raises(ConfigError):
        ModelRunner(lm, dtype="int4")  # type: ignore[arg-type]


def test_engine_with_model(lm: LoadedModel) -> None:
    eng = Engine(ModelRunner(lm), EDFPolicy(max_batch=4))
    eng.start()  # with warm-up
    try:
        futs = [eng.submit(r) for r in reqs(TEXTS)[:2]]
        out = [f.result(60) for f in futs]
        assert all(o.audio.size == int(o.durations.sum()) * lm.model.config.frame_samples
                   for o in out)
    finally:
        eng.stop()


def test_cpu_warm_up_runs_one_short_chunk(lm: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU the warm-up is one short chunk (the padded batch of two cost seconds of start
    and gained the first request nothing; docs/engine.md)."""
    runner = ModelRunner(lm, "float32")
    batches: list[list[str]] = []
    run = runner.run

    def counting(batch):  # type: ignore[no-untyped-def]
        batches.append([r.phonemes for r in batch])
        return run(batch)

    monkeypatch.setattr(runner, "run", counting)
    runner.warm_up()
    assert len(batches) == 1 and len(batches[0]) == 1 and len(batches[0][0]) <= 8


def test_cpu_fused_norms_switch_the_model_and_need_a_compiler(
        lm: LoadedModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``cpu_fused_norms`` (EngineConfig.cpu_fused_norms, on by default; off for the suite's
    tiny servers) sets every residual block's compiled row form, off turns it back off (the
    compile itself happens at the first forward: tests/engine/test_fused.py); with no C++
    compiler, or no Python headers, it is refused, saying what is missing and what to do."""
    from realtime.config import EngineConfig
    from realtime.engine.runner import runner
    from realtime.engine.runner.runner import cpu_compile_missing, cxx_compiler
    from realtime.model.decoder import AdaINResBlock1

    assert EngineConfig().cpu_fused_norms
    blocks = [m for m in lm.model.modules() if isinstance(m, AdaINResBlock1)]
    try:
        if cpu_compile_missing() is None:
            fused = Kernels(cpu_fused_norms=True)
            assert ModelRunner(lm, "float32", kernels=fused).cpu_fused_norms
            assert blocks and all(b.fused_rows is not None for b in blocks)
        assert not ModelRunner(lm, "float32").cpu_fused_norms
        assert all(b.fused_rows is None for b in blocks)
        if cxx_compiler() is not None:  # a compiler but no Python.h (a bare Debian python3)
            monkeypatch.setattr(runner.sysconfig, "get_paths",
                                lambda: {"include": str(tmp_path)})
            with pytest.raises(ConfigError, match=r"Python\.h.*python3-dev"):
                ModelRunner(lm, "float32", kernels=Kernels(cpu_fused_norms=True))
        monkeypatch.setenv("CXX", "/nonexistent/c++")
        assert cxx_compiler() is None
        with pytest.raises(ConfigError, match=r"C\+\+ compiler.*REALTIME_CPU_FUSED_NORMS=0"):
            ModelRunner(lm, "float32", kernels=Kernels(cpu_fused_norms=True))
    finally:
        lm.model.fuse_row_norms(None)


def test_cpu_fft_switches_the_models_wide_convolutions(lm: LoadedModel,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``cpu_fft`` (EngineConfig.cpu_fft, on by default) sets every layer of the model and, on,
    computes the spectra at start (the tiny model's layers only count as wide with the
    thresholds lowered); under bfloat16 autocast the FFT path is not taken, so nothing is
    kept for it."""
    from realtime.config import EngineConfig
    from realtime.model import layers

    assert EngineConfig().cpu_fft
    lm.model.use_fft_convs(convs=layers.CpuConvs(fft_taps=3, fft_channels=1))
    convs = [m for m in lm.model.modules() if isinstance(m, layers.WNConv1d)]
    try:
        ModelRunner(lm, "float32", kernels=Kernels(cpu_fft=False))
        assert not any(c.fft or c._spectra for c in convs)
        ModelRunner(lm, "float32")
        assert all(c.fft for c in convs)
        assert sum(bool(c._spectra) for c in convs) > 10
        ModelRunner(lm, "bfloat16")
        assert not any(c._spectra for c in convs)
    finally:
        lm.model.use_fft_convs(True, layers.CPU_CONVS)
