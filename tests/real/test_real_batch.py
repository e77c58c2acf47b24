"""Batched synthesis with the real weights: each item equals its audio alone."""

from __future__ import annotations

import pytest
import torch

from realtime.text.g2p import EspeakG2P

pytestmark = pytest.mark.real

TEXTS = [
    "Hi.",
    "The quick brown fox jumps over the lazy dog, and then it runs back into the woods.",
    "Okay, one moment please.",
    "Your appointment is confirmed for Thursday at half past ten in the morning.",
    "Thanks!",
]


def test_batch_equals_alone_real(real) -> None:  # type: ignore[no-untyped-def]
    g2p = EspeakG2P("en-us")
    model = real.model
    items = []
    for i, text in enumerate(TEXTS):
        ids = model.phonemes_to_ids(g2p(text))
        voice = ("jf_alpha", "jm_kumo", "jf_alpha(2)+jm_kumo(1)")[i % 3]
        items.append(model.item(ids, real.voices.style(voice, len(ids)), speed=0.9 + 0.1 * i))
    alone = [model.forward_batch([it])[0] for it in items]
    for decoder_batch in (None, 2):
        together = model.forward_batch(items, decoder_batch=decoder_batch)
        for a, b in zip(alone, together, strict=True):
            assert torch.equal(a.durations, b.durations)
            assert float(a.audio.abs().max()) > 0.05
            assert float((a.audio - b.audio).abs().max()) <= 1e-4
