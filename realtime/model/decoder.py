"""The decoder: AdaIN residual blocks over aligned features, then the iSTFTNet generator.

Everything runs over the padded batch at once, with per-row frame counts (``lengths``) on the
device; ``None`` means one unpadded row. The generator's harmonic source (a neural
source-filter sine generator) is the only place with randomness in Kokoro. Here it is
injected: ``seeds`` (one per row, -1 or ``None`` for off, as in the ONNX export) seed a noise
hashed from (seed, sample index), so a row's noise does not depend on its neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realtime.model.config import SAMPLE_RATE, ISTFTNetConfig
from realtime.model.layers import (
    EPS,
    AdaIN1d,
    AdainResBlk1d,
    Pad,
    WNConv1d,
    WNConvTranspose1d,
    zero_pad,
    zero_pad_,
)


class AdaINResBlock1(nn.Module):
    """HiFi-GAN style residual block with AdaIN and Snake activations (one per dilation)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...],
                 style_dim: int) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, dilation=d,
                     padding=d * (kernel_size - 1) // 2)
            for d in dilations)
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)
            for _ in dilations)
        self.adain1 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.adain2 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.alpha1 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)
        self.alpha2 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)

    # Compiled forms, used when set: norm_snake over padded batches (KModel.fuse_norms) and
    # row_norm_snake_fused over unpadded rows (KModel.fuse_row_norms, the CPU's batch of one).
    fused: Callable[..., Tensor] | None = None
    fused_rows: Callable[..., Tensor] | None = None

    def forward(self, x: Tensor, s: Tensor, pad: Pad | None = None) -> Tensor:
        """Convolutions read only masked-norm outputs (0 at ``pad``; snake(0) = 0)."""
        for c1, c2, n1, n2, a1, a2 in zip(self.convs1, self.convs2, self.adain1, self.adain2,
                                          self.alpha1, self.alpha2, strict=True):
            h = self._norm_snake(n1, x, s, pad, a1)
            h = self._norm_snake(n2, c1(h), s, pad, a2)
            x = x + c2(h)
        return x

    def _norm_snake(self, norm: AdaIN1d, x: Tensor, s: Tensor, pad: Pad | None,
                    alpha: Tensor) -> Tensor:
        if pad is None:
            if self.fused_rows is not None:
                return rows_2d(self.fused_rows, x, *norm.style(s), alpha)
            return row_norm_snake(x, *norm.style(s), alpha)
        if self.fused is None:
            return _snake(norm(x, s, pad), alpha)
        return self.fused(x, pad.keep, pad.inv_count, *norm.style(s), alpha)


def row_norm_snake(x: Tensor, gamma: Tensor, beta: Tensor, alpha: Tensor) -> Tensor:
    """AdaIN then Snake over unpadded rows (the CPU's batch of one), eagerly in seven passes
    over ``x`` and two new tensors, against about eleven and three as the instance norm and
    :func:`_snake` one after the other: the mean; ``x`` centred (new); its norm (the variance of
    the centred values, exact where a mean dwarfs the spread); the sine's argument ``t = alpha
    * y`` written over the centred copy, Snake's alpha folded into the norm's scale and shift;
    ``sin(t)`` (new); then ``y + sin(alpha y)^2 / alpha = (t + sin(t)^2) / alpha`` in place.
    Fewer passes make the generator's pairs faster on a CPU
    (docs/lab/2026-11-29-cpu-row-norm-snake.md).

    Statistics in float32 (float64 for float64), the result in ``x``'s dtype, except bfloat16,
    whose sine runs in float32 as in :func:`_snake` (the result is then float32 too)."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    work = torch.float32 if x.dtype == torch.bfloat16 else x.dtype
    mean = x.mean(dim=-1, keepdim=True, dtype=acc)
    centred = torch.sub(x, mean.to(work))  # in ``work``: bfloat16 - float32 is float32
    spread = torch.linalg.vector_norm(centred, dim=-1, keepdim=True, dtype=acc)
    a = alpha.to(acc)
    # The norm's scale with Snake's alpha folded in: alpha (1 + gamma) / sqrt(variance + eps).
    scale = spread.square_().div_(x.shape[-1]).add_(EPS).rsqrt_().mul_(
        torch.addcmul(a, a, gamma.to(acc)))
    # Computed in float32 from the float32 statistics, written in ``work``; elementwise, so in
    # place is safe.
    arg = torch.addcmul(beta.to(acc) * a, centred, scale, out=centred)
    sine = torch.sin(arg)
    return arg.addcmul_(sine, sine).mul_(a.reciprocal().to(work))


def row_norm_snake_fused(x: Tensor, gamma: Tensor, beta: Tensor, alpha: Tensor,
                         out: torch.dtype | None = None) -> Tensor:
    """:func:`row_norm_snake` written as one expression for ``torch.compile`` to fuse
    (``KModel.fuse_row_norms``): the mean, the centred variance and the output each read ``x``
    once, and only the output is written (three passes, against seven passes and two new
    tensors eagerly; a bfloat16 activation is not converted into a float32 copy first).
    Computed in float32 inside the kernel (float64 for float64), the result in ``out`` (default
    ``x``'s dtype). It only feeds convolutions, so under autocast :func:`rows_2d` asks for
    autocast's dtype: the convolution would round :func:`row_norm_snake`'s float32 result to
    it in the same way, in a pass of its own. Eagerly it is the reference the tests hold the
    compiled form to."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    wide = x.to(acc)
    centred = wide - wide.mean(dim=-1, keepdim=True)
    var = (centred * centred).mean(dim=-1, keepdim=True)
    y = centred * (torch.rsqrt(var + EPS) * (1 + gamma.to(acc))) + beta.to(acc)
    a = alpha.to(acc)
    return (y + torch.sin(a * y) ** 2 / a).to(out or x.dtype)


def rows_2d(fn: Callable[..., Tensor], x: Tensor, gamma: Tensor, beta: Tensor,
             alpha: Tensor) -> Tensor:
    """``fn`` (the compiled :func:`row_norm_snake_fused`) over ``x`` [N, C, T] as N x C rows of
    T, so that the compiled kernels' guards hold for every stage, length and view: every call
    has the same layout (rows of T, one after the other), fresh tensors of one kind, and the
    style's scale and shift in float32 whatever autocast made them; under autocast the result
    comes out in autocast's dtype (it only feeds convolutions). A size-1 batch dimension's
    stride, a time slice's row stride, a parameter's sizes (torch.compile takes them as
    constants, and the channel count with them), a parameter's dispatch keys and the style's
    dtype each made it compile again, and past torch.compile's limit a call fails. What is
    left: one kernel per activation dtype (bfloat16 and float32 under bfloat16 autocast) and
    row length (inductor sums rows beyond 4,096 values another way), all made at warm-up
    (``KModel.compile_row_norms``)."""
    n, c, t = x.shape
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32

    def rows(v: Tensor) -> Tensor:  # [N or 1, C, 1] -> [N x C, 1], in the kernel's precision
        # A copy: a fresh tensor of the forward's kind (an inference tensor inside inference
        # mode) whether ``v`` is a parameter or the style's output (a guard tells them apart).
        return v.detach().to(acc).expand(n, c, 1).reshape(n * c, 1).clone()

    flat = x.reshape(n * c, t).contiguous()  # a copy only where x is a slice in time
    kind = x.device.type
    # Under autocast the convolutions that read it take autocast's dtype: written in it at once.
    out = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
    return fn(flat, rows(gamma), rows(beta), rows(alpha), out).view(n, c, t)


def norm_snake(x: Tensor, keep: Tensor, inv_count: Tensor, gamma: Tensor, beta: Tensor,
               alpha: Tensor) -> Tensor:
    """AdaIN over a padded batch (masked instance norm, then the style's scale and shift), then
    Snake, written as one expression for ``torch.compile`` to fuse: the mean, the centred sum of
    squares and everything after each read the activation once, and only the result is
    written (four passes, against about 19 eagerly). Computed in float32 inside
    the kernels, stored in ``x``'s dtype; 0 at padding. Eagerly it is the reference the tests
    hold the compiled form to; the engine uses it only compiled (``KModel.fuse_norms``)."""
    mean = (x.float() * keep).sum(dim=-1, keepdim=True) * inv_count
    centred = (x.float() - mean) * keep
    var = (centred * centred).sum(dim=-1, keepdim=True) * inv_count
    factor = torch.rsqrt(var + EPS) * (1 + gamma.float())
    y = centred * factor + beta.float()
    a = alpha.float()
    out = y + torch.sin(a * y) ** 2 / a
    return (out * keep).to(x.dtype)


def _snake(x: Tensor, alpha: Tensor) -> Tensor:
    """Snake: x + sin(alpha x)^2 / alpha, in four passes over ``x``, each writing into one new
    tensor, fewer than the plain expression makes: these passes over the largest activations
    weigh on the decoder's time on a CPU and are what it waits for on a GPU
    (docs/lab/2026-11-28-memory-traffic.md). In ``x``'s dtype, except bfloat16, whose 8-bit
    mantissa is too coarse for the sine: float32 there."""
    a = alpha if x.dtype == torch.bfloat16 else alpha.to(x.dtype)
    out = torch.mul(x, a)
    torch.sin_(out)
    out.square_()
    return torch.addcmul(x, out, a.reciprocal())


class HarmonicSource(nn.Module):
    """F0 -> a tanh-merged sum of 9 harmonics at the audio rate: the excitation signal."""

    def __init__(self, upsample_scale: int, harmonics: int = 8, sine_amp: float = 0.1,
                 noise_std: float = 0.003, voiced_threshold: float = 10.0) -> None:
        super().__init__()
        self.upsample_scale = upsample_scale
        self.dim = harmonics + 1
        self.sine_amp, self.noise_std, self.voiced_threshold = sine_amp, noise_std, voiced_threshold
        self.l_linear = nn.Linear(self.dim, 1)

    def forward(self, f0: Tensor, pad: Pad | None, seeds: Tensor | None) -> Tensor:
        """f0 [B, W] in Hz, one value per ``upsample_scale`` output samples -> excitation
        [B, W * upsample_scale]. ``pad``: the rows' real F0 steps (None: all W).

        Always in float32, also under autocast: the phase is a running sum over the whole
        utterance, and half precision would detune it within a second.
        """
        with torch.autocast(f0.device.type, enabled=False):
            return self._excitation(f0.float(), pad, seeds)

    def _excitation(self, f0: Tensor, pad: Pad | None, seeds: Tensor | None) -> Tensor:
        scale = self.upsample_scale
        harm = torch.arange(1, self.dim + 1, device=f0.device, dtype=f0.dtype)
        # Cycles per sample of each harmonic, one value per F0 step (F0 is constant within a
        # step); the random initial phase of the original has no effect and is left out.
        rad = (f0.unsqueeze(1) * harm[:, None] / SAMPLE_RATE) % 1.0  # [B, H, W]
        # Zero past a row's end, so its phase stays put there: interpolating towards the
        # padding then gives the row's last phase, as the edge clamp does for a row alone.
        rad = zero_pad(rad, pad)
        # Integrate the phase at the F0 rate, then interpolate back: smooth, and cheap.
        phase = torch.cumsum(rad, dim=-1) * (2 * math.pi * scale)
        phase = F.interpolate(phase, scale_factor=float(scale), mode="linear")
        voiced = (f0 > self.voiced_threshold).to(f0.dtype).repeat_interleave(scale, dim=1)
        waves = torch.sin(phase) * (self.sine_amp * voiced.unsqueeze(1))  # [B, H, L]
        if seeds is not None:
            amp = voiced * self.noise_std + (1 - voiced) * (self.sine_amp / 3)
            on = (seeds >= 0).to(f0.dtype)[:, None]
            noise = hashed_normal(seeds.clamp(min=0), self.dim, waves.shape[2])
            waves = waves + (amp * on).unsqueeze(1) * noise
        merged = torch.einsum("bhl,h->bl", waves, self.l_linear.weight[0])
        return torch.tanh(merged + self.l_linear.bias[0])


def hashed_normal(seeds: Tensor, rows: int, width: int) -> Tensor:
    """Standard normal noise [B, rows, width], each value a hash of (seed, position): the same
    for a seed wherever it runs, in whatever batch. 31-bit integer mixing (no int64 overflow),
    two uniforms per value, Box-Muller."""
    # A sample's position in its own row: the same however wide the batch is padded.
    pos = (torch.arange(rows, device=seeds.device, dtype=torch.long).view(1, rows, 1) * 2**26
           + torch.arange(width, device=seeds.device, dtype=torch.long).view(1, 1, width))
    key = _mix31(seeds.long().view(-1, 1, 1) * 0x2545F491 + 0x1B873593)

    def uniform(stream: int) -> Tensor:
        bits = _mix31((key + pos * 0x3C6EF372 + stream) & 0x7FFFFFFF)
        return (bits.to(torch.float32) + 0.5) / float(2**31)

    radius = torch.sqrt(-2.0 * torch.log(uniform(0x68E31DA4)))
    return radius * torch.cos((2 * math.pi) * uniform(0x0B5297A4))


def _mix31(x: Tensor) -> Tensor:
    """An integer hash on 31 bits: products stay below 2**62."""
    x = x & 0x7FFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x2C1B3C6D) & 0x7FFFFFFF
    x = x ^ (x >> 12)
    x = (x * 0x297A2D39) & 0x7FFFFFFF
    return x ^ (x >> 15)


_REAL_TO_ROUNDING = 1e-6  # |imag| / magnitude below which a bin counts as real
_EMPTY_BIN = 1e-6  # magnitude below which a bin is empty (the source is at most ~1)


class ISTFT(nn.Module):
    """STFT and inverse STFT (periodic Hann window, centred frames) as convolutions with a DFT
    basis, over a padded batch with per-row lengths: real arithmetic only (compiles, captures,
    runs in any precision the caller allows), and each row's end handled as alone: its
    reflection padding before the STFT, its own window sums after the inverse."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.bins = n_fft // 2 + 1
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(self.bins, dtype=torch.float64)[:, None]
        angle = 2 * math.pi * k * n / n_fft
        edge = (k == 0) | (k == n_fft // 2)  # DC and Nyquist: real bins
        # Their sines are exactly 0 (not sin(pi n) ~ 1e-16): a real bin's phase is then 0 or pi,
        # as torch.stft gives, never a coin toss between pi and -pi.
        sine = torch.where(edge, 0.0, torch.sin(angle))
        forward = torch.cat([torch.cos(angle), -sine]) * window
        # irfft: the DC and Nyquist bins count once, the others twice (their mirror images).
        weight = torch.where(edge, 1.0, 2.0) / n_fft
        inverse = torch.cat([weight * torch.cos(angle), -weight * sine]) * window
        self.window: Tensor
        self.forward_basis: Tensor
        self.inverse_basis: Tensor
        self.window_square: Tensor
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("forward_basis", forward.float().unsqueeze(1), persistent=False)
        self.register_buffer("inverse_basis", inverse.float().unsqueeze(1), persistent=False)
        self.register_buffer("window_square", (window**2).float().view(1, 1, -1),
                             persistent=False)

    def transform(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """x [B, L], ``lengths`` [B] samples (None: all L) -> magnitude and phase
        [B, bins, L // hop + 1]; frames past a row's ``lengths // hop + 1`` are not defined
        (the caller masks them)."""
        with torch.autocast(x.device.type, enabled=False):
            half = self.n_fft // 2
            x = x.float()
            if lengths is None:
                ext = F.pad(x.unsqueeze(1), (half, half), mode="reflect")
            else:
                # Each row reflected at its own end (x[n-2], x[n-3], ...), as a row alone is.
                j = torch.arange(x.shape[1] + half, device=x.device)[None, :]
                n = lengths[:, None]
                source = torch.where(j < n, j, 2 * (n - 1) - j).clamp(0, x.shape[1] - 1)
                ext = F.pad(x.gather(1, source).unsqueeze(1), (half, 0), mode="reflect")
            spec = F.conv1d(ext, self.forward_basis, stride=self.hop)
            re, im = spec[:, :self.bins], spec[:, self.bins:]
            mag = torch.sqrt(re * re + im * im)
            # A phase is only as good as its bin: where the bin is real to rounding (frames of
            # a reflection pad are symmetric) it is 0 or pi, never a toss between pi and -pi,
            # and where the bin is empty (a constant source: unvoiced frames without noise) it
            # is 0, not the angle of rounding noise, which differs with the batch's shape.
            im = torch.where(im.abs() <= _REAL_TO_ROUNDING * mag, 0.0, im)
            phase = torch.where(mag < _EMPTY_BIN, 0.0, torch.atan2(im, re))
            return mag, phase

    def inverse(self, mag: Tensor, phase: Tensor, pad: Pad | None) -> Tensor:
        """Magnitude and phase [B, bins, N] -> audio [B, hop * (N - 1)]; ``pad``: the rows'
        real frames (None: all N). Row b's audio is its first ``hop * (frames[b] - 1)``
        samples, normalised by its own window sums; 0 after them."""
        with torch.autocast(mag.device.type, enabled=False):
            n = mag.shape[2]
            mag = zero_pad(mag.float(), pad)  # also where exp() overflowed in the padding
            phase = phase.float()
            spec = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)
            wave = F.conv_transpose1d(spec, self.inverse_basis, stride=self.hop)
            weights = torch.ones(1, 1, n, device=mag.device) if pad is None else pad.keep
            envelope = F.conv_transpose1d(weights, self.window_square, stride=self.hop)
            wave = (wave / envelope.clamp(min=1e-11))[:, 0]
            half = self.n_fft // 2
            out = wave[:, half:half + self.hop * (n - 1)]
            if pad is None:
                return out
            return zero_pad(out.unsqueeze(1), pad.scaled(self.hop, -self.hop))[:, 0]


class Generator(nn.Module):
    """iSTFTNet: upsample features x(prod upsample_rates), predict magnitude and phase, iSTFT."""

    def __init__(self, style_dim: int, cfg: ISTFTNetConfig) -> None:
        super().__init__()
        self.n_kernels = len(cfg.resblock_kernel_sizes)
        self.upsample_rates = tuple(cfg.upsample_rates)
        n_fft, hop = cfg.gen_istft_n_fft, cfg.gen_istft_hop_size
        up_total = math.prod(cfg.upsample_rates)
        self.source_scale = up_total * hop
        self.m_source = HarmonicSource(self.source_scale)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        ch = cfg.upsample_initial_channel
        for i, (rate, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes,
                                          strict=True)):
            c_in, ch = ch, ch // 2
            self.ups.append(WNConvTranspose1d(c_in, ch, k, stride=rate, padding=(k - rate) // 2))
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True):
                self.resblocks.append(AdaINResBlock1(ch, rk, tuple(rd), style_dim))
            if i + 1 < len(cfg.upsample_rates):
                stride = math.prod(cfg.upsample_rates[i + 1:])
                self.noise_convs.append(nn.Conv1d(n_fft + 2, ch, 2 * stride, stride=stride,
                                                  padding=(stride + 1) // 2))
                self.noise_res.append(AdaINResBlock1(ch, 7, (1, 3, 5), style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(n_fft + 2, ch, 1))
                self.noise_res.append(AdaINResBlock1(ch, 11, (1, 3, 5), style_dim))
        self.n_bins = n_fft // 2 + 1
        self.conv_post = WNConv1d(ch, n_fft + 2, 7, padding=3)
        self.stft = ISTFT(n_fft, hop)

    def forward(self, x: Tensor, s: Tensor, f0: Tensor, seeds: Tensor | None = None,
                pad: Pad | None = None) -> Tensor:
        """x [B, C, W], f0 [B, W] -> audio [B, W * source_scale].

        ``pad``: the rows' real frames (None: all W). Row b's audio is its first
        ``lengths[b] * source_scale`` samples, as when it runs alone; the rest is 0.
        ``seeds``: per row, the harmonic source's noise (-1 or None: off).
        """
        return self.synth(x, s, self.harmonics(f0, seeds, pad), pad)

    def synth(self, x: Tensor, s: Tensor, har: Tensor, pad: Pad | None = None) -> Tensor:
        """The network after the harmonic source: x [B, C, W] and the source's spectra ``har``
        [B, n_fft + 2, W * source_frames + 1] -> audio [B, W * source_scale]. Windowed
        decoding runs it over a slice of frames and the matching slice of ``har``."""
        base = pad
        rate = 1
        last = len(self.ups) - 1
        for i, up in enumerate(self.ups):
            rate *= self.upsample_rates[i]
            extra = 1 if i == last else 0  # the reflection pad below adds one frame
            up_pad = None if base is None else base.scaled(rate, extra)  # this rate's rows
            x = zero_pad_(F.leaky_relu(x, 0.1), pad)
            x_source = self.noise_res[i](self.noise_convs[i](har), s, up_pad)
            x = up(x)
            if i == last:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + x_source
            blocks = self.resblocks[i * self.n_kernels:(i + 1) * self.n_kernels]
            acc = blocks[0](x, s, up_pad)
            for block in blocks[1:]:
                acc = acc + block(x, s, up_pad)
            x = acc / self.n_kernels
            pad = up_pad
        x = self.conv_post(zero_pad_(F.leaky_relu(x), pad))
        return self.stft.inverse(torch.exp(x[:, :self.n_bins]), torch.sin(x[:, self.n_bins:]),
                                 pad)

    @property
    def source_frames(self) -> int:
        """Frames of ``har`` per input frame (the last stage's rate over the input's)."""
        return self.source_scale // self.stft.hop

    def harmonics(self, f0: Tensor, seeds: Tensor | None, pad: Pad | None) -> Tensor:
        """The source's magnitude and phase spectra [B, n_fft + 2, frames], 0 past each row
        (the frames of the last upsampling stage: ``source_scale / hop`` per F0 step, + 1)."""
        source = self.m_source(f0, pad, seeds)
        if pad is None:
            return torch.cat(self.stft.transform(source, None), dim=1)
        har = torch.cat(self.stft.transform(source, pad.lengths * self.source_scale), dim=1)
        return zero_pad(har, pad.scaled(self.source_frames, 1))


class Decoder(nn.Module):
    """Aligned text features + F0 + energy -> audio."""

    def __init__(self, dim_in: int, style_dim: int, cfg: ISTFTNetConfig, hidden: int = 1024,
                 res: int = 64) -> None:
        super().__init__()
        self.encode = AdainResBlk1d(dim_in + 2, hidden, style_dim)
        cat = hidden + 2 + res
        self.decode = nn.ModuleList([
            AdainResBlk1d(cat, hidden, style_dim),
            AdainResBlk1d(cat, hidden, style_dim),
            AdainResBlk1d(cat, hidden, style_dim),
            AdainResBlk1d(cat, cfg.upsample_initial_channel, style_dim, upsample=True),
        ])
        self.F0_conv = WNConv1d(1, 1, 3, stride=2, padding=1)
        self.N_conv = WNConv1d(1, 1, 3, stride=2, padding=1)
        self.asr_res = nn.Sequential(WNConv1d(dim_in, res, 1))
        self.generator = Generator(style_dim, cfg)

    def forward(self, asr: Tensor, f0: Tensor, n: Tensor, s: Tensor,
                seeds: Tensor | None = None, pad: Pad | None = None) -> Tensor:
        """asr [B, C, F], f0 and n [B, 2F], s [B, style] -> audio [B, F * frame_samples].

        ``pad``: the rows' real frames (None: all F); inputs must be 0 past them, and each
        row's audio is then what it would be alone (0 past its own length). ``seeds``: per row,
        the harmonic source's noise (-1 or None: off).
        """
        x = self.features(asr, f0, n, s, pad)
        return self.generator(x, s, f0, seeds, None if pad is None else pad.scaled(2))

    def features(self, asr: Tensor, f0: Tensor, n: Tensor, s: Tensor,
                 pad: Pad | None = None) -> Tensor:
        """The frame-rate blocks: the generator's input [B, C, 2F] (0 past each row)."""
        f0_d = zero_pad(self.F0_conv(f0.unsqueeze(1)), pad)
        n_d = zero_pad(self.N_conv(n.unsqueeze(1)), pad)
        x = self.encode(torch.cat([asr, f0_d, n_d], dim=1), s, pad)
        res = self.asr_res(asr)
        # Every decode block sees the residual text features and the prosody again; only the
        # last one upsamples, so nothing follows it at the doubled rate.
        for block in self.decode:
            x = block(torch.cat([x, res, f0_d, n_d], dim=1), s, pad)
        return x
