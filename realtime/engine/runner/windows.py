"""Windowed decoding: a chunk's audio in pieces, the first one early.

On a CPU the decoder's generator is most of a chunk's work, and decoded whole, a chunk's
first sample waits for all of it. Here the text side, the alignment, the F0 and energy curves, the
frame-rate decoder blocks and the harmonic source run over the whole chunk (so the prosody and
their statistics stay the chunk's), and the generator runs over windows of frames: a short
first window, longer later ones, each with ``margin_s`` of context on both sides (more than
the generator's convolutions reach). Each window's audio goes out as soon as it is done.

Inside a window the generator's instance norms take their statistics over the window (its
margins included): what makes the pieces differ from the chunk decoded whole. Neighbouring
windows overlap, and each seam is crossfaded over ``fade_ms`` (raised cosine), the earlier
window's last ``fade_ms / 2`` held back until the next one is done, so a seam makes no click.
docs/windows.md explains the defaults; the measurements behind them are in
docs/lab/2026-11-28-window-choices.md.

A chunk that fits one window is decoded whole, exactly as :meth:`KModel.forward_batch` would.

Both halves run over batches: :func:`start_windows` does the work before the generator for
several chunks in one pass and gives each a :class:`Cursor`; :func:`next_pieces` decodes the
next window of any set of cursors (chunks started together or not) as one padded batch, each
row's norms over its own window, as alone. That is how a GPU serves many sessions' first
windows at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from realtime.engine.batch import Piece
from realtime.engine.plan import WindowPlan
from realtime.model.config import SAMPLE_RATE
from realtime.model.kmodel import KModel, SynthItem
from realtime.model.layers import Pad, zero_pad_

__all__ = ["Cursor", "Front", "decode_windows", "next_pieces", "start_windows"]


@dataclass(eq=False, slots=True)
class Front:
    """A batch's work before the generator, kept on the device while its chunks' windows run:
    the generator's input ``x`` [B, C, F], the harmonic source's spectra ``har``
    [B, n_fft + 2, F * source_frames + 1] (both 0 past each row) and the styles [B, style]."""

    x: Tensor
    har: Tensor
    style: Tensor


class Cursor:
    """One chunk's windows: its row of a :class:`Front`, which window comes next, and the audio
    held back for the next seam's crossfade (host-side bookkeeping; the audio is numpy)."""

    def __init__(self, front: Front, row: int, durations: np.ndarray, frames: int,
                 plan: WindowPlan, step: int) -> None:
        self.front, self.row, self.durations = front, row, durations
        self.frames, self.step, self.plan = frames, step, plan
        self.rate = SAMPLE_RATE / step  # frames a second
        self.cores = plan.cores(frames, self.rate)
        self.margin = math.ceil(plan.margin_s * SAMPLE_RATE / step)
        self.half = round(plan.fade_ms * SAMPLE_RATE / 2000.0)
        self.ramp = _ramp(2 * self.half)
        self.index = 0
        self.tail: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.index >= len(self.cores)

    def bounds(self) -> tuple[int, int]:
        """The next window's frames ``[lo, hi)``, its margins included (a chunk that fits one
        window: all of it, as a whole decode)."""
        if self.done:
            raise RuntimeError("this chunk has no window left")
        a, b = self.cores[self.index]
        return max(0, a - self.margin), min(self.frames, b + self.margin)

    def cap_next(self, frames: int) -> bool:
        """Cut the next window to at most ``frames`` of its own and plan the rest of the chunk
        after it as the plan would after a window of that size. Not cut: the first window, and
        a window that would have to be shorter than the plan's first one (it would come late
        all the same, and shorter windows make less audio per second of work: under load that
        would make every session later). Where the rest would be under half the cut window
        (a short last window, whose own statistics sound worst), the rest is split in two equal
        windows instead. Whether it was cut."""
        if self.done or self.index == 0:
            return False
        least = max(1, round(self.plan.first_s * self.rate))
        if frames < least:
            return False
        a, b = self.cores[self.index]
        rest = self.frames - a
        if b - a <= frames:
            return False
        if rest - frames < frames / 2:
            frames = max(least, -(-rest // 2))
        # A cut whose right margin reaches the chunk's end would cost what the rest does.
        if a + frames + self.margin >= self.frames:
            return False
        self.cores[self.index:] = [(a, a + frames),
                                   *self.plan.cores(self.frames, self.rate, a + frames, frames)]
        return True

    def piece(self, wave: np.ndarray) -> Piece:
        """The next window's audio (``bounds()``' samples) -> the piece that goes out: the
        window's own samples, the seam before it crossfaded, its end held back for the next."""
        (lo, _), (a, b) = self.bounds(), self.cores[self.index]
        first = self.index == 0
        self.index += 1
        last = self.done
        durations = self.durations if first else None
        if first and last:
            return Piece(wave, durations, True)
        half, base = self.half, lo * self.step  # the window's first sample in the chunk
        start, end = a * self.step, b * self.step
        parts = []
        if self.tail is not None:
            head = wave[start - half - base:start + half - base]
            parts.append(self.tail * (1.0 - self.ramp) + head * self.ramp)
            start += half
        parts.append(wave[start - base:(end if last else end - half) - base])
        self.tail = None if last else wave[end - half - base:end + half - base]
        return Piece(np.concatenate(parts).astype(np.float32, copy=False), durations, last)


@torch.inference_mode()
def start_windows(model: KModel, items: Sequence[SynthItem], plan: WindowPlan) -> list[Cursor]:
    """The work before the generator for a batch of chunks, in one pass (text side, alignment,
    F0 and energy, the frame-rate decoder blocks, the harmonic source; one host read: the
    durations): a cursor per chunk, its windows still to decode (:func:`next_pieces`)."""
    if not items:
        return []
    batch = model.inputs(items)
    text = model.text_side(batch)
    durations = text.durations.cpu().numpy()
    totals = durations.sum(axis=1)
    padded = batch.lengths is not None
    asr, f0, n, pad = model.aligned(text, batch, int(totals.max()), padded)
    style = batch.style[:, :model.config.style_dim]
    x = model.decoder.features(asr, f0, n, style, pad)
    gen = model.decoder.generator
    har = gen.harmonics(f0, batch.seeds, None if pad is None else pad.scaled(2))
    front = Front(x, har, style)
    # The generator runs at twice the decoder's frame rate.
    return [Cursor(front, b, durations[b, :len(it.ids) + 2], 2 * int(totals[b]), plan,
                   gen.source_scale) for b, it in enumerate(items)]


@torch.inference_mode()
def next_pieces(model: KModel, cursors: Sequence[Cursor]) -> list[Piece]:
    """The next window of each chunk, decoded as one padded batch (the chunks may come from
    different fronts: a new chunk's first window beside another's third): a piece each."""
    if not cursors:
        return []
    gen = model.decoder.generator
    k = gen.source_frames
    spans = [c.bounds() for c in cursors]
    if len(cursors) == 1:  # one row: no padding, no masks
        (c,), ((lo, hi),) = cursors, spans
        r = c.row
        one = gen.synth(c.front.x[r:r + 1, :, lo:hi], c.front.style[r:r + 1],
                        c.front.har[r:r + 1, :, lo * k:hi * k + 1])
        return [c.piece(one[0].float().cpu().numpy())]
    x, har, style, pad = _gather(cursors, spans, k)
    audio = model.synth_windows(x, style, har, pad).float().cpu().numpy()  # once
    step = gen.source_scale
    return [c.piece(audio[i, :(hi - lo) * step])
            for i, (c, (lo, hi)) in enumerate(zip(cursors, spans, strict=True))]


def _gather(cursors: Sequence[Cursor], spans: Sequence[tuple[int, int]],
            k: int) -> tuple[Tensor, Tensor, Tensor, Pad]:
    """The windows as one padded batch: x [N, C, W] and har [N, n_fft + 2, W * k + 1], 0 past
    each row's window, the styles [N, style] and the rows' padding (their widths, on the
    device). One gather per front, not a copy per row."""
    width = max(hi - lo for lo, hi in spans)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(cursors):
        groups.setdefault(id(c.front), []).append(i)
    order: list[int] = []
    xs, hars, styles = [], [], []
    dev = cursors[0].front.x.device
    for members in groups.values():
        front = cursors[members[0]].front
        rows = torch.tensor([cursors[i].row for i in members], device=dev)
        los = torch.tensor([spans[i][0] for i in members], device=dev)
        xs.append(_window_rows(front.x, rows, los, width))
        hars.append(_window_rows(front.har, rows, los * k, width * k + 1))
        styles.append(front.style.index_select(0, rows))
        order += members
    widths = torch.tensor([spans[i][1] - spans[i][0] for i in order], device=dev)
    x, har, style = torch.cat(xs), torch.cat(hars), torch.cat(styles)
    if order != sorted(order):  # back to the cursors' order
        back = torch.tensor(sorted(range(len(order)), key=order.__getitem__), device=dev)
        x, har, style, widths = (t.index_select(0, back) for t in (x, har, style, widths))
    pad = Pad(widths, width)
    # The gathers made fresh tensors: their padding is zeroed in place.
    return zero_pad_(x, pad), zero_pad_(har, pad.scaled(k, 1)), style, pad


def _window_rows(t: Tensor, rows: Tensor, starts: Tensor, width: int) -> Tensor:
    """``t[rows[i], :, starts[i]:starts[i] + width]`` for each i, as one gather (indices past
    the end clamped: the caller masks those steps)."""
    picked = t.index_select(0, rows)
    index = (starts[:, None] + torch.arange(width, device=t.device)[None, :]).clamp(
        max=t.shape[2] - 1)
    return picked.gather(2, index[:, None, :].expand(-1, t.shape[1], -1))


def decode_windows(model: KModel, item: SynthItem, plan: WindowPlan) -> Iterator[Piece]:
    """One item's audio, window by window (see the module doc). The text side runs before the
    first piece; each later piece costs one window of the generator."""
    (cursor,) = start_windows(model, [item], plan)
    while not cursor.done:
        yield next_pieces(model, [cursor])[0]


def _ramp(n: int) -> np.ndarray:
    """0 -> 1 over ``n`` samples, raised cosine (the two sides' weights sum to 1)."""
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)
