"""The decoder's norm-and-Snake pairs as one compiled expression (``KModel.fuse_norms``): the
same function as the eager masked norm and Snake, the same audio, compiled without a graph
break and, with inductor, without a recompile for new shapes. And the unpadded rows' eager
form (``row_norm_snake``, the CPU's batch of one): the same function as the instance norm and
Snake one after the other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.engine.plan import Kernels
from realtime.engine.runner.runner import cpu_compile_missing
from realtime.model import KModel, decoder
from realtime.model.decoder import (
    _snake,
    norm_snake,
    row_norm_snake,
    row_norm_snake_fused,
)
from realtime.model.kmodel import _compiled_rows
from realtime.model.layers import Pad, instance_norm
from tests.conftest import count_calls, quiet_tiny_model
from tests.engine.test_batch import bound, items, mel


def _inputs(rows: int, channels: int, width: int, seed: int,
            dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    # A large mean on some channels: the centred variance must hold there.
    x = (torch.randn(rows, channels, width, generator=g, dtype=torch.float64) * 2
         + torch.linspace(0, 300, channels, dtype=torch.float64).view(1, -1, 1))
    lengths = torch.randint(1, width + 1, (rows,), generator=g)
    lengths[0] = width
    gamma, beta = (torch.randn(rows, channels, 1, generator=g, dtype=torch.float64)
                   for _ in range(2))
    alpha = torch.rand(1, channels, 1, generator=g, dtype=torch.float64) + 0.2
    return x.to(dtype), lengths, gamma.to(dtype), beta.to(dtype), alpha.to(dtype)


def _eager(x: torch.Tensor, lengths: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
           alpha: torch.Tensor) -> torch.Tensor:
    return _snake(instance_norm(x, Pad(lengths, x.shape[2]), gamma, beta), alpha)


def test_norm_snake_is_the_masked_norm_then_snake() -> None:
    for seed, (rows, channels, width) in enumerate([(3, 8, 50), (5, 16, 300), (1, 4, 7)]):
        args = _inputs(rows, channels, width, seed)
        exact = _eager(*(a.double() if a.is_floating_point() else a for a in args))
        pad = Pad(args[1], width)
        fused = norm_snake(args[0], pad.keep, pad.inv_count, *args[2:])
        eager = _eager(*args)
        for got in (fused, eager):
            assert got.dtype == torch.float32
            assert float((got.double() - exact).abs().max()) <= 1e-4 * float(exact.abs().max())
        assert torch.all(fused[pad.mask.expand_as(fused)] == 0)


def test_half_in_half_out() -> None:
    args = _inputs(2, 8, 40, 9)
    x16 = args[0].half()
    pad = Pad(args[1], 40)
    out = norm_snake(x16, pad.keep, pad.inv_count, args[2].half(), args[3].half(), args[4])
    assert out.dtype == torch.float16
    assert instance_norm(x16, pad, args[2].half(), args[3].half()).dtype == torch.float16


def _rows_then_snake(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
    return _snake(instance_norm(x, None, gamma, beta), alpha)


@pytest.mark.parametrize("shape", [(1, 8, 50), (3, 16, 300), (2, 4, 2)])
def test_row_norm_snake_is_the_norm_then_snake(shape: tuple[int, int, int]) -> None:
    """Against the instance norm then Snake in float64: to float64 rounding in float64, and in
    float32 within 1e-5 of the output's scale (the two-step form's own float32 error there is
    about 6e-6), also on channels whose mean dwarfs their spread."""
    x, _, gamma, beta, alpha = _inputs(*shape, seed=sum(shape), dtype=torch.float64)
    exact = _rows_then_snake(x, gamma, beta, alpha)
    scale = float(exact.abs().max())
    got64 = row_norm_snake(x, gamma, beta, alpha)
    assert got64.dtype == torch.float64
    assert float((got64 - exact).abs().max()) <= 1e-10 * scale
    got32 = row_norm_snake(*(a.float() for a in (x, gamma, beta, alpha)))
    assert got32.dtype == torch.float32
    assert float((got32.double() - exact).abs().max()) <= 1e-5 * scale


def test_row_norm_snake_dtypes() -> None:
    """float16 in, float16 out; bfloat16's sine in float32 (as ``_snake``): float32 out."""
    x, _, gamma, beta, alpha = _inputs(2, 8, 40, seed=5)
    assert row_norm_snake(x.half(), gamma.half(), beta.half(), alpha).dtype == torch.float16
    out = row_norm_snake(x.bfloat16(), gamma.bfloat16(), beta.bfloat16(), alpha)
    assert out.dtype == torch.float32
    assert _rows_then_snake(x.bfloat16(), gamma.bfloat16(), beta.bfloat16(),
                            alpha).dtype == torch.float32


def test_a_row_alone_takes_it_and_sounds_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """An item alone (no padding) runs every pair of the generator through ``row_norm_snake``,
    and its audio is the two-step form's within the batched-vs-alone floor (float rounding:
    measured 0.0003 dB), with identical durations."""
    model = quiet_tiny_model(seed=3)
    (it,) = items(model, [40], seed=6)
    pairs = sum(2 * len(block.convs1) for block in model.modules()
                if isinstance(block, decoder.AdaINResBlock1))
    calls = count_calls(monkeypatch, decoder, "row_norm_snake")
    (fast,) = model.forward_batch([it])
    assert len(calls) == pairs
    monkeypatch.setattr(decoder, "row_norm_snake", _rows_then_snake)
    (plain,) = model.forward_batch([it])
    assert torch.equal(fast.durations, plain.durations)
    assert fast.audio.shape == plain.audio.shape
    assert mel(fast.audio, plain.audio) <= bound(0.0)


def test_the_fused_row_form_is_the_eager_one() -> None:
    """``row_norm_snake_fused`` (the expression the CPU's compiled kernels are made from)
    against ``row_norm_snake``: to float64 rounding in float64, within 1e-5 of the output's
    scale in float32 (channels whose mean dwarfs their spread included), and in bfloat16 it
    returns bfloat16: the eager form's float32 result rounded, as the convolution after it
    rounds it under autocast (to half a bfloat16 step, at most 2^-8 of the value, plus float32's
    error)."""
    for seed, shape in enumerate([(1, 8, 50), (3, 16, 300), (2, 4, 2)]):
        x, _, gamma, beta, alpha = _inputs(*shape, seed=seed, dtype=torch.float64)
        want = row_norm_snake(x, gamma, beta, alpha)
        scale = float(want.abs().max())
        got = row_norm_snake_fused(x, gamma, beta, alpha)
        assert got.dtype == torch.float64
        assert float((got - want).abs().max()) <= 1e-10 * scale
        f32 = [a.float() for a in (x, gamma, beta, alpha)]
        got = row_norm_snake_fused(*f32)
        assert got.dtype == torch.float32
        assert float((got.double() - want).abs().max()) <= 1e-5 * scale
        b16 = [a.bfloat16() for a in f32[:3]] + [f32[3]]
        eager = row_norm_snake(*b16)
        got = row_norm_snake_fused(*b16)
        assert got.dtype == torch.bfloat16 and eager.dtype == torch.float32
        err = (got.float() - eager).abs()
        assert torch.all(err <= eager.abs() * 2.0 ** -8 + 1e-5 * float(eager.abs().max()))


def test_a_row_alone_runs_the_fused_form_and_sounds_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``fuse_row_norms`` (traced by aot_eager: no compiler needed) an item alone runs
    no pair eagerly, and its audio is the eager model's within the batched-vs-alone floor,
    with identical durations; None turns it off again."""
    model = quiet_tiny_model(seed=3)
    (it,) = items(model, [40], seed=6)
    (plain,) = model.forward_batch([it])
    torch._dynamo.reset()
    _compiled_rows.cache_clear()
    model.fuse_row_norms("aot_eager")
    try:
        calls = count_calls(monkeypatch, decoder, "row_norm_snake")
        (fused,) = model.forward_batch([it])
        assert calls == []
    finally:
        model.fuse_row_norms(None)
        _compiled_rows.cache_clear()
    assert all(block.fused_rows is None for block in model.modules()
               if isinstance(block, decoder.AdaINResBlock1))
    assert torch.equal(fused.durations, plain.durations)
    assert fused.audio.shape == plain.audio.shape
    assert mel(fused.audio, plain.audio) <= bound(0.0)


@pytest.fixture
def fresh() -> KModel:
    return quiet_tiny_model(seed=3)


def test_a_fused_model_sounds_the_same(fresh: KModel) -> None:
    """Traced (the aot_eager backend: no compiler needed), batched, against the eager model:
    identical durations, audio within the batched-vs-alone bound, padding still silent."""
    batch = items(fresh, [30, 2, 9, 230, 60], seed=4)
    plain = fresh.forward_batch(batch)
    torch._dynamo.reset()
    fresh.fuse_norms("aot_eager")
    fused = fresh.forward_batch(batch)
    fresh.fuse_norms(None)
    for a, b in zip(plain, fused, strict=True):
        assert torch.equal(a.durations, b.durations)
        assert a.audio.shape == b.audio.shape
        assert mel(a.audio, b.audio) <= bound(0.0)


@pytest.mark.skipif(cpu_compile_missing() is not None,
                    reason="inductor on a CPU needs a C++ compiler and Python's headers")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, inside inductor
def test_inductor_fuses_it_for_every_shape_at_once() -> None:
    """One compile (dynamic shapes) for every batch shape, output as eager."""
    torch._dynamo.reset()
    compiled = torch.compile(norm_snake, dynamic=True, fullgraph=True)
    from torch._dynamo.utils import counters

    counters.clear()
    for seed, shape in enumerate([(3, 8, 50), (5, 16, 300), (2, 8, 77)]):
        args = _inputs(*shape, seed=seed)
        pad = Pad(args[1], shape[2])
        got = compiled(args[0], pad.keep, pad.inv_count, *args[2:])
        want = norm_snake(args[0], pad.keep, pad.inv_count, *args[2:])
        assert float((got - want).abs().max()) <= 1e-4 * float(want.abs().max())
    assert counters["stats"]["unique_graphs"] == 1


@pytest.mark.skipif(cpu_compile_missing() is not None,
                    reason="inductor on a CPU needs a C++ compiler and Python's headers")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, inside inductor
def test_inductor_fuses_the_row_form_once_per_dtype() -> None:
    """The CPU's compiled row form (what ``REALTIME_CPU_FUSED_NORMS`` runs): one compile for every
    width and channel count (windows and the generator's stages differ in both); in float32
    within 3e-5 of the output's scale of the float64 result (measured 0.5-1.5e-5, the eager
    form 0.4-0.9e-5: the kernels sum and take the sine in another order); bfloat16 in,
    bfloat16 out."""
    torch._dynamo.reset()
    _compiled_rows.cache_clear()
    compiled = _compiled_rows("inductor")
    from torch._dynamo.utils import counters

    counters.clear()
    for seed, shape in enumerate([(1, 8, 50), (1, 16, 300), (1, 4, 77)]):
        args = _inputs(*shape, seed=seed, dtype=torch.float64)
        exact = row_norm_snake(*args[:1], *args[2:])
        got = compiled(*(a.float() for a in args[:1] + args[2:]))
        assert got.dtype == torch.float32
        assert float((got.double() - exact).abs().max()) <= 3e-5 * float(exact.abs().max())
    assert counters["stats"]["unique_graphs"] == 1
    x, _, gamma, beta, alpha = _inputs(1, 8, 40, seed=7)
    assert compiled(x.bfloat16(), gamma.bfloat16(), beta.bfloat16(), alpha).dtype == \
        torch.bfloat16
    _compiled_rows.cache_clear()


@pytest.mark.skipif(cpu_compile_missing() is not None,
                    reason="inductor on a CPU needs a C++ compiler and Python's headers")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, inside inductor
def test_a_fused_runner_compiles_at_warm_up_and_never_after() -> None:
    """The server's CPU path (``Kernels(cpu_fused_norms=True)``, float32, windows): the
    warm-up compiles the kernels; chunks of other lengths, whole and in windows (slices in
    time, other widths, every stage's channel count), compile nothing more, and sound as the
    eager runner's (the batched-vs-alone floor) with identical durations. A guard that does
    not hold (a parameter's sizes, a stride) would compile per stage or per view and, past
    torch.compile's limit, fail a request."""
    from torch._dynamo.utils import counters

    from realtime.bench.quality import mel_distance_db
    from realtime.engine.request import ChunkRequest
    from realtime.engine.runner.runner import ModelRunner
    from tests.conftest import tiny_loaded
    from tests.engine.test_windows import FAST, LONG, SHORT

    torch._dynamo.reset()
    _compiled_rows.cache_clear()
    lm = tiny_loaded()
    reqs = [ChunkRequest("s", "c", text, "a", 0.0)
            for text in (SHORT, LONG, LONG[:30] + ".", LONG + " " + LONG)]
    want = [next(iter(ModelRunner(lm, "float32").run([r]))) for r in reqs]
    runner = ModelRunner(lm, "float32", None, FAST, kernels=Kernels(cpu_fused_norms=True))
    try:
        counters.clear()
        runner.warm_up()
        made = counters["stats"]["unique_graphs"]
        assert made >= 1
        for r, (_, audio, durations) in zip(reqs, want, strict=True):
            ((_, got, got_durations),) = runner.run([r])
            assert np.array_equal(got_durations, durations)
            assert mel_distance_db(got, audio) <= bound(0.0)
            (cursor,) = runner.start_windows([r])
            while not cursor.done:
                runner.next_pieces([cursor])
        assert counters["stats"]["unique_graphs"] == made
    finally:
        lm.model.fuse_row_norms(None)
        _compiled_rows.cache_clear()
