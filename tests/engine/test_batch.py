"""One pass over the batch (tiny random-weight model, CPU, float32).

Equality, as docs/engine.md defines it: a batched item keeps its exact durations, and its audio
is within the log-mel distance that float ordering alone produces (the same item batched with
copies of itself: no padding, only other kernel shapes). A padding leak still fails loudly: a
row's samples may not move when its neighbours grow or change.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.bench.quality import mel_distance_db
from realtime.engine.plan import WindowPlan
from realtime.engine.runner.windows import Piece, decode_windows, next_pieces, start_windows
from realtime.model import KModel, SynthItem
from realtime.model import layers as model_layers
from tests.conftest import TINY_VOCAB, quiet_tiny_model

SYMBOLS = [c for c in TINY_VOCAB if c != " "]
SIZES = [[3, 200], [1, 90, 7], [40, 5, 160, 12, 75], [2, 120, 9, 33, 250, 60, 17, 4]]
# dB of mean absolute log-mel difference: the calibrated bound is 1.25x what float ordering
# gives, but at least FLOOR_DB (kernels differ between CPUs) and at most CEILING_DB.
FLOOR_DB = 0.01
CEILING_DB = 0.5


@pytest.fixture(scope="module")
def model() -> KModel:
    return quiet_tiny_model(seed=3)


def items(model: KModel, sizes: list[int], seed: int = 0,
          noise: bool = False) -> list[SynthItem]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(sizes):
        ids = [TINY_VOCAB[SYMBOLS[int(k)]] for k in torch.randint(len(SYMBOLS), (n,), generator=g)]
        style = torch.randn(2 * model.config.style_dim, generator=g)
        out.append(model.item(ids, style, speed=0.8 + 0.15 * (i % 4),
                              seed=100 + i if noise else None))
    return out


def mel(a: torch.Tensor, b: torch.Tensor) -> float:
    return mel_distance_db(a.numpy(), b.numpy())


@pytest.fixture(scope="module")
def ordering_db(model: KModel) -> float:
    """The calibration: the largest distance between an item alone and the same item in a batch
    of its own copies, over every item the tests batch."""
    worst = 0.0
    for sizes in SIZES:
        for it in items(model, sizes, seed=len(sizes)):
            alone = model.forward_batch([it])[0]
            for copy in model.forward_batch([it, it, it]):
                assert torch.equal(copy.durations, alone.durations)
                worst = max(worst, mel(alone.audio, copy.audio))
    print(f"\nfloat ordering alone: up to {worst:.4f} dB log-mel")
    assert worst < CEILING_DB
    return worst


def bound(ordering_db: float) -> float:
    return min(max(1.25 * ordering_db, FLOOR_DB), CEILING_DB)


@pytest.mark.parametrize("sizes", SIZES)
def test_batched_equals_alone(model: KModel, ordering_db: float, sizes: list[int]) -> None:
    batch = items(model, sizes, seed=len(sizes))
    together = model.forward_batch(batch)
    assert len(together) == len(batch)
    for it, b in zip(batch, together, strict=True):
        a = model.forward_batch([it])[0]
        assert torch.equal(a.durations, b.durations)
        assert a.audio.shape == b.audio.shape
        assert int(a.durations.sum()) * model.config.frame_samples == a.audio.shape[0]
        assert float(a.audio.abs().max()) > 1e-3  # not silence: the comparison means something
        assert mel(a.audio, b.audio) <= bound(ordering_db)


def _with_neighbours(model: KModel, row: SynthItem, neighbours: list[SynthItem]) -> torch.Tensor:
    return model.forward_batch([row, *neighbours])[0].audio


def test_a_row_ignores_its_neighbours(model: KModel) -> None:
    """Same batch size, other neighbours (longer, shorter, other content): the row's samples do
    not move beyond float noise. Mixed into any real frame, padding would move them by far more
    (see the next test)."""
    for k, row in enumerate(items(model, [2, 30, 120, 9], seed=4)):
        first = _with_neighbours(model, row, items(model, [len(row.ids) + 40, 3], seed=10 + k))
        other = _with_neighbours(model, row, items(model, [len(row.ids) + 200, 80], seed=20 + k))
        assert first.shape == other.shape
        assert float((first - other).abs().max()) <= 1e-5


def test_a_padding_leak_fails_loudly(model: KModel, ordering_db: float,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality check, run on a model whose layers forget to zero their padding: rows next
    to longer neighbours then move far past the calibrated bound."""
    batch = items(model, [30, 2, 9, 230], seed=4)
    alone = [model.forward_batch([it])[0].audio for it in batch[:3]]
    monkeypatch.setattr(model_layers, "zero_pad", lambda x, pad: x)
    monkeypatch.setattr(model_layers, "zero_pad_", lambda x, pad: x)
    monkeypatch.setattr("realtime.model.decoder.zero_pad", lambda x, pad: x)
    monkeypatch.setattr("realtime.model.decoder.zero_pad_", lambda x, pad: x)
    monkeypatch.setattr("realtime.model.text.zero_pad", lambda x, pad: x)
    leaky = model.forward_batch(batch)
    worst = max(mel(a, b.audio) for a, b in zip(alone, leaky, strict=False))
    print(f"\nwith padding leaking: {worst:.2f} dB")
    assert worst > 10 * bound(ordering_db)


def test_batched_with_noise_equals_alone(model: KModel, ordering_db: float) -> None:
    batch = items(model, [30, 4, 110], seed=7, noise=True)
    noisy = model.forward_batch(batch)
    for it, b in zip(batch, noisy, strict=True):
        assert mel(model.forward_batch([it])[0].audio, b.audio) <= bound(ordering_db)
    quiet = model.forward_batch([SynthItem(it.ids, it.style, it.speed) for it in batch])
    assert all(mel(n.audio, q.audio) > 0.05 for n, q in zip(noisy, quiet, strict=True))
    again = model.forward_batch(batch)  # a seed gives the same noise every time
    assert all(torch.equal(n.audio, a.audio) for n, a in zip(noisy, again, strict=True))


def test_forward_is_a_batch_of_one(model: KModel) -> None:
    (it,) = items(model, [25], seed=11)
    single = model(list(it.ids), it.style, speed=it.speed)
    assert torch.equal(single.audio, model.forward_batch([it])[0].audio)


def test_padding_frames_are_zero(model: KModel) -> None:
    """The decoder over a padded batch: exact zeros past each row's end."""
    batch = items(model, [6, 80], seed=2)
    with torch.inference_mode():
        inputs = model.inputs(batch)
        text = model.text_side(inputs)
        totals = text.durations.sum(dim=1)
        wave = model.decoder_side(text, inputs, int(totals.max()) + 7, True)
    step = model.config.frame_samples
    for b, total in enumerate(totals.tolist()):
        assert float(wave[b, total * step:].abs().max()) == 0.0
        assert float(wave[b, :total * step].abs().max()) > 1e-3


# Windows of tens of ms: the tiny model speaks fast (8 samples a generator frame).
WINDOWS = WindowPlan(first_s=0.03, later_s=0.06, margin_s=0.01, fade_ms=4.0)


def decode_together(model: KModel, first: list[SynthItem],
                     later: list[SynthItem]) -> list[list[Piece]]:
    """``first`` started as one batch; after its first windows, ``later`` started as another;
    then every unfinished chunk's next window decoded together, the two fronts interleaved."""
    a = start_windows(model, first, WINDOWS)
    out: dict[int, list[Piece]] = {id(c): [] for c in a}
    for c, p in zip(a, next_pieces(model, a), strict=True):
        out[id(c)].append(p)
    b = start_windows(model, later, WINDOWS)
    out |= {id(c): [] for c in b}
    cursors = [c for pair in zip(b, a, strict=False) for c in pair] + a[len(b):] + b[len(a):]
    while active := [c for c in cursors if not c.done]:
        for c, p in zip(active, next_pieces(model, active), strict=True):
            out[id(c)].append(p)
    return [out[id(c)] for c in a + b]


@pytest.mark.parametrize("noise", [False, True], ids=["no-noise", "seeded-noise"])
def test_windows_batched_equal_windows_alone(model: KModel, ordering_db: float,
                                             noise: bool) -> None:
    """Windows of several chunks decoded as one padded batch (chunks started at different
    times, at different windows): each chunk's pieces as when it runs alone."""
    batch = items(model, [40, 5, 160, 12, 75], seed=5, noise=noise)
    together = decode_together(model, batch[:3], batch[3:])
    for it, pieces in zip(batch, together, strict=True):
        alone = list(decode_windows(model, it, WINDOWS))
        assert [len(p.audio) for p in pieces] == [len(p.audio) for p in alone]
        assert [p.last for p in pieces] == [p.last for p in alone]
        assert np.array_equal(pieces[0].durations, alone[0].durations)
        joined, own = (np.concatenate([p.audio for p in ps]) for ps in (pieces, alone))
        assert float(np.abs(own).max()) > 1e-3
        assert mel_distance_db(joined, own) <= bound(ordering_db)
    assert max(len(ps) for ps in together) >= 4  # several windows each: the test means something


def test_a_window_ignores_its_neighbours(model: KModel) -> None:
    """A chunk's windows do not move when the chunks decoded beside them change."""
    row = items(model, [60], seed=6)[0]
    first = decode_together(model, [row, *items(model, [150, 3], seed=8)], [])[0]
    other = decode_together(model, [row], items(model, [20, 220], seed=9))[0]
    for p, q in zip(first, other, strict=True):
        assert float(np.abs(p.audio - q.audio).max()) <= 1e-5
