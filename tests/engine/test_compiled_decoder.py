"""The decoder over padded batches compiled as one graph (``KModel.compile_decoder``,
``Kernels(compile_decoder=True)``), and the generator over padded batches of windows: the
same audio as eagerly, one compile for batches of other shapes, padding still silent, and
only padded batches through it. Traced with aot_eager or dynamo alone (no compiler needed, the graph
inductor would get; inductor's own figures: docs/lab/2026-12-06-compiled-decoder.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest
import torch

from realtime.bench.quality import mel_distance_db
from realtime.config import EngineConfig
from realtime.engine.buckets import Buckets
from realtime.engine.plan import Kernels
from realtime.engine.runner.graphs import StaticForward
from realtime.engine.runner.local import start_engine
from realtime.engine.runner.runner import ModelRunner
from realtime.errors import ConfigError
from realtime.model import KModel
from realtime.model.layers import WeightNormed
from realtime.weights.tiny import TINY_CONFIG
from tests.conftest import quiet_tiny_model, tiny_config, tiny_loaded
from tests.engine.test_batch import bound, decode_together, items, mel


def lean_model() -> KModel:
    """The tiny model with one residual block of two dilations per generator stage (a third
    of its residual blocks' layers): every kind of layer for dynamo to trace, and these tests'
    time is the trace (19 s against 27 s); a quiet output layer as ``quiet_tiny_model``'s."""
    torch.manual_seed(3)
    istft = {**cast(dict[str, object], TINY_CONFIG["istftnet"]),
             "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]]}
    model = KModel(tiny_config(istftnet=istft)).eval()
    with torch.no_grad():
        model.decoder.generator.conv_post.weight_g.mul_(0.05)
    return model


def counting(calls: list[int], inner_name: str = "aot_eager") -> Callable[..., Any]:
    """A backend (aot_eager by default), counting the graphs it is given (one per compile)."""
    from torch._dynamo.backends.registry import lookup_backend

    inner = lookup_backend(inner_name)

    def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        calls.append(1)
        return inner(gm, example_inputs)
    return backend


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, inside dynamo
def test_a_compiled_decoder_sounds_the_same_for_every_shape() -> None:
    """Batches of 4 and 8 rows with other frame buckets: one compile (a CPU's convolutions
    pick their kernels by batch size, so rows stay within 2-15 here), identical durations,
    audio within the batched-vs-alone floor of the eager decoder's (aot_eager: measured 0 dB);
    a row's audio does not move when its neighbours change; a batch of one row and a batch
    with noise seeds run eagerly (no compile); off again, the weights are thawed."""
    model = lean_model()
    static = StaticForward(model, Buckets(rows=(2, 4, 8), tokens=(16, 64, 256),
                                          frames=(32, 128, 512, 1024), max_cells=8192))
    a, b = items(model, [30, 2, 9], seed=4), items(model, [200, 60, 5, 17, 40], seed=5)
    with torch.inference_mode():
        plain = static.forward_batch(a) + static.forward_batch(b)
    calls: list[int] = []
    torch._dynamo.reset()
    model.compile_decoder(counting(calls))
    try:
        assert model.decoder_compiled
        with torch.inference_mode():
            compiled = static.forward_batch(a) + static.forward_batch(b)
            neighbours = static.forward_batch([a[0], *b[1:3]])
            (alone,) = model.forward_batch(a[:1])
            seeded = model.forward_batch(items(model, [12, 40], seed=6, noise=True))
        assert len(calls) == 1
    finally:
        model.compile_decoder(None)
    assert not model.decoder_compiled
    assert all(m.frozen is None for m in model.modules() if isinstance(m, WeightNormed))
    for p, c in zip(plain, compiled, strict=True):
        assert torch.equal(p.durations, c.durations)
        assert p.audio.shape == c.audio.shape
        assert mel(p.audio, c.audio) <= bound(0.0)
    assert torch.equal(neighbours[0].durations, compiled[0].durations)
    assert mel(neighbours[0].audio, compiled[0].audio) <= bound(0.0)
    with torch.inference_mode():
        assert torch.equal(alone.audio, model.forward_batch(a[:1])[0].audio)
        again = model.forward_batch(items(model, [12, 40], seed=6, noise=True))
    assert all(torch.equal(x.audio, y.audio) for x, y in zip(seeded, again, strict=True))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, inside dynamo
def test_windows_run_the_compiled_generator() -> None:
    """With windows, each padded batch of windows (chunks started at different times, at
    different windows) runs the compiled generator: the same pieces as the eager windows'
    within the batched-vs-alone floor. Traced by dynamo alone (the eager backend: the test's
    time is the trace). A CPU's convolutions pick their kernels by batch size (2-3 rows, 4-15),
    so the batches here, 1 to 5 rows, compile at most twice (a window alone is unpadded and
    runs eagerly)."""
    model = lean_model()
    batch = items(model, [40, 5, 160, 12, 75], seed=5)
    plain = decode_together(model, batch[:3], batch[3:])
    calls: list[int] = []
    torch._dynamo.reset()
    model.compile_decoder(counting(calls, "eager"))
    try:
        compiled = decode_together(model, batch[:3], batch[3:])
    finally:
        model.compile_decoder(None)
    assert 1 <= len(calls) <= 2
    for p, c in zip(plain, compiled, strict=True):
        assert [len(x.audio) for x in p] == [len(x.audio) for x in c]
        joined, own = (np.concatenate([x.audio for x in ps]) for ps in (c, p))
        assert mel_distance_db(joined, own) <= bound(0.0)
    assert max(len(ps) for ps in compiled) >= 4


def test_it_freezes_the_weights_it_reads() -> None:
    model = quiet_tiny_model(seed=3)
    conv = model.decoder.generator.conv_post
    with torch.inference_mode():
        want = conv.weight.clone()
    model.compile_decoder("eager")  # nothing is traced until a padded batch comes
    try:
        assert conv.frozen is not None and torch.equal(conv.frozen, want)
        assert conv.weight is conv.frozen
        text_side = [m for m in model.predictor.modules() if isinstance(m, WeightNormed)]
        assert text_side and all(m.frozen is None for m in text_side)
    finally:
        model.compile_decoder(None)
    assert conv.frozen is None


def test_the_runner_refuses_what_it_cannot_compile() -> None:
    lm = tiny_loaded()
    with pytest.raises(ConfigError, match="drop fused_norms"):
        ModelRunner(lm, "float32", kernels=Kernels(compile_decoder=True, fused_norms=True))
    assert not lm.model.decoder_compiled
    with pytest.raises(ConfigError, match="never padded"):
        start_engine(lm, EngineConfig(device="cpu", warm_up=False),
                     kernels=Kernels(compile_decoder=True))


def test_a_compiling_runner_pads_one_row_to_two() -> None:
    """torch.compile specialises sizes of 1: the row buckets start at 2 (one compile)."""
    lm = tiny_loaded()
    runner = ModelRunner(lm, "float32", Buckets(rows=(1, 2, 4)),
                         kernels=Kernels(compile_decoder=True))
    try:
        assert runner.static is not None and runner.static.buckets.rows == (2, 4)
        assert lm.model.decoder_compiled
    finally:
        lm.model.compile_decoder(None)


def test_the_kernels_asked_for_reach_the_runner() -> None:
    """Off in every plan until a card decides (a runner option of the GPU check, no setting);
    kernels given to start_engine reach the runner (batches of two, windows off: nothing
    refused)."""
    from realtime.engine.plan import plan_engine

    assert not plan_engine(EngineConfig(), "cpu").kernels.compile_decoder
    assert not plan_engine(EngineConfig(), "cuda").kernels.compile_decoder
    lm = tiny_loaded()
    engine = start_engine(lm, EngineConfig(device="cpu", warm_up=False, max_batch=2,
                                           windows="off", cpu_fused_norms=False),
                          kernels=Kernels(compile_decoder=True))
    try:
        assert engine.runner.compile_decoder  # type: ignore[attr-defined]
        assert lm.model.decoder_compiled
    finally:
        engine.stop()
        lm.model.compile_decoder(None)
