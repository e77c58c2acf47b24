"""Windowed decoding: a chunk's audio in pieces, the first one early.

On a CPU the decoder's generator is about 90% of a chunk's work, and a chunk's first sample
used to wait for all of it. Here the text side, the alignment, the F0 and energy curves, the
frame-rate decoder blocks and the harmonic source run over the whole chunk (so the prosody and
their statistics stay the chunk's), and the generator runs over windows of frames: a short
first window, longer later ones, each with ``margin_s`` of context on both sides (more than
the generator's convolutions reach). Each window's audio goes out as soon as it is done.

Inside a window the generator's instance norms take their statistics over the window (its
margins included): what makes the pieces differ from the chunk decoded whole. Neighbouring
windows overlap, and each seam is crossfaded over ``fade_ms`` (raised cosine), the earlier
window's last ``fade_ms / 2`` held back until the next one is done, so a seam makes no click.
docs/engine.md gives the measured differences behind the defaults.

A chunk that fits one window is decoded whole, exactly as :meth:`KModel.forward_batch` would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from realtime.errors import ConfigError

from .config import SAMPLE_RATE
from .kmodel import KModel, SynthItem

__all__ = ["Piece", "WindowPlan", "decode_windows"]


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Window sizes in seconds of audio: ``first_s`` for the first, ``later_s`` for the rest
    (a remainder under half of ``later_s`` joins the window before it); ``margin_s`` of
    context on each side; ``fade_ms`` of crossfade at each seam."""

    first_s: float = 1.0
    later_s: float = 3.0
    margin_s: float = 0.2
    fade_ms: float = 10.0

    def __post_init__(self) -> None:
        if not (self.first_s > 0 and self.later_s > 0):
            raise ConfigError(f"window sizes must be positive, got first {self.first_s} s, "
                              f"later {self.later_s} s")
        if self.margin_s < 0 or self.fade_ms < 0:
            raise ConfigError("window margin and crossfade must not be negative")
        if self.fade_ms / 2000.0 > self.margin_s:
            raise ConfigError(f"the crossfade ({self.fade_ms} ms) needs a margin of at least "
                              f"half of it (margin {self.margin_s} s)")

    def cores(self, frames: int, rate: float) -> list[tuple[int, int]]:
        """The windows' own frames ``[a, b)`` over ``frames`` frames at ``rate`` per second."""
        first = max(1, round(self.first_s * rate))
        later = max(1, round(self.later_s * rate))
        out: list[tuple[int, int]] = []
        a, size = 0, first
        while a < frames:
            b = min(frames, a + size)
            if frames - b < later / 2:
                b = frames
            out.append((a, b))
            a, size = b, later
        return out


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a chunk's audio (float32, 24 kHz). ``durations`` (the whole chunk's, as
    ``KOutput.durations``) come with the first piece; ``last`` marks the final one."""

    audio: np.ndarray
    durations: np.ndarray | None
    last: bool


@torch.inference_mode()
def decode_windows(model: KModel, item: SynthItem, plan: WindowPlan) -> Iterator[Piece]:
    """One item's audio, window by window (see the module doc). The text side runs before the
    first piece; each later piece costs one window of the generator."""
    batch = model.inputs([item])
    text = model.text_side(batch)
    durations = text.durations.cpu().numpy()[0]
    width = int(durations.sum())
    gen = model.decoder.generator
    step = gen.source_scale  # samples per generator frame
    frames = 2 * width  # the generator runs at twice the decoder's frame rate
    cores = plan.cores(frames, SAMPLE_RATE / step)
    if len(cores) == 1:
        whole = model.decoder_side(text, batch, width, batch.lengths is not None)
        yield Piece(whole[0].float().cpu().numpy(), durations, True)
        return
    asr, f0, n, pad = model.aligned(text, batch, width, batch.lengths is not None)
    style = batch.style[:, :model.config.style_dim]
    x = model.decoder.features(asr, f0, n, style, pad)
    har = gen.harmonics(f0, batch.seeds, pad)
    k = gen.source_frames
    margin = math.ceil(plan.margin_s * SAMPLE_RATE / step)
    half = round(plan.fade_ms * SAMPLE_RATE / 2000.0)
    ramp = _ramp(2 * half)
    tail: np.ndarray | None = None
    for i, (a, b) in enumerate(cores):
        last = i == len(cores) - 1
        lo, hi = max(0, a - margin), min(frames, b + margin)
        audio = gen.synth(x[:, :, lo:hi], style, har[:, :, lo * k:hi * k + 1])
        wave = audio[0].float().cpu().numpy()
        base = lo * step  # the window's first sample on the chunk's timeline
        start, end = a * step, b * step
        parts = []
        if tail is not None:
            head = wave[start - half - base:start + half - base]
            parts.append(tail * (1.0 - ramp) + head * ramp)
            start += half
        stop = end if last else end - half
        parts.append(wave[start - base:stop - base])
        if not last:
            tail = wave[end - half - base:end + half - base]
        yield Piece(np.concatenate(parts).astype(np.float32, copy=False),
                    durations if i == 0 else None, last)


def _ramp(n: int) -> np.ndarray:
    """0 -> 1 over ``n`` samples, raised cosine (the two sides' weights sum to 1)."""
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)
