"""The runner: requests in, audio out, one batch at a time. Besides the model, the only place
that touches torch; the engine loop calls it from its own thread."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sysconfig
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch

from realtime.engine.batch import Cursor, Piece, RunOutput, WholeChunks
from realtime.engine.info import ModelInfo
from realtime.engine.plan import (
    PLAIN,
    Kernels,
    WindowPlan,
    cpu_fused_norms_missing,
    resolve_dtype,
)
from realtime.engine.request import ChunkRequest
from realtime.engine.runner.graphs import Buckets, StaticForward, describe
from realtime.engine.runner.windows import Cursor as WindowCursor
from realtime.engine.runner.windows import next_pieces, start_windows
from realtime.errors import ConfigError
from realtime.model.kmodel import KModel, SynthItem
from realtime.weights.registry import LoadedModel

log = logging.getLogger("realtime.engine")

DType = Literal["auto", "float32", "bfloat16", "float16"]
_DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16}

WARM_UP_PHONEMES = ("hˈɛlO.", "ðɪs ɪz ə wˈɔɹm ˈʌp sˈɛntəns, ʤˈʌst tə ɡˈɛt ðə kˈɛɹnᵊlz ɹˈɛdi.")


def model_info(lm: LoadedModel) -> ModelInfo:
    """The model as sessions see it (no tensors: for a process without torch too)."""
    return ModelInfo(lm.name, tuple(lm.voices.names), lm.default_voice,
                     frozenset(lm.model.config.vocab), str(lm.device),
                     lm.model.config.frame_samples)


def cxx_compiler() -> str | None:
    """The C++ compiler that torch.compile's inductor would build CPU kernels with (``CXX``,
    else the first of g++, c++, clang++ on the PATH), or None."""
    named = os.environ.get("CXX")
    if named:
        return shutil.which(named)
    return next((found for name in ("g++", "c++", "clang++") if (found := shutil.which(name))),
                None)


def cpu_compile_missing() -> str | None:
    """What torch.compile lacks here to build CPU kernels (its C++ includes Python.h), or None
    when nothing is missing."""
    if cxx_compiler() is None:
        return "a C++ compiler (CXX, g++, c++ or clang++; Debian: g++)"
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        return f"Python's C headers (no Python.h in {include}; Debian: python3-dev)"
    return None


def use_fused_row_norms(model: KModel, on: bool) -> None:
    """Switch ``model``'s CPU norm-and-Snake pairs to the compiled kernels or back to eager
    (``KModel.fuse_row_norms``); on, with what torch.compile needs missing, a ConfigError
    saying what and how to turn it off."""
    missing = cpu_compile_missing() if on else None
    if missing:
        raise cpu_fused_norms_missing(missing)
    model.fuse_row_norms("inductor" if on else None)


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AVX-512 BF16 or AMX): torch's own checks
    where this torch has them, else the CPU's flags (Linux)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported",
                                                         "_is_amx_tile_supported")]
    if any(callable(check) for check in checks):
        return any(callable(check) and bool(check()) for check in checks)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags



class ModelRunner(WholeChunks):
    """Runs batches on a loaded KModel, one pass per batch.

    ``dtype``: ``auto`` (float16 on CUDA; on a CPU bfloat16 where it has bfloat16 arithmetic,
    else float32), ``float32``, or autocast to ``bfloat16`` / ``float16`` (CUDA only); the
    LSTMs, the harmonic source and the STFTs stay in float32 whatever it is. ``graphs``:
    static-shape buckets to pad batches to, with CUDA graphs captured over them at warm-up on a
    GPU (``graphs.py``); None runs every batch eagerly at its own shape. ``windows``: decode
    chunks in windows (``start_windows`` and ``next_pieces``, ``windows.py``; eager, also on
    a GPU). ``kernels``: the execution strategy (``realtime.engine.plan.Kernels``), applied
    here to the model itself, so for every runner on it: ``fused_norms`` through
    ``KModel.fuse_norms``; ``cpu_fft`` (a CPU in float32) through ``KModel.use_fft_convs``,
    the weight spectra computed here; ``cpu_fused_norms`` (a CPU) through
    ``KModel.fuse_row_norms``, compiled in :meth:`warm_up` or at the first forward without
    one, needing a C++ compiler and Python's headers (else a ConfigError);
    ``compile_decoder`` through ``KModel.compile_decoder`` (with ``windows``, the generator
    over each batch of windows; compiled in :meth:`warm_up`; with graphs a batch of one row
    pads to two rows).
    """

    def __init__(self, lm: LoadedModel, dtype: DType = "auto",
                 graphs: Buckets | None = None, windows: WindowPlan | None = None,
                 kernels: Kernels = PLAIN) -> None:
        fused_norms, compile_decoder = kernels.fused_norms, kernels.compile_decoder
        cpu_fft, cpu_fused_norms = kernels.cpu_fft, kernels.cpu_fused_norms
        if dtype != "float32" and dtype != "auto" and dtype not in _DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
        dtype = resolve_dtype(dtype, lm.device.type,  # type: ignore[assignment]
                              lm.device.type == "cpu" and native_bf16())
        missing = cpu_compile_missing() if compile_decoder and lm.device.type == "cpu" else None
        if missing:
            raise ConfigError(f"the compiled decoder on a CPU needs {missing}")
        if fused_norms:
            lm.model.fuse_norms()
        if compile_decoder:
            lm.model.compile_decoder()
        if compile_decoder and graphs is not None and graphs.rows[0] == 1:
            # torch.compile specialises sizes of 1: a batch of one row would be a second
            # compile (a minute or two), so it pads to two rows instead.
            graphs = replace(graphs, rows=tuple(sorted({max(2, r) for r in graphs.rows})))
        self.kernels = kernels
        self.compile_decoder = compile_decoder
        if lm.device.type == "cpu":
            held = lm.model.use_fft_convs(cpu_fft and dtype == "float32")
            if held:
                log.info("wide CPU convolutions through the FFT: weight spectra %d MiB",
                         held >> 20)
            use_fused_row_norms(lm.model, cpu_fused_norms)
        self.cpu_fused_norms = cpu_fused_norms and lm.device.type == "cpu"
        self.lm = lm
        self.info = replace(model_info(lm), window_s=None if windows is None else windows.first_s)
        self.dtype = dtype
        self.static = (None if graphs is None else
                       StaticForward(lm.model, graphs, lm.device.type == "cuda", self._autocast))
        self.windows = windows

    @property
    def adaptive(self) -> bool:  # type: ignore[override]
        return self.windows is not None and self.windows.adaptive

    def start(self, batch: Sequence[ChunkRequest]) -> list[Cursor]:
        """Without a window plan, each chunk whole (one window); with one, the work before the
        generator for the batch, one pass (``windows.py``): a cursor per chunk."""
        if self.windows is None:
            return super().start(batch)
        return list(self.start_windows(batch))

    def step(self, cursors: Sequence[Cursor]) -> Iterator[tuple[int, Piece]]:
        """The next window of each chunk (started together or not), one padded batch."""
        if self.windows is None:
            yield from super().step(cursors)
            return
        mine = [c for c in cursors if isinstance(c, WindowCursor)]
        if len(mine) != len(cursors):
            raise TypeError("a windowed runner steps only its own cursors")
        yield from enumerate(self.next_pieces(mine))

    def start_windows(self, batch: Sequence[ChunkRequest]) -> list[WindowCursor]:
        """The work before the generator for a batch of chunks (``windows.py``): a cursor
        per chunk, for :meth:`next_pieces`."""
        if self.windows is None:
            raise ConfigError("this runner decodes whole chunks (no window plan)")
        items = self._items(batch)
        with self._autocast():
            return start_windows(self.lm.model, items, self.windows)

    def next_pieces(self, cursors: Sequence[WindowCursor]) -> list[Piece]:
        """The next window of each chunk (started together or not), one padded batch: a piece
        each, in order."""
        with self._autocast():
            return next_pieces(self.lm.model, cursors)

    def prepare(self, request: ChunkRequest) -> None:
        self.info.check(request)  # what a worker process checks too, without the model

    def _items(self, batch: Sequence[ChunkRequest]) -> list[SynthItem]:
        model, voices = self.lm.model, self.lm.voices
        items = []
        for r in batch:
            ids = model.phonemes_to_ids(r.phonemes)
            items.append(model.item(ids, voices.style(r.voice, len(ids)), r.speed, r.seed))
        return items

    def run(self, batch: Sequence[ChunkRequest]) -> Iterator[RunOutput]:
        model = self.lm.model
        items = self._items(batch)
        if self.static is not None:
            outs = self.static.forward_batch(items)
        else:
            with self._autocast():
                outs = model.forward_batch(items)
        for i, o in enumerate(outs):
            yield i, o.audio.numpy(), o.durations.numpy()

    def warm_up(self) -> None:
        """Run the kernels once (first calls allocate and pick algorithms), and make the
        static shapes' graphs, with progress in the log.

        On a CPU one short chunk is enough: a padded batch of the two lengthens the start
        without making the first request any sooner (docs/lab/2026-11-29-start-up.md)."""
        voice = self.lm.default_voice
        vocab = self.lm.model.config.vocab
        texts = ["".join(c for c in p if c in vocab) for p in WARM_UP_PHONEMES]
        reqs = [ChunkRequest("warm-up", "warm-up", t, voice, 0.0) for t in texts if t]
        began = time.perf_counter()
        if self.cpu_fused_norms:
            log.info("compiling the norm-and-Snake pairs into fused kernels (torch.compile: "
                     "about 5 s on 2 cores with inductor's cache of an earlier start, 20-30 s "
                     "without)")
            with self._autocast():
                self.lm.model.compile_row_norms(
                    [torch.float32] + ([_DTYPES[self.dtype]] if self.dtype in _DTYPES else []))
        what = "the decoder" if self.windows is None else "the generator over windows"
        if self.compile_decoder:
            log.info("compiling %s for padded batches (torch.compile, dynamic shapes: about a "
                     "minute on 2 CPU cores, less with inductor's cache of an earlier start)",
                     what)
        for _ in self.run(reqs[:1]):
            pass
        if self.cpu_fused_norms:
            log.info("norm-and-Snake pairs: fused kernels ready (%.1f s with the first "
                     "forward)", time.perf_counter() - began)
        if self.lm.device.type != "cpu" or self.compile_decoder:
            # A padded batch, as the engine runs them (a GPU's batch of one is padded too).
            if self.windows is None:
                for _ in self.run(reqs):
                    pass
            else:
                cursors = self.start_windows(reqs)
                while active := [c for c in cursors if not c.done]:
                    self.next_pieces(active)
        if self.compile_decoder:
            log.info("compiled %s for padded batches (%.1f s with the first forwards)",
                     what, time.perf_counter() - began)
        if self.static is not None:
            self.static.warm_up(_log_progress)
            for line in describe(self.static):
                log.info("%s", line)
        log.info("engine warmed up on %s (%s)", self.lm.device, self.dtype)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.dtype == "float32":
            yield
            return
        # No weight cache: a captured graph must not keep copies that a later run replaces.
        with torch.autocast(self.lm.device.type, dtype=_DTYPES[self.dtype], cache_enabled=False):
            yield


def _log_progress(done: int, total: int, shape: str) -> None:
    if done == total or done % 10 == 0:
        log.info("graphs: %d of %d (%s)", done, total, shape)
