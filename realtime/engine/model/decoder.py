"""The decoder: AdaIN residual blocks over aligned features, then the iSTFTNet generator.

The generator's harmonic source (a neural source-filter sine generator) is the only place with
randomness in Kokoro. Here it is injected: ``noise=None`` turns it off (as in the ONNX export);
a ``torch.Generator`` draws the additive noise and the initial harmonic phases from its seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import SAMPLE_RATE, ISTFTNetConfig
from .layers import AdaIN1d, AdainResBlk1d, WNConv1d, WNConvTranspose1d, time_pad, zero_pad


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

    def forward(self, x: Tensor, s: Tensor, pad: Tensor | None = None) -> Tensor:
        """Convolutions read only masked-norm outputs (0 at ``pad``; snake(0) = 0)."""
        for c1, c2, n1, n2, a1, a2 in zip(self.convs1, self.convs2, self.adain1, self.adain2,
                                          self.alpha1, self.alpha2, strict=True):
            h = _snake(n1(x, s, pad), a1)
            h = _snake(n2(c1(h), s, pad), a2)
            x = x + c2(h)
        return x


def _snake(x: Tensor, alpha: Tensor) -> Tensor:
    return x + torch.sin(alpha * x).pow(2) / alpha


class HarmonicSource(nn.Module):
    """F0 (per output sample) -> a tanh-merged sum of 9 harmonics: the excitation signal."""

    def __init__(self, upsample_scale: int, harmonics: int = 8, sine_amp: float = 0.1,
                 noise_std: float = 0.003, voiced_threshold: float = 10.0) -> None:
        super().__init__()
        self.upsample_scale = upsample_scale
        self.dim = harmonics + 1
        self.sine_amp, self.noise_std, self.voiced_threshold = sine_amp, noise_std, voiced_threshold
        self.l_linear = nn.Linear(self.dim, 1)

    def forward(self, f0: Tensor, noise: torch.Generator | None) -> Tensor:
        """f0 [B, L] in Hz at the audio rate -> excitation [B, L].

        Always in float32, also under autocast: the phase is a running sum over the whole
        utterance, and half precision would detune it within a second.
        """
        with torch.autocast(f0.device.type, enabled=False):
            return self._excitation(f0.float(), noise)

    def _excitation(self, f0: Tensor, noise: torch.Generator | None) -> Tensor:
        b = f0.shape[0]
        harm = torch.arange(1, self.dim + 1, device=f0.device, dtype=f0.dtype)
        rad = (f0.unsqueeze(-1) * harm / SAMPLE_RATE) % 1.0  # [B, L, H]: cycles per sample
        if noise is not None:
            init = torch.rand(b, self.dim, generator=noise, device=f0.device, dtype=f0.dtype)
            init[:, 0] = 0.0
            rad = torch.cat([rad[:, :1] + init.unsqueeze(1), rad[:, 1:]], dim=1)
        # Integrate the phase at the frame rate, then interpolate back: smooth, and cheap.
        coarse = F.interpolate(rad.transpose(1, 2), scale_factor=1.0 / self.upsample_scale,
                               mode="linear")
        phase = torch.cumsum(coarse, dim=-1) * (2 * math.pi * self.upsample_scale)
        phase = F.interpolate(phase, scale_factor=float(self.upsample_scale), mode="linear")
        sines = torch.sin(phase).transpose(1, 2) * self.sine_amp  # [B, L, H]
        voiced = (f0 > self.voiced_threshold).to(f0.dtype).unsqueeze(-1)
        waves = sines * voiced
        if noise is not None:
            amp = voiced * self.noise_std + (1 - voiced) * (self.sine_amp / 3)
            waves = waves + amp * torch.randn(waves.shape, generator=noise, device=f0.device,
                                              dtype=f0.dtype)
        return torch.tanh(self.l_linear(waves)).squeeze(-1)


class ISTFT(nn.Module):
    """STFT / inverse STFT with a periodic Hann window (centred frames)."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.window: Tensor
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    # Both in float32, also under autocast: FFTs of reduced precision are unsupported on the
    # CPU and lossy where they exist.
    def transform(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            spec = torch.stft(x.float(), self.n_fft, self.hop, self.n_fft, window=self.window,
                              return_complex=True)
            return spec.abs(), spec.angle()

    def inverse(self, mag: Tensor, phase: Tensor) -> Tensor:
        with torch.autocast(mag.device.type, enabled=False):
            spec = torch.polar(mag.float(), phase.float())
            return torch.istft(spec, self.n_fft, self.hop, self.n_fft, window=self.window)


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

    def forward(self, x: Tensor, s: Tensor, f0: Tensor,
                noise: Sequence[torch.Generator | None], lengths: Tensor | None = None) -> Tensor:
        """x [B, C, W], f0 [B, W] -> audio [B, W * source_scale].

        ``lengths``: real frames per row (None: all W). Row b's audio is its first
        ``lengths[b] * source_scale`` samples, the same as when it runs alone; the rest is 0.
        ``noise``: one generator (or None) per row.
        """
        width = x.shape[2]
        if lengths is None:
            lengths = torch.full((x.shape[0],), width, dtype=torch.long, device=x.device)
        har = self._harmonics(f0, noise, lengths)
        pad = time_pad(lengths, width)
        rate = 1
        last = len(self.ups) - 1
        for i, up in enumerate(self.ups):
            rate *= self.upsample_rates[i]
            extra = 1 if i == last else 0  # the reflection pad below adds one frame
            up_pad = time_pad(lengths * rate + extra, width * rate + extra)
            x = zero_pad(F.leaky_relu(x, 0.1), pad)
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
        x = self.conv_post(zero_pad(F.leaky_relu(x), pad))
        # The inverse STFT row by row, over each row's own frames: its overlap-add and window
        # normalisation at the end of a row must not see the next frames.
        out = x.new_zeros(x.shape[0], width * self.source_scale)
        for b, n in enumerate(lengths.tolist()):
            spec = x[b:b + 1, :, :n * rate + 1]
            wave = self.stft.inverse(torch.exp(spec[:, :self.n_bins]),
                                     torch.sin(spec[:, self.n_bins:]))
            out[b, :wave.shape[1]] = wave[0]
        return out

    def _harmonics(self, f0: Tensor, noise: Sequence[torch.Generator | None],
                   lengths: Tensor) -> Tensor:
        """The source's magnitude and phase spectra [B, n_fft + 2, frames], row by row (its
        interpolations and the STFT's reflection pad look at the row's end), 0 past each row."""
        rows = []
        for b, n in enumerate(lengths.tolist()):
            f0_up = f0[b:b + 1, :n].repeat_interleave(self.source_scale, dim=1)
            mag, phase = self.stft.transform(self.m_source(f0_up, noise[b]))
            rows.append(torch.cat([mag, phase], dim=1)[0])
        full = f0.shape[1] * self.source_scale // self.stft.hop + 1
        return torch.stack([F.pad(r, (0, full - r.shape[1])) for r in rows])


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
                noise: Sequence[torch.Generator | None] | None = None,
                frames: Tensor | None = None) -> Tensor:
        """asr [B, C, F], f0 and n [B, 2F], s [B, style] -> audio [B, F * frame_samples].

        ``frames``: real frames per row (None: all F); inputs must be 0 past them, and each
        row's audio is then what it would be alone (0 past its own length).
        """
        if noise is None:
            noise = [None] * asr.shape[0]
        pad = time_pad(frames, asr.shape[2])
        f0_d = zero_pad(self.F0_conv(f0.unsqueeze(1)), pad)
        n_d = zero_pad(self.N_conv(n.unsqueeze(1)), pad)
        x = self.encode(torch.cat([asr, f0_d, n_d], dim=1), s, pad)
        res = self.asr_res(asr)
        # Every decode block sees the residual text features and the prosody again; only the
        # last one upsamples, so nothing follows it at the doubled rate.
        for block in self.decode:
            x = block(torch.cat([x, res, f0_d, n_d], dim=1), s, pad)
        return self.generator(x, s, f0, noise, None if frames is None else 2 * frames)
