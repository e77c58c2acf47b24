"""The decoder's norm-and-Snake pairs as one compiled expression (``KModel.fuse_norms``): the
same function as the eager masked norm and Snake, the same audio, compiled without a graph
break and, with inductor, without a recompile for new shapes. And the unpadded rows' eager
form (``row_norm_snake``, the CPU's batch of one): the same function as the instance norm and
Snake one after the other."""

from __future__ import annotations

import shutil

import pytest
import torch

from realtime.engine.model import KModel, decoder
from realtime.engine.model.decoder import _snake, norm_snake, row_norm_snake
from realtime.engine.model.layers import Pad, instance_norm
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


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="inductor on a CPU needs a C++ compiler")
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
