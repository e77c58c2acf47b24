"""Batched synthesis equals synthesis alone (tiny random-weight model, CPU, float32)."""

from __future__ import annotations

import pytest
import torch

from realtime.engine.model import KModel, SynthItem
from tests.conftest import TINY_VOCAB, tiny_model

SYMBOLS = [c for c in TINY_VOCAB if c != " "]


@pytest.fixture(scope="module")
def model() -> KModel:
    m = tiny_model(seed=3)
    # Random weights make exp(magnitude) explode; scale the last conv so that the audio has a
    # speech-like amplitude and an absolute tolerance means what it means for real audio.
    with torch.no_grad():
        m.decoder.generator.conv_post.weight_g.mul_(0.05)
    return m


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


@pytest.mark.parametrize("sizes", [[3, 200], [1, 90, 7], [40, 5, 160, 12, 75],
                                   [2, 120, 9, 33, 250, 60, 17, 4]])
@pytest.mark.parametrize("decoder_batch", [None, 2])
def test_batched_equals_alone(model: KModel, sizes: list[int],
                              decoder_batch: int | None) -> None:
    batch = items(model, sizes, seed=len(sizes))
    alone = [model.forward_batch([it])[0] for it in batch]
    together = model.forward_batch(batch, decoder_batch=decoder_batch)
    assert len(together) == len(batch)
    for a, b in zip(alone, together, strict=True):
        assert torch.equal(a.durations, b.durations)
        assert a.audio.shape == b.audio.shape
        assert int(a.durations.sum()) * model.config.frame_samples == a.audio.shape[0]
        assert float(a.audio.abs().max()) > 1e-3  # not silence: the comparison means something
        assert float((a.audio - b.audio).abs().max()) <= 1e-4


def test_batched_with_noise_equals_alone(model: KModel) -> None:
    batch = items(model, [30, 4, 110], seed=7, noise=True)
    alone = [model.forward_batch([it])[0] for it in batch]
    for a, b in zip(alone, model.forward_batch(batch), strict=True):
        assert float((a.audio - b.audio).abs().max()) <= 1e-4
    quiet = model.forward_batch([SynthItem(it.ids, it.style, it.speed) for it in batch])
    assert any(float((a.audio - q.audio).abs().max()) > 1e-4 for a, q in zip(alone, quiet,
                                                                              strict=True))


def test_forward_is_a_batch_of_one(model: KModel) -> None:
    (it,) = items(model, [25], seed=11)
    single = model(list(it.ids), it.style, speed=it.speed)
    assert torch.equal(single.audio, model.forward_batch([it])[0].audio)


def test_batched_text_side_keeps_durations(model: KModel) -> None:
    batch = items(model, [3, 64, 17, 140], seed=5)
    alone = [model.forward_batch([it])[0] for it in batch]
    for a, b in zip(alone, model.forward_batch(batch, batch_text=True), strict=True):
        assert torch.equal(a.durations, b.durations)
        assert a.audio.shape == b.audio.shape


def test_decoder_row_ignores_a_longer_neighbour(model: KModel) -> None:
    """The decoder's masks, checked directly: a short row next to a long row of random content
    gives the audio it gives alone, and exact zeros past its end."""
    (short, long_) = items(model, [6, 80], seed=2)
    out = model.forward_batch([short, long_], decoder_batch=None)
    dec = model.decoder
    frames = out[0].durations.sum()
    alone = model.forward_batch([short])[0].audio
    assert float((out[0].audio - alone).abs().max()) <= 1e-4
    # A direct decoder call with random values in the padding of row 0.
    width = int(out[1].durations.sum())
    c = model.config.hidden_dim
    g = torch.Generator().manual_seed(0)
    asr = torch.randn(2, c, width, generator=g)
    f0 = torch.rand(2, 2 * width, generator=g) * 200
    n = torch.randn(2, 2 * width, generator=g)
    s = torch.randn(2, model.config.style_dim, generator=g)
    lengths = torch.tensor([int(frames), width])
    with torch.inference_mode():
        clean = [t.clone() for t in (asr, f0, n)]
        clean[0][0, :, lengths[0]:] = 0
        clean[1][0, 2 * lengths[0]:] = 0
        clean[2][0, 2 * lengths[0]:] = 0
        ref = dec(clean[0][:1, :, :lengths[0]], clean[1][:1, :2 * lengths[0]],
                  clean[2][:1, :2 * lengths[0]], s[:1])
        got = dec(*clean, s, None, lengths)
    real = int(lengths[0]) * model.config.frame_samples
    assert float((got[0, :real] - ref[0]).abs().max()) <= 1e-4
    assert float(got[0, real:].abs().max()) == 0.0


@pytest.mark.parametrize("decoder_batch", [1, 2, None])
def test_iter_batch_yields_every_item_once(model: KModel, decoder_batch: int | None) -> None:
    batch = items(model, [12, 3, 40, 7], seed=9)
    got = list(model.iter_batch(batch, decoder_batch))
    assert sorted(i for i, _ in got) == [0, 1, 2, 3]
    if decoder_batch == 1:
        assert [i for i, _ in got] == [0, 1, 2, 3]  # in the order given (EDF order)
    whole = model.forward_batch(batch)
    for i, out in got:
        assert float((out.audio - whole[i].audio).abs().max()) <= 1e-4
