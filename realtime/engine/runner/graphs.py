"""Static shapes for the batched forward: buckets, and CUDA graphs captured over them.

A GPU running Kokoro at batch 32 spends its time launching kernels, not in them. So the runner
pads a batch to one of a few shapes and replays a CUDA graph captured for it at warm-up:

- the **text side** for (rows, tokens): ids, lengths, styles and speeds in, predictor and text
  features and rounded durations out;
- one read of the durations to the host, which fixes the batch's frame width;
- the **decoder side** for (rows, frames): the text side's outputs (tokens padded to the
  largest token bucket) in, audio out.

Padded rows are one silent token long and their audio is dropped; padded tokens and frames are
masked as in any batch, so a row's audio is what the unpadded batch gives it (to float
rounding). A batch that fits no bucket, or asks for the harmonic source's noise, runs eagerly.
Graphs share one memory pool; each keeps its own outputs alive, and they never run at once.

Off CUDA the same padding runs eagerly (``capture=False``): that is how the suite checks it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from realtime.engine.buckets import Buckets
from realtime.errors import ConfigError
from realtime.model import KModel, KOutput, SynthItem
from realtime.model.kmodel import BatchInputs, TextSide

log = logging.getLogger("realtime.engine")

Guard = Callable[[], contextlib.AbstractContextManager[Any]]  # e.g. an autocast context


class _Graph:
    """One function over static input tensors: captured as a CUDA graph, or run eagerly."""

    def __init__(self, fn: Callable[[], Tensor | TextSide], capture: bool, pool: Any,
                 guard: Guard) -> None:
        self.fn = fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: Tensor | TextSide | None = None
        if capture:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), guard():
                for _ in range(2):  # allocator, cuDNN/cuBLAS handles and algorithms first
                    fn()
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=pool), guard():
                self.out = fn()

    def __call__(self, guard: Guard) -> Tensor | TextSide:
        if self.graph is None:
            with guard():
                return self.fn()
        self.graph.replay()
        assert self.out is not None
        return self.out


class StaticForward:
    """``KModel.forward_batch`` over bucket shapes (see the module doc).

    ``capture``: capture CUDA graphs at :meth:`warm_up` (needs the model on CUDA); otherwise
    every shape runs eagerly, padded all the same. ``autocast``: the precision context every
    run and capture uses (autocast's weight cache is off: a graph must not hold its copies).
    """

    def __init__(self, model: KModel, buckets: Buckets | None = None, capture: bool = False,
                 autocast: Guard | None = None) -> None:
        if capture and model.device.type != "cuda":
            raise ConfigError("CUDA graphs need the model on a CUDA device")
        self.model = model
        self.buckets = buckets or Buckets()
        self.capture = capture
        self._guard = autocast or contextlib.nullcontext
        self._pool = torch.cuda.graph_pool_handle() if capture else None
        self._text: dict[tuple[int, int], tuple[BatchInputs, _Graph]] = {}
        self._decoder: dict[tuple[int, int], tuple[TextSide, BatchInputs, _Graph]] = {}
        self.captured_s = 0.0

    @property
    def graphs(self) -> int:
        return len(self._text) + len(self._decoder)

    @torch.inference_mode()
    def warm_up(self, progress: Callable[[int, int, str], None] | None = None) -> None:
        """Make every bucket's graph (capture on CUDA); ``progress(done, total, shape)``."""
        text, dec = self.buckets.text_shapes(), self.buckets.decoder_shapes()
        total = len(text) + len(dec)
        start = time.perf_counter()
        for n, (rows, tokens) in enumerate(text, 1):
            self._text_graph(rows, tokens)
            if progress:
                progress(n, total, f"text side {rows} rows x {tokens} tokens")
        for n, (rows, frames) in enumerate(dec, len(text) + 1):
            self._decoder_graph(rows, frames)
            if progress:
                progress(n, total, f"decoder {rows} rows x {frames} frames")
        self.captured_s = time.perf_counter() - start

    @torch.inference_mode()
    def forward_batch(self, items: Sequence[SynthItem]) -> list[KOutput]:
        """Each item's output, through the graphs when the batch fits them (else eagerly)."""
        model = self.model
        rows = self.buckets.rows_for(len(items))
        tokens = self.buckets.tokens_for(max(len(it.ids) for it in items) + 2)
        if rows is None or tokens is None or any(it.seed is not None for it in items):
            with self._guard():
                return model.forward_batch(items)
        static, graph = self._text_graph(rows, tokens)
        fresh = model.inputs(items, rows, tokens, static=True)
        for name in ("ids", "lengths", "style", "speed"):
            getattr(static, name).copy_(getattr(fresh, name))
        text = graph(self._guard)
        assert isinstance(text, TextSide)
        durations = text.durations.cpu().numpy()  # the one read: the batch's frame width
        totals = durations.sum(axis=1)
        width = int(totals[:len(items)].max())
        frames = self.buckets.frames_for(rows, width)
        if frames is None:  # longer than any decoder graph: the decoder side eagerly
            with self._guard():
                wave = model.decoder_side(text, static, width, True)
        else:
            dec_text, dec_batch, dec_graph = self._decoder_graph(rows, frames)
            t = text.durations.shape[1]
            dec_text.d[:, :t].copy_(text.d)
            dec_text.asr[:, :, :t].copy_(text.asr)
            dec_text.durations.zero_()
            dec_text.durations[:, :t].copy_(text.durations)
            dec_batch.style.copy_(static.style)
            out = dec_graph(self._guard)
            assert isinstance(out, Tensor)
            wave = out
        audio = wave.float().cpu().numpy()
        step = model.config.frame_samples
        return [KOutput(audio=torch.from_numpy(audio[b, :int(totals[b]) * step]),
                        durations=torch.from_numpy(durations[b, :len(it.ids) + 2]))
                for b, it in enumerate(items)]

    def _text_graph(self, rows: int, tokens: int) -> tuple[BatchInputs, _Graph]:
        key = (rows, tokens)
        if key not in self._text:
            model = self.model
            probe = model.item([1], torch.zeros(2 * model.config.style_dim))
            static = model.inputs([probe] * rows, rows, tokens, static=True)
            self._text[key] = (static, _Graph(lambda: model.text_side(static), self.capture,
                                              self._pool, self._guard))
        return self._text[key]

    def _decoder_graph(self, rows: int, frames: int) -> tuple[TextSide, BatchInputs, _Graph]:
        key = (rows, frames)
        if key not in self._decoder:
            model, dev = self.model, self.model.device
            tokens = self.buckets.tokens[-1]
            c_asr = model.config.hidden_dim
            c_d = model.config.hidden_dim + model.config.style_dim
            durations = torch.zeros(rows, tokens, dtype=torch.long, device=dev)
            durations[:, 0] = 1  # a frame per row until real durations come in
            text = TextSide(d=torch.zeros(rows, tokens, c_d, device=dev),
                            asr=torch.zeros(rows, c_asr, tokens, device=dev),
                            durations=durations)
            batch = BatchInputs(ids=torch.zeros(rows, 1, dtype=torch.long, device=dev),
                                lengths=None, style=torch.zeros(rows, 2 * model.config.style_dim,
                                                                device=dev),
                                speed=torch.ones(rows, device=dev), seeds=None)
            self._decoder[key] = (text, batch, _Graph(
                lambda: model.decoder_side(text, batch, frames, True), self.capture,
                self._pool, self._guard))
        return self._decoder[key]


def describe(forward: StaticForward) -> Iterator[str]:
    """Lines for the log: what was captured, how long it took."""
    b = forward.buckets
    yield (f"{forward.graphs} {'CUDA graphs captured' if forward.capture else 'static shapes'} "
           f"in {forward.captured_s:.1f} s: rows {list(b.rows)}, tokens {list(b.tokens)}, "
           f"frames {list(b.frames)} (rows x frames <= {b.max_cells})")
