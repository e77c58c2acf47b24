"""``realtime bench``: the engine under load, sequential vs batched, with onnxruntime as the
baseline, all in one run and on the same chunks.

At concurrency C, C simulated sessions each send ``chunks`` chunks one after another (the next
once the previous one's audio is back) with the deadlines a streaming session would give them:
the first chunk due now, each later one when the audio before it would run out. The same
workload runs through the same engine loop three ways:

- ``sequential``: one chunk at a time, in arrival order (what a pool of single-stream workers
  on the same cores would do);
- ``batched``: earliest deadline first, batches of up to C chunks;
- ``onnxruntime``: the int8 ONNX export of the same weights, one chunk at a time.

Throughput is audio seconds per wall second; latency is from submit to audio, per chunk
(all of it); "first audio" is from a session's first submit to its first audio (the first
piece, with windowed decoding: ``windows``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from realtime.engine.batch import Runner, RunOutput, WholeChunks
from realtime.engine.buckets import Buckets
from realtime.engine.loop import Engine
from realtime.engine.plan import Kernels, WindowPlan
from realtime.engine.policy import EDFPolicy, FIFOPolicy, Policy
from realtime.engine.request import ChunkRequest, joined
from realtime.engine.runner.runner import DType, ModelRunner
from realtime.weights.embedded import embedded_onnx_path
from realtime.weights.registry import LoadedModel

log = logging.getLogger("realtime.bench.single")

# What agents say: short acknowledgements to long explanations (the sizes vary on purpose).
SENTENCES = (
    "Sure, I can help with that.",
    "Your order shipped this morning and should arrive on Thursday before noon.",
    "Okay.",
    "Let me look that up for you, it will only take a moment while I check our records.",
    "The appointment is confirmed for the fourteenth at half past ten, and a reminder will be "
    "sent to your phone the day before, so there is nothing else you need to do right now.",
    "Is there anything else I can do for you today?",
    "Thanks for waiting.",
    "I found three flights that match, the cheapest leaves at seven in the evening.",
)


class OnnxRunner(WholeChunks):
    """The ONNX export under onnxruntime, one chunk at a time, behind the engine's Runner face."""

    def __init__(self, lm: LoadedModel, threads: int, cache_dir: Path | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.lm = lm
        self.session = ort.InferenceSession(str(embedded_onnx_path(cache_dir)), sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def prepare(self, request: ChunkRequest) -> None:
        self.lm.model.phonemes_to_ids(request.phonemes)

    def run(self, batch: Sequence[ChunkRequest]) -> Iterator[RunOutput]:
        for i, r in enumerate(batch):
            ids = self.lm.model.phonemes_to_ids(r.phonemes)
            style = self.lm.voices.style(r.voice, len(ids)).reshape(1, -1).numpy()
            feed = {"tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                    "style": style.astype(np.float32),
                    "speed": np.array([r.speed], dtype=np.float32)}
            audio = self.session.run(None, feed)[0].ravel().astype(np.float32)
            yield i, audio, np.zeros(len(ids) + 2, dtype=np.int64)

    def warm_up(self) -> None:
        for _ in self.run([ChunkRequest("warm-up", "warm-up", "hˈɛlO.",
                                        self.lm.default_voice, 0.0)]):
            pass


@dataclass(frozen=True, slots=True)
class Level:
    """One mode at one concurrency."""

    mode: str
    concurrency: int
    chunks: int
    audio_s: float
    wall_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    first_p50_ms: float
    first_p95_ms: float
    first_max_waited_batches: int
    first_max_overtaken: int  # later chunks (of sessions already talking) started ahead of it
    mean_batch: float
    # A first chunk's first audio (its first piece with windowed decoding; else all of it).
    first_audio_p50_ms: float = 0.0
    first_audio_p95_ms: float = 0.0
    gpu_peak_mb: float | None = None  # CUDA: peak memory allocated during the level
    gpu_reserved_mb: float | None = None  # CUDA: memory the allocator holds after it

    @property
    def throughput(self) -> float:
        return self.audio_s / self.wall_s

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__} | {"throughput": self.throughput}


async def _level(engine: Engine, mode: str, concurrency: int, chunks: int,
                 phonemes: Sequence[str], voice: str) -> Level:
    clock = engine.clock
    latencies: list[float] = []
    firsts: list[float] = []
    first_audio: list[float] = []
    waited: list[int] = []
    batches: list[int] = []
    starts: list[tuple[int, float, float]] = []  # (chunk index, submitted, started)
    audio = 0.0

    async def session(i: int) -> None:
        nonlocal audio
        deadline = clock()
        for k in range(chunks):
            text = phonemes[(i * chunks + k) % len(phonemes)]
            req = ChunkRequest(f"s{i}", "c", text, voice, deadline, chunk_id=k)
            t0 = clock()
            piece = await asyncio.wrap_future(engine.submit(req))
            t_piece = clock()
            res = await joined(piece)
            t1 = clock()
            latencies.append(t1 - t0)
            batches.append(res.batch_size)
            starts.append((k, t0, t0 + res.queued_s))
            if k == 0:
                firsts.append(t1 - t0)
                first_audio.append(t_piece - t0)
                waited.append(res.waited_batches)
            audio += res.audio_s
            deadline = max(deadline, t1) + res.audio_s  # when this session's audio runs out

    start = clock()
    await asyncio.gather(*(session(i) for i in range(concurrency)))
    wall = clock() - start
    # First chunks should overtake queued later chunks: count, for each first chunk, the later
    # chunks that started while it waited (their batches ran ahead of it).
    overtaken = max((sum(1 for k2, _, s2 in starts if k2 > 0 and t0 < s2 < s0)
                     for k, t0, s0 in starts if k == 0), default=0)
    ms = 1000.0
    return Level(mode, concurrency, concurrency * chunks, audio, wall,
                 float(np.percentile(latencies, 50)) * ms, float(np.percentile(latencies, 95)) * ms,
                 float(np.percentile(firsts, 50)) * ms, float(np.percentile(firsts, 95)) * ms,
                 max(waited), overtaken, float(np.mean(batches)),
                 float(np.percentile(first_audio, 50)) * ms,
                 float(np.percentile(first_audio, 95)) * ms)


def run_engine_bench(lm: LoadedModel, phonemes: Sequence[str], concurrency: Sequence[int],
                     chunks: int, threads: int, voice: str | None = None,
                     cache_dir: Path | None = None, onnx: bool = True, dtype: DType = "auto",
                     graphs: Buckets | None = None, sequential: bool = True,
                     batched_runner: ModelRunner | None = None,
                     windows: WindowPlan | None = None,
                     cpu_fused_norms: bool = False) -> dict[str, object]:
    """``graphs``: the batched mode pads batches to these buckets (CUDA graphs on a GPU) and
    its policy forms batches that fit them. ``batched_runner``: one already warmed up (its
    graphs captured), used instead of a new one. ``windows``: the batched mode decodes chunks
    in windows (each batch a window of each chunk in it). ``cpu_fused_norms``: on a CPU, the
    decoder's norm-and-Snake pairs compiled, as the server runs them (``ModelRunner``;
    ``realtime bench`` turns it on)."""
    torch.set_num_threads(threads)
    voice = voice or lm.default_voice
    cuda = lm.device.type == "cuda"
    kernels = Kernels(cpu_fused_norms=cpu_fused_norms)
    batched = batched_runner or ModelRunner(lm, dtype, graphs, windows, kernels)
    modes: list[tuple[str, Runner, Policy | None]] = []
    if sequential:
        modes.append(("sequential", ModelRunner(lm, dtype, kernels=kernels),
                      FIFOPolicy()))
    modes.append(("batched", batched, None))
    if onnx:
        modes.append(("onnxruntime", OnnxRunner(lm, threads, cache_dir), FIFOPolicy()))
    levels: list[Level] = []
    for mode, runner, policy in modes:
        for c in concurrency:
            plan = getattr(runner, "windows", None)
            engine = Engine(runner, policy or EDFPolicy(
                max_batch=c, buckets=graphs, window_s=None if plan is None else plan.padded_s()))
            engine.start(warm_up=c == concurrency[0] and runner is not batched_runner)
            if cuda:
                torch.cuda.reset_peak_memory_stats(lm.device)
            try:
                level = asyncio.run(_level(engine, mode, c, chunks, phonemes, voice))
            finally:
                engine.stop()
            if cuda:
                mib = 2**20
                level = replace(level,
                                gpu_peak_mb=torch.cuda.max_memory_allocated(lm.device) / mib,
                                gpu_reserved_mb=torch.cuda.memory_reserved(lm.device) / mib)
            log.info("%s at %d: %.2f audio-s/s, first chunk p95 %.0f ms, its first audio p95 "
                     "%.0f ms", mode, c, level.throughput, level.first_p95_ms,
                     level.first_audio_p95_ms)
            levels.append(level)
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "device": str(lm.device), "threads": threads,
                    "torch": torch.__version__},
        "model": lm.name, "voice": voice, "chunks_per_session": chunks,
        "dtype": batched.dtype,
        "windows": None if batched.windows is None else {
            "first_s": batched.windows.first_s, "later_s": batched.windows.later_s},
        "graphs": None if graphs is None else {"rows": graphs.rows, "tokens": graphs.tokens,
                                               "frames": graphs.frames,
                                               "max_cells": graphs.max_cells},
        "sentences": len(phonemes),
        "mean_chunk_audio_s": sum(lv.audio_s for lv in levels) / sum(lv.chunks for lv in levels),
        "levels": [lv.as_dict() for lv in levels],
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def engine_report(result: dict[str, object]) -> str:
    levels = result["levels"]
    assert isinstance(levels, list)
    lines = [f"{'mode':<12} {'C':>3} {'audio-s/s':>9} {'lat p50':>8} {'lat p95':>8} "
             f"{'first p95':>9} {'audio p95':>9} {'waited':>6} {'overt':>5} {'batch':>5}"]
    for lv in levels:
        lines.append(f"{lv['mode']:<12} {lv['concurrency']:>3} {lv['throughput']:>9.2f} "
                     f"{lv['latency_p50_ms']:>7.0f}ms {lv['latency_p95_ms']:>7.0f}ms "
                     f"{lv['first_p95_ms']:>8.0f}ms {lv['first_audio_p95_ms']:>8.0f}ms "
                     f"{lv['first_max_waited_batches']:>6} "
                     f"{lv['first_max_overtaken']:>5} {lv['mean_batch']:>5.1f}"
                     + (f" {lv['gpu_peak_mb']:>8.0f}MB" if lv.get("gpu_peak_mb") else ""))
    return "\n".join(lines)


def write_outputs(result: dict[str, object], json_path: Path, png_path: Path | None) -> None:
    json_path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    if png_path is None:
        return
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = result["levels"]
    assert isinstance(levels, list)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode in dict.fromkeys(lv["mode"] for lv in levels):
        rows = [lv for lv in levels if lv["mode"] == mode]
        xs = [lv["concurrency"] for lv in rows]
        ax1.plot(xs, [lv["throughput"] for lv in rows], marker="o", label=mode)
        ax2.plot(xs, [lv["first_p95_ms"] for lv in rows], marker="o", label=f"{mode} first")
        ax2.plot(xs, [lv["latency_p95_ms"] for lv in rows], marker="x", linestyle="--",
                 label=f"{mode} all")
    machine = result["machine"]
    assert isinstance(machine, dict)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({lv["concurrency"] for lv in levels}))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrent sessions")
        ax.grid(alpha=0.3)
    ax1.set_ylabel("audio seconds per second")
    ax1.set_title("throughput")
    ax2.set_ylabel("p95 latency per chunk (ms)")
    ax2.set_yscale("log")
    ax2.set_title("latency (first chunk / all chunks)")
    ax1.legend()
    ax2.legend(fontsize=7)
    fig.suptitle(f"realtime bench: {result['model']} on {machine['device']}, "
                 f"{machine['threads']} threads, {machine['cpus']} CPUs")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


__all__ = ["SENTENCES", "OnnxRunner", "engine_report", "run_engine_bench", "write_outputs"]
