"""A tiny random-weight KModel with Kokoro's real vocab and two random voices.

It makes noise, not speech. It exists for tests and for measuring the server's own overhead
(protocol, codecs, scheduling) under load, where the real model's compute would hide it:
``realtime serve --model tiny-random``.

Two output rates: the tests' default (a few samples per duration frame, so audio is short and
tests are fast), and ``real_rate=True`` (the real model's 600 samples = 25 ms per duration frame,
about 75 ms per phoneme), so that a session's audio length, frame count and codec work match
what the real model produces, at a few percent of its compute.
"""

from __future__ import annotations

import copy
from typing import cast

import torch

from realtime.model import KModel, KModelConfig
from realtime.weights.embedded import KOKORO_V1_CONFIG, embedded_config
from realtime.weights.voices import VoiceLibrary

# The smallest KModel shape that exercises every layer (the vocab is added by the caller).
TINY_CONFIG: dict[str, object] = {
    "hidden_dim": 32, "style_dim": 16, "n_layer": 2, "max_dur": 8, "dropout": 0.2,
    "text_encoder_kernel_size": 5, "decoder_hidden": 48, "decoder_res": 8,
    "plbert": {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
               "max_position_embeddings": 520, "num_hidden_layers": 2, "dropout": 0.1},
    "istftnet": {"upsample_rates": [2, 2], "upsample_kernel_sizes": [4, 4],
                 "upsample_initial_channel": 16, "resblock_kernel_sizes": [3, 5],
                 "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
                 "gen_istft_n_fft": 8, "gen_istft_hop_size": 2},
}
_KOKORO_ISTFT = cast(dict[str, object], KOKORO_V1_CONFIG["istftnet"])
# Kokoro's upsampling (10 x 6 x hop 5 = 300 samples per F0 frame) on 16 channels.
REAL_RATE: dict[str, object] = {
    "max_dur": 6,  # random weights give about max_dur / 2 frames per phoneme: 75 ms
    "istftnet": {**cast(dict[str, object], TINY_CONFIG["istftnet"]),
                 **{k: _KOKORO_ISTFT[k] for k in ("upsample_rates", "upsample_kernel_sizes",
                                                  "gen_istft_n_fft", "gen_istft_hop_size")}},
}
VOICES = ("jf_alpha", "jm_kumo")


def tiny_config(vocab: dict[str, int], **overrides: object) -> KModelConfig:
    """``TINY_CONFIG`` with ``vocab`` (and ``n_token`` to fit it), then ``overrides``."""
    raw = copy.deepcopy(TINY_CONFIG)
    raw.update(vocab=vocab, n_token=max(vocab.values()) + 1)
    raw.update(copy.deepcopy(overrides))
    return KModelConfig.from_dict(raw)


def build_tiny(seed: int = 0, real_rate: bool = False) -> tuple[KModel, VoiceLibrary]:
    """The tiny model (on the CPU, eval mode) and its voices ``jf_alpha`` and ``jm_kumo``.

    The same seed gives the same weights; torch's global random state is left as it was.
    """
    vocab = dict(embedded_config().vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = KModel(tiny_config(vocab, **(REAL_RATE if real_rate else {}))).eval()
    with torch.no_grad():  # quieter noise (random weights clip otherwise)
        model.decoder.generator.conv_post.weight_g.mul_(0.05)
    g = torch.Generator().manual_seed(seed)
    width = 2 * model.config.style_dim
    voices = VoiceLibrary({name: torch.randn(510, 1, width, generator=g) for name in VOICES},
                          style_width=width)
    return model, voices
