"""Building blocks shared by the text side and the decoder.

Parameter names follow the Kokoro v1.0 checkpoint (``weight_g``/``weight_v`` for weight-normed
layers, ``gamma``/``beta`` for the channel LayerNorm, ``fc`` for style projections), so that the
official state dicts load strictly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _norm_except_dim0(v: Tensor) -> Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class _WeightNormed(nn.Module):
    """Weight normalisation over dim 0: ``weight = g * v / ||v||`` (Salimans & Kingma)."""

    weight_g: nn.Parameter
    weight_v: nn.Parameter

    def _init_wn(self, shape: tuple[int, ...], bias: int | None) -> None:
        v = torch.empty(shape)
        nn.init.kaiming_uniform_(v, a=math.sqrt(5))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(_norm_except_dim0(v).clone())
        self.bias = nn.Parameter(torch.zeros(bias)) if bias is not None else None

    _cached: tuple[tuple[int, ...], Tensor] | None = None

    @property
    def weight(self) -> Tensor:
        """The effective weight. Under inference mode it is computed once and kept until the
        parameters change (in place, or moved), instead of on every call."""
        if not torch.is_inference_mode_enabled():
            return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))
        v, g = self.weight_v, self.weight_g
        key = (v.data_ptr(), v._version, g.data_ptr(), g._version)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, v * (g / _norm_except_dim0(v)))
        return self._cached[1]


class WNConv1d(_WeightNormed):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self._init_wn((c_out, c_in // groups, kernel_size), c_out if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class WNConvTranspose1d(_WeightNormed):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        self.stride, self.padding, self.groups = stride, padding, groups
        self.output_padding = output_padding
        self._init_wn((c_in, c_out // groups, kernel_size), c_out if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a ``[B, C, T]`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)


def instance_norm(x: Tensor, pad: Tensor | None, scale: Tensor | None = None,
                  shift: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Instance norm over time of ``x`` [B, C, T], then ``* scale + shift`` ([B, C] each, per
    row and channel) in the same kernel; ``pad`` [B, 1, T] is ``True`` at padding.

    With ``pad`` each row is normalised over its own real frames only, by the same kernel as
    when the row runs alone (so the result is the same to the bit, not just to rounding), and
    padding comes out 0. A masked one-pass formula differs by rounding, which random-weight
    models amplify past 1e-4; a GPU may still prefer it (fewer kernel launches).
    """
    if pad is None:
        # Rows and channels are normalised independently, so [B, C, T] is [1, B*C, T], which
        # lets the per-row scale and shift ride along as the norm's own weight and bias.
        b, c, t = x.shape
        y = F.instance_norm(x.reshape(1, b * c, t),
                            weight=None if scale is None else scale.reshape(-1).to(x.dtype),
                            bias=None if shift is None else shift.reshape(-1).to(x.dtype),
                            eps=eps)
        return y.view(b, c, t)
    out = torch.zeros_like(x)
    for i, n in enumerate((~pad).sum(dim=-1).view(-1).tolist()):
        out[i:i + 1, :, :n] = instance_norm(
            x[i:i + 1, :, :n], None, None if scale is None else scale[i:i + 1],
            None if shift is None else shift[i:i + 1], eps)
    return out


def time_pad(lengths: Tensor | None, width: int) -> Tensor | None:
    """``True`` where a frame is padding, [B, 1, width]; ``None`` when no row is padded."""
    if lengths is None or bool((lengths == width).all()):
        return None
    return (torch.arange(width, device=lengths.device)[None, :] >= lengths[:, None]).unsqueeze(1)


def zero_pad(x: Tensor, pad: Tensor | None) -> Tensor:
    """Padding set to 0, so that no convolution reads anything but zeros there."""
    return x if pad is None else x.masked_fill(pad, 0.0)


class AdaIN1d(nn.Module):
    """Instance norm over time, then a scale and shift predicted from the style vector.

    Kokoro declares the norm with ``affine=True`` but its checkpoint carries no affine weights,
    so they stay at 1/0: the norm is affine-free here. Padding (``pad``) comes out 0.
    """

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: Tensor, s: Tensor, pad: Tensor | None = None) -> Tensor:
        gamma, beta = self.fc(s).chunk(2, dim=1)  # [B, C] each
        return instance_norm(x, pad, scale=1 + gamma, shift=beta)


class AdaLayerNorm(nn.Module):
    """LayerNorm over channels of ``[B, T, C]`` with a style-predicted scale and shift."""

    def __init__(self, style_dim: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.fc = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        gamma, beta = self.fc(s).unsqueeze(1).chunk(2, dim=-1)
        return (1 + gamma) * F.layer_norm(x, (x.shape[-1],), eps=self.eps) + beta


class AdainResBlk1d(nn.Module):
    """Residual block with AdaIN, optionally upsampling time by 2 (used by predictor and decoder).

    Output = (shortcut + residual) / sqrt(2).
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv1 = WNConv1d(dim_in, dim_out, 3, padding=1)
        self.conv2 = WNConv1d(dim_out, dim_out, 3, padding=1)
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        self.conv1x1 = WNConv1d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else None
        # Depthwise transposed conv: the learned x2 upsampling on the residual path.
        self.pool = (WNConvTranspose1d(dim_in, dim_in, 3, stride=2, padding=1, output_padding=1,
                                       groups=dim_in) if upsample else None)

    def forward(self, x: Tensor, s: Tensor, pad: Tensor | None = None) -> Tensor:
        """``pad`` marks padding at the input's rate; each convolution reads zeros there (its
        input comes out of a masked norm), so padding never reaches a real frame. Padding in
        the output is left undefined: the next masked norm ignores it."""
        short = F.interpolate(x, scale_factor=2.0, mode="nearest") if self.upsample else x
        if self.conv1x1 is not None:
            short = self.conv1x1(short)
        r = F.leaky_relu(self.norm1(x, s, pad), 0.2)
        if self.pool is not None:
            pad = None if pad is None else pad.repeat_interleave(2, dim=-1)
            r = zero_pad(self.pool(r), pad)  # the pool's bias lands on padding too
        r = self.conv1(r)
        r = self.conv2(F.leaky_relu(self.norm2(r, s, pad), 0.2))
        return (short + r) * (1.0 / math.sqrt(2.0))


def run_lstm(lstm: nn.LSTM, x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """A batch-first bi-LSTM over ``x`` [B, T, C]; with ``lengths`` the padding is not read.

    Always in float32, also under autocast: the recurrence accumulates rounding over time, and
    oneDNN has no reduced-precision LSTM on CPUs without bf16 instructions.
    """
    with torch.autocast(x.device.type, enabled=False):
        return _run_lstm(lstm, x.float(), lengths)


def _run_lstm(lstm: nn.LSTM, x: Tensor, lengths: Tensor | None) -> Tensor:
    if lengths is None or bool((lengths == x.shape[1]).all()):
        return lstm(x)[0]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                               enforce_sorted=False)
    out, _ = nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True,
                                              total_length=x.shape[1])
    return out
