"""``realtime bench``: single-stream speed of our KModel against onnxruntime, same input.

Both run the same phonemes, voice and speed with the same thread count, one after the other,
in one process; figures are reported as real-time factors (audio seconds per wall second) and
their ratio, so they compare within the run.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from realtime.model import SAMPLE_RATE
from realtime.weights.embedded import embedded_onnx_path
from realtime.weights.registry import LoadedModel

DEFAULT_TEXT = ("Realtime turns streaming text into speech as it arrives, so a voice agent can "
                "start talking before the language model has finished its sentence.")


@dataclass(frozen=True, slots=True)
class RunStats:
    name: str
    audio_s: float
    wall_s: list[float]

    @property
    def rtf(self) -> float:
        """Times faster than real time (median run)."""
        return self.audio_s / statistics.median(self.wall_s)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "median_wall_s": statistics.median(self.wall_s),
                "x_realtime": self.rtf}


def _time_in_turns(fns: dict[str, Callable[[], np.ndarray]], repeats: int
                   ) -> dict[str, tuple[float, list[float]]]:
    """Each function once to warm up (and for its audio length), then ``repeats`` rounds in
    which each runs once in turn (A B C A B C ...): a machine's drift hits them alike."""
    audio = {name: len(fn()) / SAMPLE_RATE for name, fn in fns.items()}
    walls: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            walls[name].append(time.perf_counter() - t0)
    return {name: (audio[name], walls[name]) for name in fns}


def bench_single_stream(lm: LoadedModel, phonemes: str, voice: str, speed: float, repeats: int,
                        threads: int, cache_dir: Path | None = None,
                        fused_norms: bool = False) -> dict[str, object]:
    """Our KModel in float32, in bfloat16 (where this CPU has bfloat16 arithmetic: what the
    server then runs) and onnxruntime on the int8 ONNX file, in turns, on the same input.
    ``fused_norms``: on a CPU, the norm-and-Snake pairs compiled as the server runs them
    (compiled in the untimed first run; ``realtime bench --single`` turns it on). It switches
    the model itself (``KModel.fuse_row_norms``), on or off."""
    import onnxruntime as ort

    from realtime.engine.runner.runner import native_bf16, use_fused_row_norms

    torch.set_num_threads(threads)
    model = lm.model
    fused_norms = fused_norms and lm.device.type == "cpu"
    use_fused_row_norms(model, fused_norms)
    ids = model.phonemes_to_ids(phonemes)
    style = lm.voices.style(voice, len(ids))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(embedded_onnx_path(cache_dir)), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    feed = {"tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style.reshape(1, -1).numpy().astype(np.float32),
            "speed": np.array([speed], dtype=np.float32)}
    fns: dict[str, Callable[[], np.ndarray]] = {
        "float32": lambda: model(ids, style, speed=speed).audio.numpy()}
    bf16 = lm.device.type == "cpu" and native_bf16()
    if bf16:
        def run_bf16() -> np.ndarray:
            with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
                return model(ids, style, speed=speed).audio.float().numpy()

        fns["bfloat16"] = run_bf16
    fns["onnxruntime"] = lambda: sess.run(None, feed)[0].ravel()
    timed = _time_in_turns(fns, repeats)
    names = {"float32": f"realtime KModel ({lm.name}, float32, {lm.device})",
             "bfloat16": f"realtime KModel ({lm.name}, bfloat16, {lm.device})",
             "onnxruntime": "onnxruntime (kokoro-v1.0.int8.onnx, CPU)"}
    stats = {key: RunStats(names[key], *timed[key]) for key in timed}
    ort_rtf = stats["onnxruntime"].rtf
    best = "bfloat16" if bf16 else "float32"
    return {
        "phonemes": len(ids), "threads": threads, "repeats": repeats, "voice": voice,
        "fused_norms": fused_norms,
        "speed": speed, "cpu": torch.backends.cpu.get_cpu_capability(), "native_bf16": bf16,
        "ours": stats[best].as_dict(), "ours_float32": stats["float32"].as_dict(),
        "onnxruntime": stats["onnxruntime"].as_dict(),
        "ours_vs_onnxruntime": stats[best].rtf / ort_rtf,
        "float32_vs_onnxruntime": stats["float32"].rtf / ort_rtf,
    }


def report(result: dict[str, object]) -> str:
    rows = [result["ours_float32"]] + ([result["ours"]] if result["native_bf16"] else [])
    rows.append(result["onnxruntime"])
    lines = [f"single stream, {result['phonemes']} phonemes, {result['threads']} threads, "
             f"CPU {result['cpu']}, median of {result['repeats']} runs in turns, "
             f"norm-and-Snake pairs {'fused' if result.get('fused_norms') else 'eager'}"]
    for row in rows:
        assert isinstance(row, dict)
        lines.append(f"  {row['name']:<58} {row['audio_s']:.2f} s audio in "
                     f"{row['median_wall_s']:.3f} s = {row['x_realtime']:.2f}x real time")
    lines.append(f"  ours ({'bfloat16' if result['native_bf16'] else 'float32'}) / onnxruntime: "
                 f"{result['ours_vs_onnxruntime']:.2f} (float32: "
                 f"{result['float32_vs_onnxruntime']:.2f})")
    return "\n".join(lines)


def write_json(result: dict[str, object], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
