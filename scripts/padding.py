"""How much of a GPU engine's decoder work is padding, worked out on the CPU: the scheduling
policy's batches for the benchmark's bursts, padded as the CUDA graphs pad them.

    python scripts/padding.py                 # the real model's durations (a few seconds)
    python scripts/padding.py --sessions 32,128,256

The real model's duration predictor gives each of the benchmark's sentences (gpu_check's
list, voice af_heart) its frames. Then, as in ``realtime bench`` at N sessions, N chunks are
queued at once with equal deadlines (each session's first chunk, then each one's second), and
``EDFPolicy`` takes batches from that queue until it is empty; each batch is padded as
``StaticForward`` pads it (rows to a row bucket, frames to the frame bucket of its longest real
row). Printed per burst: the real frames over the padded rows x frames ("efficiency": the share
of the decoder's work that is not padding), the batches and their mean size. Also, for
comparison: the first H100 run's doubling frame buckets; a tighter length ratio (1.5 instead
of the default 2.5); and each batch's decoder side split in two graphs at its best cut by
real length (what the runner could do once the durations are known; not implemented), without
and with a fixed cost per graph of 500 cells (beside one graph with the same cost). Pure
arithmetic on the durations: no decoder runs, nothing is timed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from realtime.engine.buckets import Buckets  # noqa: E402
from realtime.engine.policy import EDFPolicy  # noqa: E402
from realtime.engine.request import ChunkRequest, Pending  # noqa: E402

Cost = Callable[[Buckets, list[int]], int]  # padded cells of one batch's decoder side


def one_graph(buckets: Buckets, frames: list[int]) -> int:
    """The cells a batch's decoder side computes in one graph (eagerly, beyond the buckets: its
    rows x its longest row)."""
    rows = buckets.rows_for(len(frames)) or len(frames)
    return rows * (buckets.frames_for(rows, max(frames)) or max(frames))


def split_in_two(overhead: int) -> Cost:
    """The cheapest of one graph and two graphs at a cut by real length, each graph costing
    ``overhead`` cells besides its own."""
    def cost(buckets: Buckets, frames: list[int]) -> int:
        ordered = sorted(frames)
        best = one_graph(buckets, ordered) + overhead
        for cut in range(1, len(ordered)):
            best = min(best, one_graph(buckets, ordered[:cut])
                       + one_graph(buckets, ordered[cut:]) + 2 * overhead)
        return best
    return cost


def burst(policy: EDFPolicy, texts: Sequence[str], frames: dict[str, int], sessions: int,
          chunk: int, cost: Cost) -> tuple[float, int, float]:
    """(efficiency, batches, mean batch) of one burst: each session's ``chunk``-th chunk (as
    ``realtime bench`` with 2 chunks per session picks them), queued at once."""
    queue = [Pending(ChunkRequest(f"s{i}", "c", texts[(2 * i + chunk) % len(texts)],
                                  "af_heart", 0.0), 0.0, i, 0) for i in range(sessions)]
    assert policy.buckets is not None
    real = cells = batches = 0
    while queue:
        batch = policy.select(queue, 0.0)
        taken = {id(p) for p in batch}
        queue = [p for p in queue if id(p) not in taken]
        rows = [frames[p.request.phonemes] for p in batch]
        real += sum(rows)
        cells += cost(policy.buckets, rows)
        batches += 1
    return real / cells, batches, sessions / batches


def main() -> int:
    from gpu_check import PHONEMES, SENTENCES, VOICE

    from realtime.engine.plan import GPU_MAX_BATCH
    from realtime.weights.registry import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="32,128,256")
    args = parser.parse_args()
    sessions = [int(v) for v in args.sessions.split(",")]
    phonemes = json.loads(PHONEMES.read_text(encoding="utf-8"))
    texts = [phonemes[s] for s in SENTENCES]
    lm = load_model("kokoro-v1.0-int8", device="cpu")
    frames = {}
    with torch.inference_mode():
        for text in texts:
            ids = lm.model.phonemes_to_ids(text)
            durations = lm.model.predict_durations(ids, lm.voices.style(VOICE, len(ids)))
            frames[text] = int(durations.round().clamp(min=1).sum())  # as the text side rounds
    print("frames per sentence:", sorted(frames.values()))
    rounded = sum(Buckets().frames_for(1, f) or f for f in frames.values())
    print(f"each sentence batched only with its own kind (the frame buckets' rounding alone): "
          f"{sum(frames.values()) / rounded:.2f}")
    default, doubling = Buckets(), Buckets(frames=(64, 128, 256, 512, 1024, 2048))
    rows = GPU_MAX_BATCH  # a GPU engine's batches
    variants: list[tuple[str, EDFPolicy, Cost]] = [
        ("default buckets, one graph", EDFPolicy(rows, buckets=default), one_graph),
        ("doubling frame buckets, one graph", EDFPolicy(rows, buckets=doubling), one_graph),
        ("default buckets, length ratio 1.5, one graph",
         EDFPolicy(rows, length_ratio=1.5, buckets=default), one_graph),
        ("default buckets, split in two", EDFPolicy(rows, buckets=default), split_in_two(0)),
        ("default buckets, one graph, 500 cells a graph", EDFPolicy(rows, buckets=default),
         lambda b, f: one_graph(b, f) + 500),
        ("default buckets, split in two, 500 cells a graph", EDFPolicy(rows, buckets=default),
         split_in_two(500)),
    ]
    for name, policy, cost in variants:
        cols = []
        for n in sessions:
            for chunk in (0, 1):
                eff, batches, mean = burst(policy, texts, frames, n, chunk, cost)
                cols.append(f"{n}/{chunk + 1}: {eff:.2f} ({batches} x {mean:.1f})")
        print(f"{name:50s} " + "  ".join(cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
