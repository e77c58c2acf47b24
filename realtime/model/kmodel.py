"""KModel: Kokoro-82M's text-to-speech network, written for this project.

phoneme ids -> ALBERT -> prosody predictor (durations, F0, energy) + text encoder
-> alignment by durations -> decoder (AdaIN blocks + iSTFTNet) -> 24 kHz audio.

A batch runs as one pass in two halves, each over the whole padded batch with per-row lengths
(no Python loop over rows): the **text side** (ALBERT, durations, text features) and, after
one read of the rounded durations to the host (the frame counts fix the decoder's width), the
**decoder side** (alignment, F0 and energy curves, decoder). Each half has static shapes for
given batch, token and frame sizes, so it can be compiled or captured as a CUDA graph.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.fx.experimental._config as fx_config
from torch import Tensor, nn

from realtime.errors import InputError, unknown_symbols
from realtime.model.albert import Albert
from realtime.model.config import MAX_PHONEMES, KModelConfig
from realtime.model.decoder import (
    AdaINResBlock1,
    Decoder,
    norm_snake,
    row_norm_snake_fused,
    rows_2d,
)
from realtime.model.layers import CpuConvs, Pad, WeightNormed, WNConv1d, time_pad, zero_pad
from realtime.model.text import ProsodyPredictor, TextEncoder

SEED_RANGE = 2**31  # seeds are taken modulo this (the harmonic source's noise hash)


@dataclass(frozen=True, slots=True)
class KOutput:
    """One utterance's result.

    ``audio`` is float32 at 24 kHz; ``durations`` are frames per token (``frame_samples`` audio
    samples each), including the boundary tokens at both ends, so ``len(durations)`` is the
    phoneme count + 2 and ``durations.sum() * frame_samples == len(audio)``. Both on the CPU.
    """

    audio: Tensor
    durations: Tensor


@dataclass(frozen=True, slots=True)
class SynthItem:
    """One utterance for :meth:`KModel.forward_batch` (make it with :meth:`KModel.item`)."""

    ids: tuple[int, ...]  # phoneme ids, without the boundary tokens
    style: Tensor  # [2 * style_dim], float32, on the CPU (moved with the batch, once)
    speed: float = 1.0
    seed: int | None = None  # None: the harmonic source's noise is off


@dataclass(frozen=True, slots=True)
class BatchInputs:
    """A batch on the device: ids [B, T] (boundary tokens added, 0 past each row), ``lengths``
    [B] tokens (None: one unpadded row), styles [B, 2 * style_dim], speeds [B], ``seeds`` [B]
    (-1: noise off; None: off for every row)."""

    ids: Tensor
    lengths: Tensor | None
    style: Tensor
    speed: Tensor
    seeds: Tensor | None


@dataclass(frozen=True, slots=True)
class TextSide:
    """The text side's outputs: predictor features ``d`` [B, T, C + style], text features
    ``asr`` [B, C, T], rounded ``durations`` [B, T] (0 past each row's tokens)."""

    d: Tensor
    asr: Tensor
    durations: Tensor


class KModel(nn.Module):
    """The network. Build it from a :class:`KModelConfig`, then load weights (``weights.py``)."""

    PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
    # The decoder, and the generator over windows, compiled for padded batches
    # (compile_decoder), or None.
    _compiled_decoder: Callable[..., Tensor] | None = None
    _compiled_synth: Callable[..., Tensor] | None = None

    def __init__(self, config: KModelConfig) -> None:
        super().__init__()
        self.config = config
        pl = config.plbert
        self.bert = Albert(pl, config.n_token)
        self.bert_encoder = nn.Linear(pl.hidden_size, config.hidden_dim)
        self.predictor = ProsodyPredictor(config.style_dim, config.hidden_dim, config.n_layer,
                                          config.max_dur)
        self.text_encoder = TextEncoder(config.hidden_dim, config.text_encoder_kernel_size,
                                        config.n_layer, config.n_token)
        self.decoder = Decoder(config.hidden_dim, config.style_dim, config.istftnet,
                               config.decoder_hidden, config.decoder_res)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.bert_encoder.weight.device

    def phonemes_to_ids(self, phonemes: str) -> list[int]:
        """Map a phoneme string onto the vocab; an unknown symbol is an error naming it."""
        vocab = self.config.vocab
        unknown = {c for c in phonemes if c not in vocab}
        if unknown:
            raise unknown_symbols(unknown)
        return [vocab[c] for c in phonemes]

    def forward(self, phonemes: str | Sequence[int] | Tensor, style: Tensor, speed: float = 1.0,
                seed: int | None = None) -> KOutput:
        """Synthesise one utterance.

        ``phonemes``: a phoneme string, or phoneme ids without the boundary tokens.
        ``style``: the 256-wide style vector (``[256]`` or ``[1, 256]``) for this utterance.
        ``seed``: ``None`` leaves the harmonic source's noise off (deterministic, as the ONNX
        export); an integer draws it from a hash of (seed, sample), so it is reproducible and
        the same whatever else runs in the batch.
        """
        return self.forward_batch([self.item(phonemes, style, speed, seed)])[0]

    def item(self, phonemes: str | Sequence[int] | Tensor, style: Tensor, speed: float = 1.0,
             seed: int | None = None) -> SynthItem:
        """A validated :class:`SynthItem` for :meth:`forward_batch`."""
        ids = self._ids(phonemes)
        style = style.detach().reshape(-1).to("cpu", torch.float32)
        if style.shape[0] != 2 * self.config.style_dim:
            raise InputError(f"style vector must have {2 * self.config.style_dim} values, "
                             f"got {style.shape[0]}")
        if not speed > 0:
            raise InputError(f"speed must be positive, got {speed}")
        return SynthItem(ids, style, float(speed), seed)

    @torch.inference_mode()
    def forward_batch(self, items: Sequence[SynthItem]) -> list[KOutput]:
        """Synthesise several utterances in one pass over the padded batch.

        Each item's durations equal those it gets alone; its audio equals its audio alone to
        float rounding, which the harmonic source's phase (a running sum of F0 over the whole
        utterance) turns into sample differences, but not into differences one can hear
        (``realtime.bench.quality.mel_distance_db``; the tests' bound: docs/engine.md, One pass
        over the batch; the measurements: docs/lab/2026-11-27-one-pass-forward.md).
        Host reads: the rounded durations once, the audio once.
        """
        if not items:
            return []
        batch = self.inputs(items)
        text = self.text_side(batch)
        durations = text.durations.cpu().numpy()  # the one read the decoder's width needs
        totals = durations.sum(axis=1)
        wave = self.decoder_side(text, batch, int(totals.max()), batch.lengths is not None)
        audio = wave.float().cpu().numpy()  # audio back once
        step = self.config.frame_samples
        # Rows as views of the batch's arrays (numpy slicing: no tensor work per row).
        return [KOutput(audio=torch.from_numpy(audio[b, :int(totals[b]) * step]),
                        durations=torch.from_numpy(durations[b, :len(it.ids) + 2]))
                for b, it in enumerate(items)]

    def inputs(self, items: Sequence[SynthItem], rows: int | None = None,
               tokens: int | None = None, static: bool = False) -> BatchInputs:
        """The batch's tensors, built on the host and moved to the device at once. ``rows`` and
        ``tokens`` pad it to a static shape (a captured graph's); padded rows are one token of
        silence each. An unpadded batch of one gets no lengths (the CPU's fused kernels) unless
        ``static`` (a graph's inputs always have the same tensors)."""
        n = rows or len(items)
        width = tokens or max(len(it.ids) for it in items) + 2
        # Built as host lists, then one tensor each (no per-row tensor work); padded rows are
        # one silent token long.
        filler = [0, 0, 0]
        ids = [[0, *it.ids, 0] for it in items] + [filler] * (n - len(items))
        lengths = [len(row) for row in ids]
        speeds = [it.speed for it in items] + [1.0] * (n - len(items))
        seeds = [-1 if it.seed is None else it.seed % SEED_RANGE for it in items]
        seeds += [-1] * (n - len(items))
        styles = torch.stack([it.style for it in items])
        if n > len(items):
            styles = torch.cat([styles, styles.new_zeros(n - len(items), styles.shape[1])])
        dev = self.device
        padded = static or n > 1 or lengths[0] < width
        return BatchInputs(
            ids=torch.tensor([row + [0] * (width - len(row)) for row in ids], device=dev),
            lengths=torch.tensor(lengths, device=dev) if padded else None,
            style=styles.to(dev), speed=torch.tensor(speeds, device=dev),
            seeds=(torch.tensor(seeds, device=dev) if any(it.seed is not None for it in items)
                   else None))

    def text_side(self, batch: BatchInputs) -> TextSide:
        """ALBERT, the duration predictor and the text encoder over the padded batch.

        On a CPU it stays in float32 under bfloat16 autocast: bfloat16 there moves rounded
        durations (a sentence's timing), and this side is a small part of the work.
        """
        with torch.autocast("cpu", enabled=False):
            return self._text_side(batch)

    def _text_side(self, batch: BatchInputs) -> TextSide:
        s_pro = batch.style[:, self.config.style_dim:]
        pad = time_pad(batch.lengths, batch.ids.shape[1])
        d, raw = self._durations(batch.ids, s_pro, pad, batch.speed)
        asr = self.text_encoder(batch.ids, pad)
        frames = torch.round(raw).clamp(min=1).long()
        if pad is not None:
            frames = frames.masked_fill(pad.mask[:, 0], 0)
        return TextSide(d, asr, frames)

    def decoder_side(self, text: TextSide, batch: BatchInputs, width: int,
                     padded: bool) -> Tensor:
        """Alignment, F0 and energy curves and the decoder, over ``width`` frames per row
        (at least the longest row's): audio [B, width * frame_samples], 0 past each row.
        ``padded``: some row has fewer than ``width`` frames (else no masks: one row alone)."""
        asr, f0, n, pad = self.aligned(text, batch, width, padded)
        decoder: Callable[..., Tensor] = self.decoder
        if self._compiled_decoder is not None and pad is not None and batch.seeds is None:
            decoder = self._compiled_decoder
        return decoder(asr, f0, n, batch.style[:, :self.config.style_dim], batch.seeds, pad)

    def aligned(self, text: TextSide, batch: BatchInputs, width: int,
                padded: bool) -> tuple[Tensor, Tensor, Tensor, Pad | None]:
        """The decoder's inputs over ``width`` frames: text features by frame [B, C, F], F0 and
        energy [B, 2F], and the frames' padding (None: ``padded`` is false)."""
        s_pro = batch.style[:, self.config.style_dim:]
        ends = text.durations.cumsum(dim=1)
        pad = Pad(ends[:, -1], width) if padded else None
        # Each frame's token: the number of tokens whose last frame comes before it.
        index = torch.arange(width, device=ends.device).expand(ends.shape[0], width)
        token = torch.searchsorted(ends, index.contiguous(), right=True)
        token = token.clamp(max=text.durations.shape[1] - 1)
        en = text.d.gather(1, token.unsqueeze(-1).expand(-1, -1, text.d.shape[2]))
        en = zero_pad(en.transpose(1, 2), pad)
        asr = zero_pad(text.asr.gather(2, token.unsqueeze(1).expand(-1, text.asr.shape[1], -1)),
                       pad)
        f0, n = self.predictor.f0_n(en, s_pro, pad)
        return asr, f0, n, pad

    @torch.inference_mode()
    def use_fft_convs(self, on: bool = True, convs: CpuConvs | None = None) -> int:
        """Whether the wide float32 convolutions on a CPU run through the FFT (``fftconv.py``,
        ``WNConv1d.fft_length``; on by default), with ``convs``' thresholds (None: those set
        before). On: every such layer's weight spectra are computed now (on a CPU), not at the
        first request; the bytes they take are returned. Off: they are dropped, and those
        layers convolve directly."""
        held = 0
        for module in self.modules():
            if isinstance(module, WNConv1d):
                module.convs = replace(convs or module.convs, fft=on)
                module._spectra = None
                length = module.fft_length()
                if length and module.weight_v.device.type == "cpu":
                    spectrum = module.spectrum(length)
                    held += spectrum.numel() * spectrum.element_size()
        return held

    def fuse_norms(self, backend: str | None = "inductor") -> None:
        """Run the generator's AdaIN-then-Snake pairs over padded batches as one compiled
        expression (``decoder.norm_snake`` through ``torch.compile``, dynamic shapes: one
        compile serves every batch shape, made at the first padded batch).
        ``backend``: torch.compile's (inductor makes the fused kernels); None turns it off."""
        fused = (None if backend is None else
                 torch.compile(norm_snake, backend=backend, dynamic=True, fullgraph=True))
        for module in self.decoder.modules():
            if isinstance(module, AdaINResBlock1):
                module.fused = fused

    def compile_decoder(self, backend: str | Callable[..., object] | None = "inductor") -> None:
        """Run the decoder over padded batches (:meth:`decoder_side` with ``padded``, no noise
        seeds: every batch a GPU runs, through its graphs or not), and the generator over
        padded batches of windows (:meth:`synth_windows`), as graphs compiled by
        ``torch.compile`` with dynamic shapes: inductor fuses the elementwise work between the
        convolutions (the norms, the Snakes, the residual adds, the masks, the harmonic source
        and the STFTs) into a few kernels, and one compile serves every batch shape (a batch of
        one row is a second: torch.compile specialises sizes of 1). Each compiles at its first
        padded batch (a runner's warm-up makes the one it uses). The weight-normed weights are
        computed once here and read as they are (``WeightNormed.frozen``): call it again after
        changing or moving the parameters. Unpadded rows (the CPU's batch of one) run as they
        would without it. ``backend``: torch.compile's; None turns it off (and unfreezes the
        weights)."""
        self._compiled_decoder = (None if backend is None else
                                  _compiled(self.decoder.forward, backend))
        self._compiled_synth = (None if backend is None else
                                _compiled(self.decoder.generator.synth, backend))
        with torch.no_grad():
            for module in self.decoder.modules():
                if isinstance(module, WeightNormed):
                    module.frozen = None
                    if backend is not None:
                        module.frozen = module.weight.detach().clone()

    @property
    def decoder_compiled(self) -> bool:
        return self._compiled_decoder is not None

    def synth_windows(self, x: Tensor, style: Tensor, har: Tensor, pad: Pad | None) -> Tensor:
        """The generator over a batch of windows (``Generator.synth``; engine/runner/windows.py),
        compiled where :meth:`compile_decoder` made it so and the batch is padded."""
        gen = self.decoder.generator
        synth = self._compiled_synth if pad is not None and self._compiled_synth else gen.synth
        return synth(x, style, har, pad)

    def fuse_row_norms(self, backend: str | None = "inductor") -> None:
        """Run the generator's AdaIN-then-Snake pairs over unpadded rows (a batch of one: the
        CPU's, whole or in windows) as one compiled expression (``decoder.row_norm_snake_fused``
        through ``torch.compile``, dynamic shapes, called through ``decoder.rows_2d``: a few
        kernels serve every stage, length and window; made by :meth:`compile_row_norms`, from
        inductor's cache where an earlier process left them).
        ``backend``: torch.compile's (inductor: on a CPU it needs a C++ compiler and Python's
        headers); None turns it off."""
        fused = None if backend is None else _compiled_rows(backend)
        for module in self.decoder.modules():
            if isinstance(module, AdaINResBlock1):
                module.fused_rows = fused

    @torch.inference_mode()
    def compile_row_norms(self, dtypes: Sequence[torch.dtype]) -> bool:
        """Make the fused row form's kernels now (after ``fuse_row_norms``), for activations of
        each of ``dtypes`` (under bfloat16 autocast the pairs see bfloat16 and float32 ones),
        over short rows and long ones (inductor sums rows beyond 4,096 values in another
        kernel): a request never waits for a compile. Call it under the autocast that forwards
        run in. False: not fused, nothing to do."""
        fused = next((m.fused_rows for m in self.decoder.modules()
                      if isinstance(m, AdaINResBlock1) and m.fused_rows is not None), None)
        if fused is None:
            return False
        dev = self.device
        for dtype in dtypes:
            for width in (256, 8192):
                x = torch.randn(1, 8, width, device=dev).to(dtype)
                gamma, beta = torch.zeros(1, 8, 1, device=dev), torch.zeros(1, 8, 1, device=dev)
                rows_2d(fused, x, gamma, beta, torch.ones(1, 8, 1, device=dev))
        return True

    @torch.inference_mode()
    def predict_durations(self, phonemes: str | Sequence[int] | Tensor, style: Tensor,
                          speed: float = 1.0) -> Tensor:
        """Continuous (unrounded) frames per token, boundary tokens included: the prosody
        predictor alone, without decoding (cheap: for estimates and diagnostics)."""
        batch = self.inputs([self.item(phonemes, style, speed)])
        s_pro = batch.style[:, self.config.style_dim:]
        return self._durations(batch.ids, s_pro, None, batch.speed)[1][0]

    def _durations(self, ids: Tensor, s_pro: Tensor, pad: Pad | None,
                   speed: Tensor) -> tuple[Tensor, Tensor]:
        """ids [B, T] (0-padded past ``pad``) -> features d [B, T, C] and durations [B, T]."""
        hidden = self.bert(ids, None if pad is None else pad.mask[:, 0])
        d_en = self.bert_encoder(hidden).transpose(1, 2)
        d = self.predictor.text_encoder(d_en, s_pro, pad)
        return d, self.predictor.durations(d, pad, speed)

    def _ids(self, phonemes: str | Sequence[int] | Tensor) -> tuple[int, ...]:
        if isinstance(phonemes, str):
            body = self.phonemes_to_ids(phonemes)
        elif isinstance(phonemes, Tensor):
            body = [int(v) for v in phonemes.reshape(-1).tolist()]
        else:
            body = [int(v) for v in phonemes]
        if not body:
            raise InputError("no phonemes to synthesise")
        if len(body) > MAX_PHONEMES:
            raise InputError(f"{len(body)} phonemes exceed the limit of {MAX_PHONEMES} per chunk")
        bad = [v for v in body if not 0 < v < self.config.n_token]
        if bad:
            raise InputError(f"phoneme ids out of range 1..{self.config.n_token - 1}: {bad[:10]}")
        return tuple(body)


def _compiled(fn: Callable[..., Tensor],
              backend: str | Callable[..., object]) -> Callable[..., Tensor]:
    """``fn`` (the decoder's or the generator's forward) compiled with dynamic shapes and no
    graph break, traced without duck shaping (by default torch.compile gives sizes that are
    equal in the first batch one symbol, so a batch of 4 rows with a dimension of 4
    elsewhere, as in the tiny model, would come out specialised to 4 rows and compile again
    for every other row count) and with Python floats as constants (the layers' epsilons: as
    symbols, dynamo would trace the whole decoder a second time to undo them)."""
    _allow_recompiles(16)
    compiled = torch.compile(fn, backend=backend, dynamic=True, fullgraph=True)

    def decode(*args: Any) -> Tensor:
        with (fx_config.patch(use_duck_shape=False),  # type: ignore[attr-defined]
              torch._dynamo.config.patch(specialize_float=True)):
            return compiled(*args)
    return decode


@functools.cache
def _compiled_rows(backend: str) -> Callable[..., Tensor]:
    """One compiled ``row_norm_snake_fused`` per backend for the process: every model (and
    runner) shares its compiled kernels, so a second model costs no second compile.

    Each activation dtype, row length (short or long) and autocast state is a kernel of its
    own: a server makes 2 (float32) or 4 (bfloat16), a process that runs both precisions
    (``realtime bench --single``) 6, near torch.compile's default limit of 8, past which a call
    fails; the limit is raised to 16 for that margin."""
    _allow_recompiles(16)
    return torch.compile(row_norm_snake_fused, backend=backend, dynamic=True, fullgraph=True)


def _allow_recompiles(count: int) -> None:
    """Raise torch.compile's limit of compiles per function to at least ``count`` (a call past
    it fails under ``fullgraph=True``), for the whole process."""
    limits = torch._dynamo.config
    limits.recompile_limit = max(limits.recompile_limit, count)
