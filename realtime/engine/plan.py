"""The engine plan: the configuration resolved once, by device, into what the engine runs.

``plan_engine`` takes the ``EngineConfig`` (flags and ``REALTIME_*`` variables) and the facts
of the device (its kind, whether a CPU has bfloat16 arithmetic, whether torch.compile can build
CPU kernels here) and decides the precision, the batch bounds, the CUDA graph buckets, the
window plan and the kernels. The engine logs the plan at start-up and ``/readyz`` reports it.
Pure: no torch (the device's facts are passed in).
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime.config import EngineConfig
from realtime.engine.buckets import GRAPH_BUCKETS, Buckets
from realtime.errors import ConfigError

__all__ = ["GPU_MAX_BATCH", "EnginePlan", "Kernels", "WindowPlan", "plan_engine", "resolve_dtype"]

# Chunks per batch on a GPU: the largest graph bucket. On a CPU a batch runs no faster per
# item than one chunk (the decoder is compute-bound and its activations outgrow the caches),
# so a batch of one lets the policy re-choose after every chunk.
GPU_MAX_BATCH = GRAPH_BUCKETS.rows[-1]


@dataclass(frozen=True, slots=True)
class Kernels:
    """How the runner executes the model (chosen by the plan, applied by the runner; none of
    them changes what the model computes beyond float rounding).

    ``cpu_fft``: on a CPU in float32, the decoder's wide convolutions through the FFT.
    ``cpu_fused_norms``: on a CPU, the decoder's norm-and-Snake pairs over a chunk's rows as
    fused kernels compiled by torch.compile (needs a C++ compiler and Python's headers).
    ``fused_norms``: the same pairs over padded batches (a GPU's), compiled.
    ``compile_decoder``: the decoder over padded batches compiled as one graph (not with
    ``fused_norms``: it fuses them itself). The defaults: the plain model, with the FFT's
    convolutions where they apply.
    """

    cpu_fft: bool = True
    cpu_fused_norms: bool = False
    fused_norms: bool = False
    compile_decoder: bool = False

    def __post_init__(self) -> None:
        if self.compile_decoder and self.fused_norms:
            raise ConfigError("the compiled decoder fuses the norm-and-Snake pairs itself: "
                              "drop fused_norms")

    def names(self) -> list[str]:
        return [name for name in ("cpu_fft", "cpu_fused_norms", "fused_norms", "compile_decoder")
                if getattr(self, name)]


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Windowed decoding (``realtime.engine.runner.windows``): window sizes in seconds of
    audio, ``first_s`` for the first, ``later_s`` for the rest (a remainder under half of the
    next window joins the window before it); ``margin_s`` of context on each side; ``fade_ms``
    of crossfade at each seam. ``adaptive``: the engine cuts a later window short where the
    generator's measured speed says it would not be done before the chunk's audio so far has
    played (never below ``first_s``; ``realtime.engine.pace``)."""

    first_s: float = 1.0
    later_s: float = 3.0
    margin_s: float = 0.2
    fade_ms: float = 10.0
    adaptive: bool = False

    def __post_init__(self) -> None:
        if not (self.first_s > 0 and self.later_s > 0):
            raise ConfigError(f"window sizes must be positive, got first {self.first_s} s, "
                              f"later {self.later_s} s")
        if self.margin_s < 0 or self.fade_ms < 0:
            raise ConfigError("window margin and crossfade must not be negative")
        if self.fade_ms / 2000.0 > self.margin_s:
            raise ConfigError(f"the crossfade ({self.fade_ms} ms) needs a margin of at least "
                              f"half of it (margin {self.margin_s} s)")

    def padded_s(self) -> tuple[float, float]:
        """Seconds of audio the generator runs for the first and for each later window, margins
        included (the policy's bound on a batch of windows)."""
        return self.first_s + 2 * self.margin_s, self.later_s + 2 * self.margin_s

    def cores(self, frames: int, rate: float, start: int = 0,
              previous: int = 0) -> list[tuple[int, int]]:
        """The windows' own frames ``[a, b)`` over ``frames`` frames at ``rate`` per second;
        from frame ``start`` after a window of ``previous`` frames (0: from the first window;
        how a cursor re-plans the rest of a chunk after cutting a window short)."""
        later = max(1, round(self.later_s * rate))
        out: list[tuple[int, int]] = []
        a, size = start, (max(1, round(self.first_s * rate)) if not previous else later)
        while a < frames:
            b = min(frames, a + size)
            if frames - b < later / 2:  # a remainder under half the next window joins this one
                b = frames
            out.append((a, b))
            a, size = b, later
        return out


@dataclass(frozen=True, slots=True)
class EnginePlan:
    """What the engine runs: one frozen value, made by :func:`plan_engine`."""

    device: str  # the torch device, e.g. cpu or cuda:0
    dtype: str  # float32, bfloat16 or float16 (autocast; the LSTMs and STFTs stay float32)
    max_batch: int
    max_frames: float
    queue_limit: int
    buckets: Buckets | None  # CUDA graphs captured over these shapes; None: eager batches
    windows: WindowPlan | None  # None: chunks decoded whole
    kernels: Kernels
    warm_up: bool = True

    def __post_init__(self) -> None:
        if self.kernels.compile_decoder and self.max_batch == 1:
            raise ConfigError("the compiled decoder is compiled for padded batches, and batches "
                              "of one chunk (max_batch 1, a CPU's default) are never padded: "
                              "raise max_batch (REALTIME_MAX_BATCH) or leave it out")

    def describe(self) -> dict[str, object]:
        """The plan as JSON values (``/readyz``, the start-up log)."""
        w = self.windows
        return {
            "device": self.device, "dtype": self.dtype, "max_batch": self.max_batch,
            "max_frames": self.max_frames, "queue_limit": self.queue_limit,
            "cuda_graphs": None if self.buckets is None else {
                "rows": list(self.buckets.rows), "tokens": list(self.buckets.tokens),
                "frames": list(self.buckets.frames), "max_cells": self.buckets.max_cells},
            "windows": None if w is None else {
                "first_s": w.first_s, "later_s": w.later_s, "adaptive": w.adaptive},
            "kernels": self.kernels.names(),
        }

    def summary(self) -> str:
        """One line for the log."""
        w = self.windows
        parts = [self.device, self.dtype, f"batches of up to {self.max_batch}",
                 "CUDA graphs" if self.buckets is not None else "no CUDA graphs",
                 "chunks whole" if w is None else
                 f"windows of {w.first_s:g} s, then {w.later_s:g} s"
                 + (" (later ones cut to the measured speed)" if w.adaptive else ""),
                 "kernels: " + (", ".join(self.kernels.names()) or "plain")]
        return "; ".join(parts)


PLAIN = Kernels()  # the model as written, the FFT's convolutions where they apply


def cpu_fused_norms_missing(missing: str) -> ConfigError:
    """The error for the CPU's fused kernels where torch.compile lacks ``missing``."""
    return ConfigError(f"the CPU's fused norms are compiled with torch.compile, which needs "
                       f"{missing}: install it (`make install` does), or run without compiled "
                       f"kernels: --eager (REALTIME_EAGER=1) or REALTIME_CPU_FUSED_NORMS=0")


def resolve_dtype(dtype: str, device_kind: str, native_bf16: bool) -> str:
    """``auto``: float16 on CUDA (faster there than bfloat16); on a CPU bfloat16 where it has
    bfloat16 arithmetic (faster than float32, the same words heard), else float32 (bfloat16
    emulated is no faster). Raises ``ConfigError`` for float16 on a CPU. Measurements:
    docs/lab/2026-11-28-cpu-bfloat16.md, docs/lab/2026-11-28-h100-gpu-check.md."""
    if dtype == "auto":
        dtype = "float16" if device_kind != "cpu" else "bfloat16" if native_bf16 else "float32"
    if dtype == "float16" and device_kind == "cpu":
        raise ConfigError("dtype float16 needs a CUDA device; on the CPU use bfloat16")
    return dtype


def plan_engine(cfg: EngineConfig, device: str, native_bf16: bool = False,
                compile_missing: str | None = None) -> EnginePlan:
    """The plan for ``cfg`` on ``device`` (a torch device string). ``native_bf16``: the CPU
    has bfloat16 arithmetic; ``compile_missing``: what torch.compile lacks here to build CPU
    kernels (None: nothing). Raises ``ConfigError`` for a combination the device cannot run."""
    kind = device.split(":")[0]
    cpu = kind == "cpu"
    dtype = resolve_dtype(cfg.dtype, kind, native_bf16)
    windowed = cfg.windows == "on" or (cfg.windows == "auto" and cpu)
    windows = (WindowPlan(cfg.window_first_s, cfg.window_later_s,
                          # Timed as rows x frames: a CPU's batches (a GPU's batch of many
                          # rows costs about what one does).
                          adaptive=cfg.window_adaptive and cpu)
               if windowed else None)
    max_batch = cfg.max_batch or (1 if cpu else GPU_MAX_BATCH)
    # Windows are decoded eagerly (the graphs are captured for whole chunks).
    graphs = kind == "cuda" and cfg.cuda_graphs and not cfg.eager and windows is None
    cpu_fused = cpu and cfg.cpu_fused_norms and not cfg.eager
    if cpu_fused and compile_missing:
        raise cpu_fused_norms_missing(compile_missing)
    # The GPU's compiled forms (fused_norms, compile_decoder) are off: whether one pays on a
    # card is for scripts/gpu-check to measure (it chooses among them).
    kernels = Kernels(cpu_fft=cpu and cfg.cpu_fft and dtype == "float32",
                      cpu_fused_norms=cpu_fused)
    return EnginePlan(device, dtype, max_batch, cfg.max_frames, cfg.queue_limit,
                      GRAPH_BUCKETS if graphs else None, windows, kernels, cfg.warm_up)
