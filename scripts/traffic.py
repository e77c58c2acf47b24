"""Memory traffic and convolution arithmetic of the real model, per second of audio: what a
GPU's decoder waits for, counted on the CPU (realtime/bench/traffic.py).

    REALTIME_CACHE_DIR=... python scripts/traffic.py --rows 8 --dtype float32
    python scripts/traffic.py --rows 2 --dtype float16   # CPU autocast: slow, about a minute

A batch of ``--rows`` sentences (gpu_check's list), padded to the default graph buckets as a
GPU runs it, one steady-state pass counted. Prints GB moved and GFLOP per audio-second, the top
ops, and a time estimate at the given bandwidth and arithmetic rate (an estimate, not a
measurement: kernels reach neither peak).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> int:
    from gpu_check import PHONEMES, SENTENCES, VOICE

    from realtime.bench.traffic import Traffic
    from realtime.engine.buckets import Buckets
    from realtime.engine.runner.graphs import StaticForward
    from realtime.weights.registry import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bandwidth-tb", type=float, default=2.5, help="TB/s (default 2.5)")
    parser.add_argument("--tflops", type=float, default=300.0, help="TFLOP/s (default 300)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    phonemes = json.loads(PHONEMES.read_text(encoding="utf-8"))
    lm = load_model("kokoro-v1.0-int8", device="cpu")
    model = lm.model
    items = []
    for text in (SENTENCES * (args.rows // len(SENTENCES) + 1))[:args.rows]:
        ids = model.phonemes_to_ids(phonemes[text])
        items.append(model.item(ids, lm.voices.style(VOICE, len(ids))))
    forward = StaticForward(model, Buckets())
    dtype = getattr(torch, args.dtype)
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        forward.forward_batch(items)  # weights normalised and cached: the steady state
        with Traffic() as traffic:
            outs = forward.forward_batch(items)
    audio_s = sum(len(o.audio) for o in outs) / 24000
    gb, gflop = traffic.bytes / 1e9 / audio_s, traffic.conv_flops / 1e9 / audio_s
    estimate = (gb / (args.bandwidth_tb * 1e3) + gflop / (args.tflops * 1e3)) * 1e3
    print(f"{args.dtype}, {args.rows} rows, {audio_s:.1f} s of audio: {gb:.2f} GB moved and "
          f"{gflop:.1f} GFLOP of convolutions per audio-second")
    print(f"estimate at {args.bandwidth_tb} TB/s and {args.tflops:.0f} TFLOP/s: "
          f"{estimate:.3f} ms per audio-second")
    for name, moved in traffic.by_op.most_common(10):
        print(f"  {name:24s} {moved / 1e9 / audio_s:7.3f} GB per audio-second")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
