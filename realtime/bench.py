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

from realtime.engine.embedded import embedded_onnx_path
from realtime.engine.model import SAMPLE_RATE
from realtime.engine.registry import LoadedModel

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


def _time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, list[float]]:
    audio = fn()  # warm-up, and the audio length
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return len(audio) / SAMPLE_RATE, walls


def bench_single_stream(lm: LoadedModel, phonemes: str, voice: str, speed: float, repeats: int,
                        threads: int, cache_dir: Path | None = None) -> dict[str, object]:
    import onnxruntime as ort

    torch.set_num_threads(threads)
    ids = lm.model.phonemes_to_ids(phonemes)
    style = lm.voices.style(voice, len(ids))
    ours_audio, ours = _time(lambda: lm.model(ids, style, speed=speed).audio.numpy(), repeats)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(embedded_onnx_path(cache_dir)), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    feed = {"tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style.reshape(1, -1).numpy().astype(np.float32),
            "speed": np.array([speed], dtype=np.float32)}
    ort_audio, ort_walls = _time(lambda: sess.run(None, feed)[0].ravel(), repeats)

    a = RunStats(f"realtime KModel ({lm.name}, float32, {lm.device})", ours_audio, ours)
    b = RunStats("onnxruntime (kokoro-v1.0.int8.onnx, CPU)", ort_audio, ort_walls)
    return {
        "phonemes": len(ids), "threads": threads, "repeats": repeats, "voice": voice,
        "speed": speed, "ours": a.as_dict(), "onnxruntime": b.as_dict(),
        "ours_vs_onnxruntime": a.rtf / b.rtf,
    }


def report(result: dict[str, object]) -> str:
    ours, ort_ = result["ours"], result["onnxruntime"]
    assert isinstance(ours, dict) and isinstance(ort_, dict)
    lines = [f"single stream, {result['phonemes']} phonemes, {result['threads']} threads, "
             f"median of {result['repeats']} runs"]
    for row in (ours, ort_):
        lines.append(f"  {row['name']:<55} {row['audio_s']:.2f} s audio in "
                     f"{row['median_wall_s']:.3f} s = {row['x_realtime']:.2f}x real time")
    lines.append(f"  ours / onnxruntime: {result['ours_vs_onnxruntime']:.2f}")
    return "\n".join(lines)


def write_json(result: dict[str, object], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
