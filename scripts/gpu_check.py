"""The batched engine on a GPU, in one short command: what docs/engine.md reports per card.

Runs on a bare GPU machine with no network (torch, onnx, numpy; no transformers, starlette,
soxr, opuslib or text front end: phonemes come from ``gpu_check_phonemes.json``, made here by
``--write-phonemes``). The real weights come from ../shared/tools/gpu-payload.sh (two device
calls; it prints them), then:

    PYTHONPATH=$PWD:$PWD/.gpu/site REALTIME_CACHE_DIR=/tmp/rtcache \\
        python3 scripts/gpu_check.py --out $OUT

Within ``--budget`` seconds (default 480; the figures the issue asks for come in the first
two minutes, the experiments after them) it writes, section by section (a section that fails
records its error and the rest go on; the JSON is rewritten after each):
- ``gpu-check.json``: the card; batched vs alone (log-mel dB, durations) against the float
  ordering calibration; float16 and bfloat16 against float32; one short chunk's latency with
  graphs, eagerly in half and in float32; CUDA graph capture time and GPU memory; engine levels
  up to 256 sessions (audio-s per s, first-chunk p95 with all sessions arriving at once);
  saturation: one long sentence repeated 1 to 64 times through the graphs, audio-s per s;
  cudnn_benchmark: one decoder bucket (32 rows of the longest sentence) captured with cuDNN's
  benchmarked convolution algorithms against its heuristics' (torch's default): batch time and
  capture time of each;
  windows: chunks decoded in windows, every chunk's next window in one eager batch
  (``--windows on``): six chunks' windows together against alone, and levels 1 to 256 with
  first audio (the first piece) beside the whole first chunk (audio ``windows_*``);
  compiled_decoder: the decoder over padded batches as one compiled graph
  (``Kernels(compile_decoder=True)``): compile and capture time, audio against the
  uncompiled, a short chunk, levels 1 to 256 (audio ``compiled_*``); windows_compiled:
  windows with the generator over each batch of windows compiled (windows on, the same
  kernels): the compile, audio against the eager windows, levels 1 to 256 and 128 sessions
  with a 0.5 s first window (audio ``wincompiled_*``); fused_norms: the decoder's
  norm-and-Snake pairs compiled into fused kernels (``Kernels(fused_norms=True)``): compile
  and capture time, audio against the unfused, a short chunk, levels 1 to 256 (audio
  ``fused_*``); windows_first_0_5s: the eager windows' levels 32 and 128 with a 0.5 s
  first window (first audio at 128 sessions against 250 ms); frames_doubling: levels 128
  and 256 again with the first run's frame buckets (each twice the last), for the finer
  buckets' gain in the same run;
- ``gpu-check-bench.png``: the levels plotted (matplotlib, where installed);
- ``gpu-check-kernels.txt``: the top CUDA kernels of one eager half-precision batch of 32;
- ``gpu-check-audio.npz``: a few sentences in float32, float16 and bfloat16 (int16 PCM), to
  transcribe back home: ``python scripts/gpu_check.py --transcribe DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PHONEMES = HERE / "gpu_check_phonemes.json"
VOICE = "af_heart"
# Spoken by the engine levels; the first ones are also compared and transcribed.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you get this message.",
    "Thank you for waiting, your order is ready for pickup.",
    "Can you tell me how to reset my password?",
    "Turn left at the next corner and walk to the station.",
    "The library opens early and closes late in the evening.",
    "Sure, I can help with that.",
    "Your order shipped this morning and should arrive on Thursday before noon.",
    "Okay.",
    "Let me look that up for you, it will only take a moment while I check our records.",
    "The appointment is confirmed for the fourteenth at half past ten, and a reminder will be "
    "sent to your phone the day before, so there is nothing else you need to do right now.",
    "Is there anything else I can do for you today?",
    "Thanks for waiting.",
]
SHORT = "Hello there."  # one short chunk, for the latency figure


class Report:
    """The JSON, rewritten after every section, so a timeout still leaves what was done."""

    def __init__(self, out: Path, budget_s: float) -> None:
        self.out = out
        self.deadline = time.monotonic() + budget_s
        self.data: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def section(self, name: str, needs_s: float, fn: Callable[[], Any]) -> Any:
        left = self.deadline - time.monotonic()
        if left < needs_s:
            self.data[name] = {"skipped": f"{left:.0f} s left, needs about {needs_s:.0f} s"}
            self.write()
            return None
        started = time.monotonic()
        print(f"== {name} ({left:.0f} s left)", flush=True)
        try:
            value = fn()
            self.data[name] = value
        except Exception as exc:  # recorded, and the next section still runs
            traceback.print_exc()
            self.data[name] = {"error": f"{type(exc).__name__}: {exc}",
                               "traceback": traceback.format_exc()[-4000:]}
            value = None
        self.data.setdefault("seconds", {})[name] = round(time.monotonic() - started, 2)
        self.write()
        return value

    def write(self) -> None:
        (self.out / "gpu-check.json").write_text(json.dumps(self.data, indent=2, default=str))


def write_phonemes() -> None:
    """Here, with the text front end: the phonemes the GPU machine cannot make."""
    from realtime.session.scheduler import TextScheduler
    from realtime.text.phonemize import Phonemizer

    phonemizer = Phonemizer("en-us")
    out = {}
    for text in [*SENTENCES, SHORT]:
        scheduler = TextScheduler(phonemizer)
        chunks = scheduler.push(text, 0.0) + scheduler.end(0.0)
        out[text] = " ".join(c.phonemes for c in chunks if c.phonemes)
    PHONEMES.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {PHONEMES} ({len(out)} texts)")


def transcribe(folder: Path) -> None:
    """Here, after a run: Whisper's words for each precision's audio, against float32's."""
    sys.path.insert(0, str(HERE.parent))  # the checkout: tests.real's Whisper helpers
    from tests.real.conftest import Transcriber, normalise

    data = np.load(folder / "gpu-check-audio.npz")
    whisper = Transcriber()
    heard: dict[str, list[str]] = {}
    for key in sorted(data.files, key=lambda k: (k.split("_")[0], int(k.split("_")[1]))):
        precision = key.split("_")[0]
        audio = data[key].astype(np.float32) / 32767.0
        heard.setdefault(precision, []).append(
            normalise(whisper(audio, folder, f"t-{key}")))
    for precision, words in heard.items():
        same = sum(a == b for a, b in zip(words, heard["float32"], strict=True))
        print(f"{precision}: {same}/{len(words)} transcripts as float32's")
        for a, b in zip(words, heard["float32"], strict=True):
            if a != b:
                print(f"  {precision}: {a!r}\n  float32: {b!r}")


def run_check(out: Path, budget_s: float, levels: list[int], device: str) -> None:
    import torch

    from realtime.bench.engine import run_engine_bench, write_outputs
    from realtime.bench.quality import mel_distance_db
    from realtime.engine.buckets import Buckets
    from realtime.engine.plan import Kernels, WindowPlan
    from realtime.engine.request import ChunkRequest
    from realtime.engine.runner.runner import ModelRunner
    from realtime.weights.registry import load_model

    COMPILED = Kernels(compile_decoder=True)

    report = Report(out, budget_s)
    phonemes: dict[str, str] = json.loads(PHONEMES.read_text(encoding="utf-8"))

    cuda = device.startswith("cuda")

    def machine() -> dict[str, Any]:
        found: dict[str, Any] = {"device": device, "torch": torch.__version__,
                                 "cpus": os.cpu_count()}
        if cuda:
            props = torch.cuda.get_device_properties(0)
            found |= {"gpu": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                      "multiprocessors": props.multi_processor_count,
                      "cuda": torch.version.cuda}
        return found

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    report.section("machine", 1, machine)
    lm = report.section("load", 30, lambda: load_model("kokoro-v1.0-int8", device=device))
    if lm is None:
        report.data["load"] = report.data.get("load") or {"error": "no model"}
        report.write()
        return
    report.data["load"] = {"model": lm.name, "voices": len(lm.voices.names)}
    model = lm.model

    def items(texts: list[str]) -> list[Any]:
        out_items = []
        for text in texts:
            ids = model.phonemes_to_ids(phonemes[text])
            out_items.append(model.item(ids, lm.voices.style(VOICE, len(ids))))
        return out_items

    def mel(a: Any, b: Any) -> float:
        return mel_distance_db(np.asarray(a), np.asarray(b))

    def equality() -> dict[str, Any]:
        batch = items(SENTENCES[:8])
        alone = [model.forward_batch([it])[0] for it in batch]
        ordering = max(mel(a.audio, c.audio) for it, a in zip(batch, alone, strict=True)
                       for c in model.forward_batch([it, it]))
        together = model.forward_batch(batch)
        return {"precision": "float32",
                "ordering_db": ordering,
                "batched_db": [mel(a.audio, b.audio) for a, b in zip(alone, together,
                                                                        strict=True)],
                "durations_equal": sum(bool(torch.equal(a.durations, b.durations))
                                       for a, b in zip(alone, together, strict=True)),
                "items": len(batch)}

    report.section("batched_vs_alone", 20, equality)

    def reqs(texts: list[str]) -> list[ChunkRequest]:
        return [ChunkRequest("check", f"c{i}", phonemes[t], VOICE, 0.0)
                for i, t in enumerate(texts)]

    saved_audio: dict[str, Any] = {}

    def save_audio(clips: dict[str, Any]) -> None:
        """Add clips (float audio) to gpu-check-audio.npz as int16 PCM, for --transcribe."""
        saved_audio.update({key: (np.clip(a, -1, 1) * 32767).astype(np.int16)
                            for key, a in clips.items()})
        np.savez_compressed(out / "gpu-check-audio.npz", **saved_audio)

    def precision() -> dict[str, Any]:
        batch = reqs(SENTENCES[:6])
        got: dict[str, list[Any]] = {}
        for dtype in ("float32", "float16", "bfloat16") if cuda else ("float32", "bfloat16"):
            runner = ModelRunner(lm, dtype)
            got[dtype] = sorted(runner.run(batch), key=lambda o: o[0])
        save_audio({f"{dtype}_{i}": a for dtype, outs in got.items() for i, a, _ in outs})
        return {dtype: {"vs_float32_db": [mel(a, b) for (_, a, _), (_, b, _) in
                                          zip(outs, got["float32"], strict=True)],
                        "durations_equal": sum(bool(np.array_equal(d, e)) for (_, _, d), (_, _, e)
                                               in zip(outs, got["float32"], strict=True))}
                for dtype, outs in got.items() if dtype != "float32"}

    report.section("half_vs_full", 20, precision)

    graphed: dict[str, Any] = {}

    def capture() -> dict[str, Any]:
        runner = ModelRunner(lm, "auto", Buckets())
        sync()
        start = time.perf_counter()
        runner.warm_up()
        sync()
        graphed["runner"] = runner
        assert runner.static is not None
        eager = sorted(ModelRunner(lm, "auto").run(reqs(SENTENCES[:8])), key=lambda o: o[0])
        replayed = sorted(runner.run(reqs(SENTENCES[:8])), key=lambda o: o[0])
        return {"dtype": runner.dtype, "graphs": runner.static.graphs,
                "capture_s": runner.static.captured_s,
                "warm_up_s": time.perf_counter() - start,
                "memory_allocated_gb": torch.cuda.memory_allocated() / 2**30 if cuda else None,
                "memory_reserved_gb": torch.cuda.memory_reserved() / 2**30 if cuda else None,
                "graphs_vs_eager_db": [mel(a, b) for (_, a, _), (_, b, _) in
                                       zip(replayed, eager, strict=True)]}

    report.section("capture", 90, capture)

    def short_chunk(runner: ModelRunner) -> dict[str, float]:
        """One short chunk's latency through ``runner``: median and p90 of 30, after 3."""
        short = reqs([SHORT])
        for _ in range(3):
            list(runner.run(short))
        times = []
        for _ in range(30):
            start = time.perf_counter()
            list(runner.run(short))  # returns after the audio is on the host
            times.append((time.perf_counter() - start) * 1000)
        return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}

    def latency() -> dict[str, Any]:
        result: dict[str, Any] = {}
        runners = {"float32 eager": ModelRunner(lm, "float32"),
                   "half eager": ModelRunner(lm, "auto")}
        if "runner" in graphed:
            runners["half graphs"] = graphed["runner"]
        for name, runner in runners.items():
            result[name] = short_chunk(runner)
        result["phonemes"] = len(phonemes[SHORT])
        return result

    report.section("short_chunk_latency", 15, latency)

    def levels_run() -> dict[str, Any]:
        texts = [phonemes[t] for t in SENTENCES]
        runner = graphed.get("runner")
        result = run_engine_bench(lm, texts, levels, chunks=2, threads=os.cpu_count() or 1,
                                  onnx=False, dtype="auto",
                                  graphs=None if runner is None else Buckets(),
                                  sequential=False, batched_runner=runner)
        try:
            write_outputs(result, out / "gpu-check-bench.json", out / "gpu-check-bench.png")
        except ImportError:
            write_outputs(result, out / "gpu-check-bench.json", None)
        return result

    def batch_rate(runner: ModelRunner, batch: list[ChunkRequest],
                   repeats: int) -> dict[str, float]:
        """``batch`` through ``runner``: once, then the mean of ``repeats`` runs (each returns
        with its audio on the host): ms per batch and audio-s per s."""
        outs = list(runner.run(batch))
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            outs = list(runner.run(batch))
        per_batch = (time.perf_counter() - start) / repeats
        audio_s = sum(len(a) for _, a, _ in outs) / 24000
        return {"ms": round(per_batch * 1000, 2), "audio_s_per_s": round(audio_s / per_batch, 1)}

    def saturation() -> dict[str, Any]:
        """Where the card saturates: one sentence repeated n times (no padding between rows),
        through the graphs, audio-s per s by rows; and the top kernels of one eager batch of
        32 in half precision (gpu-check-kernels.txt), to see what the time goes to."""
        runner = graphed.get("runner") or ModelRunner(lm, "auto")
        result: dict[str, Any] = {}
        sentence = SENTENCES[10]  # the longest (about 10 s of audio)
        for n in (1, 2, 4, 8, 16, 32, 64) if cuda else (1, 2):
            result[str(n)] = batch_rate(runner, reqs([sentence] * n), 3)
        if cuda:
            from torch.profiler import ProfilerActivity, profile
            eager = ModelRunner(lm, "auto")
            batch = reqs(SENTENCES[:8] * 4)
            list(eager.run(batch))
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                list(eager.run(batch))
                sync()
            table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=40,
                                              max_name_column_width=80)
            (out / "gpu-check-kernels.txt").write_text(table)
        return result

    def bench_levels(runner: ModelRunner, buckets: Buckets | None, sessions: list[int]) -> Any:
        """Levels (cuda: ``sessions``; a dry run: 1) through ``runner``, summarised."""
        result = run_engine_bench(lm, [phonemes[t] for t in SENTENCES],
                                  sessions if cuda else [1], chunks=2,
                                  threads=os.cpu_count() or 1, onnx=False, dtype="auto",
                                  graphs=buckets, sequential=False, batched_runner=runner)
        found: Any = result["levels"]
        return [{k: level[k] for k in ("concurrency", "throughput", "first_p95_ms",
                                       "first_audio_p95_ms", "mean_batch")} for level in found]

    def doubling() -> dict[str, Any]:
        """The same levels (128 and 256 sessions) with the frame buckets of the first H100
        run (each twice the last): what the finer buckets save, in the same run."""
        buckets = Buckets(frames=(64, 128, 256, 512, 1024, 2048))
        runner = ModelRunner(lm, "auto", buckets)
        runner.warm_up()
        return {"frames": list(buckets.frames),
                "capture_s": runner.static.captured_s if runner.static else None,
                "levels": bench_levels(runner, buckets, [128, 256])}

    def against_plain(prefix: str, make: Callable[[], ModelRunner],
                      off: Callable[[], None]) -> dict[str, Any]:
        """An engine whose model runs part of the decoder compiled (``make`` builds its runner,
        switching the model; ``off`` switches it back for the sections after it): the first
        padded batch's time (the compile), the graphs dynamo made, the capture, audio and
        durations against the plain model, a short chunk, and the levels again (its audio is
        in the npz as ``{prefix}_*``)."""
        from torch._dynamo.utils import counters

        texts = SENTENCES[:8]
        plain = sorted(ModelRunner(lm, "auto").run(reqs(texts)), key=lambda o: o[0])
        graphs_before = counters["stats"]["unique_graphs"]
        sync()
        start = time.perf_counter()
        try:
            runner = make()
            # A padded batch of 8, eagerly around the compiled part: the compile.
            eager = sorted(ModelRunner(lm, "auto").run(reqs(texts)), key=lambda o: o[0])
            sync()
            compile_s = time.perf_counter() - start
            runner.warm_up()
            replayed = sorted(runner.run(reqs(texts)), key=lambda o: o[0])
            latency_ms = short_chunk(runner)
            save_audio({f"{prefix}_{i}": a for i, a, _ in runner.run(reqs(SENTENCES[:6]))})
            assert runner.static is not None
            levels = bench_levels(runner, runner.static.buckets, [1, 32, 128, 256])
        finally:
            off()
        return {"compile_s": compile_s,
                "dynamo_graphs": counters["stats"]["unique_graphs"] - graphs_before,
                "capture_s": runner.static.captured_s,
                "eager_vs_plain_db": [mel(a, b) for (_, a, _), (_, b, _) in
                                      zip(eager, plain, strict=True)],
                "graphs_vs_plain_db": [mel(a, b) for (_, a, _), (_, b, _) in
                                       zip(replayed, plain, strict=True)],
                "durations_equal": sum(bool(np.array_equal(d, e)) for (_, _, d), (_, _, e)
                                       in zip(replayed, plain, strict=True)),
                "short_chunk_ms": latency_ms,
                "memory_reserved_gb": torch.cuda.memory_reserved() / 2**30 if cuda else None,
                "levels": levels}

    def fused() -> dict[str, Any]:
        """The norm-and-Snake pairs compiled into fused kernels (Kernels(fused_norms=True))."""
        return against_plain("fused", lambda: ModelRunner(lm, "auto", Buckets(),
                                                          kernels=Kernels(fused_norms=True)),
                             lambda: lm.model.fuse_norms(None))

    def compiled() -> dict[str, Any]:
        """The decoder over padded batches as one graph compiled by torch.compile
        (Kernels(compile_decoder=True))."""
        return against_plain("compiled", lambda: ModelRunner(lm, "auto", Buckets(),
                                                             kernels=COMPILED),
                             lambda: lm.model.compile_decoder(None))

    def decode_windows_of(runner: ModelRunner, batch: list[ChunkRequest]) -> list[Any]:
        """``batch`` started together, every chunk's next window in one batch until all are
        done: each chunk's pieces joined."""
        cursors = runner.start_windows(batch)
        pieces: dict[int, list[Any]] = {id(c): [] for c in cursors}
        while active := [c for c in cursors if not c.done]:
            for c, piece in zip(active, runner.next_pieces(active), strict=True):
                pieces[id(c)].append(piece.audio)
        return [np.concatenate(pieces[id(c)]) for c in cursors]

    def windowed() -> dict[str, Any]:
        """Chunks decoded in windows (1 s, then 3 s), every chunk's next window in one eager
        batch (--windows on): the first audio (first piece) against the whole first chunk in
        the levels; six chunks' windows decoded together against each chunk's alone."""
        runner = ModelRunner(lm, "auto", None, WindowPlan())
        texts = SENTENCES[:6]
        together = decode_windows_of(runner, reqs(texts))
        alone = [decode_windows_of(runner, [r])[0] for r in reqs(texts)]
        save_audio({f"windows_{i}": a for i, a in enumerate(together)})
        return {"dtype": runner.dtype,
                "batched_vs_alone_db": [mel(a, b) for a, b in zip(together, alone, strict=True)],
                "levels": bench_levels(runner, None, [1, 32, 128, 256])}

    def windowed_compiled() -> dict[str, Any]:
        """Windows with the generator over each batch of windows compiled (--windows on
        Kernels(compile_decoder=True)): the warm-up's compile, six chunks' windows against the eager
        windows', levels 1 to 256, and 128 sessions again with a 0.5 s first window."""
        from torch._dynamo.utils import counters

        texts = SENTENCES[:6]
        plain = decode_windows_of(ModelRunner(lm, "auto", None, WindowPlan()), reqs(texts))
        graphs_before = counters["stats"]["unique_graphs"]
        sync()
        start = time.perf_counter()
        try:
            runner = ModelRunner(lm, "auto", None, WindowPlan(), COMPILED)
            runner.warm_up()
            sync()
            compile_s = time.perf_counter() - start
            together = decode_windows_of(runner, reqs(texts))
            save_audio({f"wincompiled_{i}": a for i, a in enumerate(together)})
            levels = bench_levels(runner, None, [1, 32, 128, 256])
            runner.windows = WindowPlan(first_s=0.5)  # the same compiled generator
            short_first = bench_levels(runner, None, [128])
        finally:
            lm.model.compile_decoder(None)
        return {"dtype": runner.dtype, "compile_s": compile_s,
                "dynamo_graphs": counters["stats"]["unique_graphs"] - graphs_before,
                "compiled_vs_eager_windows_db": [mel(a, b) for a, b in
                                                 zip(together, plain, strict=True)],
                "levels": levels, "levels_first_0_5s": short_first}

    def windowed_short_first() -> dict[str, Any]:
        """The windows again with a 0.5 s first window (REALTIME_WINDOW_FIRST_S=0.5): what the first
        audio at 128 sessions arriving at once comes to when each first window is half as
        long (the issue's target there is 250 ms)."""
        runner = ModelRunner(lm, "auto", None, WindowPlan(first_s=0.5))
        return {"first_s": 0.5, "levels": bench_levels(runner, None, [32, 128])}

    def cudnn_benchmark() -> dict[str, Any]:
        """Whether cuDNN's benchmarked convolution algorithms beat the ones its heuristics
        pick (torch's default) inside the graphs: one decoder bucket (the longest sentence, 32
        rows; a dry run 2) captured with ``torch.backends.cudnn.benchmark`` off and then on,
        each replayed 5 times (a dry run once); the capture times say what benchmarking
        costs."""
        rows, repeats = (32, 5) if cuda else (2, 1)
        batch = reqs([SENTENCES[10]] * rows)
        buckets = Buckets(rows=(rows,), frames=(512,))
        result: dict[str, Any] = {"rows": rows, "frames": 512}
        audio = {}
        for name, on in (("off", False), ("on", True)):
            runner = ModelRunner(lm, "auto", buckets)
            before = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = on
            try:
                runner.warm_up()
                audio[name] = sorted(runner.run(batch), key=lambda o: o[0])
            finally:
                torch.backends.cudnn.benchmark = before
            assert runner.static is not None
            result[name] = {"capture_s": round(runner.static.captured_s, 2),
                            **batch_rate(runner, batch, repeats)}
            del runner
        result["on_vs_off_db"] = max(mel(a, b) for (_, a, _), (_, b, _) in
                                     zip(audio["on"], audio["off"], strict=True))
        return result

    report.section("saturation", 20, saturation)
    report.section("engine_levels", 40, levels_run)
    graphed.clear()  # the default runner's graphs go before the next capture
    report.section("cudnn_benchmark", 20, cudnn_benchmark)
    report.section("windows", 45, windowed)
    report.section("compiled_decoder", 150, compiled)
    report.section("windows_compiled", 120, windowed_compiled)
    report.section("fused_norms", 90, fused)
    report.section("windows_first_0_5s", 25, windowed_short_first)
    report.section("frames_doubling", 60, doubling)
    print(json.dumps({k: v for k, v in report.data.items() if k != "engine_levels"},
                     indent=1, default=str)[:6000])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--budget", type=float, default=480.0, help="seconds (default 480)")
    parser.add_argument("--levels", default="1,8,32,64,128,256")
    parser.add_argument("--device", default="cuda", help="cuda (cpu: a dry run of the script)")
    parser.add_argument("--write-phonemes", action="store_true",
                        help="(here) make gpu_check_phonemes.json with the text front end")
    parser.add_argument("--transcribe", type=Path, default=None,
                        help="(here) transcribe a run's gpu-check-audio.npz in this folder")
    args = parser.parse_args()
    if args.write_phonemes:
        write_phonemes()
        return 0
    if args.transcribe:
        transcribe(args.transcribe)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    run_check(args.out, args.budget, [int(v) for v in args.levels.split(",")], args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
