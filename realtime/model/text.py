"""The text side of KModel: the text encoder and the prosody predictor.

Every module takes a ``Pad`` (the rows' real lengths, on the device, with masks built once) so
that padding never reaches an LSTM or a convolution's real steps; ``None`` means no row is padded
(one utterance alone), which lets the CPU use its fused kernels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from realtime.model.layers import (
    AdainResBlk1d,
    AdaLayerNorm,
    ChannelLayerNorm,
    Pad,
    WNConv1d,
    run_lstm,
    zero_pad,
)


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    return x if mask is None else x.masked_fill(mask, 0.0)


class TextEncoder(nn.Module):
    """Embedding -> depth x (weight-normed conv, LayerNorm, LeakyReLU) -> bi-LSTM."""

    def __init__(self, channels: int, kernel_size: int, depth: int, n_symbols: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, channels)
        pad = (kernel_size - 1) // 2
        self.cnn = nn.ModuleList(
            nn.Sequential(WNConv1d(channels, channels, kernel_size, padding=pad),
                          ChannelLayerNorm(channels), nn.LeakyReLU(0.2))
            for _ in range(depth))
        self.lstm = nn.LSTM(channels, channels // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, ids: Tensor, pad: Pad | None) -> Tensor:
        """ids [B, T] -> features [B, C, T] (zero at padding)."""
        x = zero_pad(self.embedding(ids).transpose(1, 2), pad)
        for block in self.cnn:
            x = zero_pad(block(x), pad)
        x = run_lstm(self.lstm, x.transpose(1, 2), pad).transpose(1, 2)
        return zero_pad(x, pad)


class DurationEncoder(nn.Module):
    """n_layer x (bi-LSTM, AdaLayerNorm), the style concatenated to every step's features."""

    def __init__(self, style_dim: int, d_model: int, n_layer: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_layer):
            layers.append(nn.LSTM(d_model + style_dim, d_model // 2, 1, batch_first=True,
                                  bidirectional=True))
            layers.append(AdaLayerNorm(style_dim, d_model))
        self.lstms = nn.ModuleList(layers)

    def forward(self, x: Tensor, s: Tensor, pad: Pad | None) -> Tensor:
        """x [B, d_model, T], s [B, style] -> [B, T, d_model + style] (zero at padding)."""
        mask = None if pad is None else pad.mask.transpose(1, 2)
        style = s.unsqueeze(1).expand(-1, x.shape[2], -1)
        h = _masked(torch.cat([x.transpose(1, 2), style], dim=-1), mask)
        for layer in self.lstms:
            if isinstance(layer, AdaLayerNorm):
                h = _masked(torch.cat([layer(h, s), style], dim=-1), mask)
            else:
                assert isinstance(layer, nn.LSTM)
                h = run_lstm(layer, h, pad)
        return h


class ProsodyPredictor(nn.Module):
    """Durations per token, then F0 and energy (N) curves at twice the frame rate."""

    def __init__(self, style_dim: int, d_hid: int, n_layer: int, max_dur: int) -> None:
        super().__init__()
        self.text_encoder = DurationEncoder(style_dim, d_hid, n_layer)
        self.lstm = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True,
                            bidirectional=True)
        self.duration_proj = _LinearNorm(d_hid, max_dur)
        self.shared = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True,
                              bidirectional=True)
        half = d_hid // 2
        self.F0 = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim),
                                 AdainResBlk1d(d_hid, half, style_dim, upsample=True),
                                 AdainResBlk1d(half, half, style_dim)])
        self.N = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim),
                                AdainResBlk1d(d_hid, half, style_dim, upsample=True),
                                AdainResBlk1d(half, half, style_dim)])
        self.F0_proj = nn.Conv1d(half, 1, 1)
        self.N_proj = nn.Conv1d(half, 1, 1)

    def durations(self, d: Tensor, pad: Pad | None, speed: Tensor) -> Tensor:
        """d [B, T, C] -> continuous durations in frames [B, T] (before rounding)."""
        x = run_lstm(self.lstm, d, pad)
        return torch.sigmoid(self.duration_proj(x)).sum(dim=-1) / speed[:, None]

    def f0_n(self, en: Tensor, s: Tensor, pad: Pad | None = None) -> tuple[Tensor, Tensor]:
        """en [B, C, F] aligned features -> F0 and N curves, each [B, 2F].

        ``pad``: the rows' real frames (None: no padding); the curves are 0 past 2x them.
        """
        x = run_lstm(self.shared, en.transpose(1, 2), pad).transpose(1, 2)
        pad2 = None if pad is None else pad.scaled(2)
        pads = (pad, pad, pad2)  # the middle block doubles the rate
        f0, n = x, x
        for block, p in zip(self.F0, pads, strict=True):
            f0 = block(f0, s, p)
        for block, p in zip(self.N, pads, strict=True):
            n = block(n, s, p)
        return (zero_pad(self.F0_proj(f0), pad2).squeeze(1),
                zero_pad(self.N_proj(n), pad2).squeeze(1))


class _LinearNorm(nn.Module):
    """A Linear layer stored under ``linear_layer`` (the checkpoint's naming)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(d_in, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_layer(x)


__all__ = ["DurationEncoder", "ProsodyPredictor", "TextEncoder"]
