"""The choices of windowed decoding, measured (docs/engine.md, "Windowed decoding").

For each window plan, the gpu check's sentences (real model, ``af_heart``) are decoded whole
and in windows; it prints the mean absolute log-mel difference to the whole decode (dB,
``realtime.bench.quality.mel_distance_db``), the time to the first piece against the whole decode,
the largest sample step at a seam against the largest step anywhere, and Whisper's word error
of each against the text. Here (needs the real-model cache and the test extra):

    REALTIME_CACHE_DIR=... python scripts/window_choices.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from realtime.bench.quality import mel_distance_db  # noqa: E402
from realtime.engine.plan import WindowPlan  # noqa: E402
from realtime.engine.runner.windows import decode_windows  # noqa: E402
from realtime.weights.registry import load_model  # noqa: E402
from tests.real.conftest import Transcriber, word_error_rate  # noqa: E402

PLANS = {
    "default (1 s, 3 s, margin 0.2 s, fade 10 ms)": WindowPlan(),
    "margin 0.1 s": WindowPlan(margin_s=0.1),
    "margin 0.4 s": WindowPlan(margin_s=0.4),
    "first 0.6 s": WindowPlan(first_s=0.6),
    "later 2 s": WindowPlan(later_s=2.0),
    "later 5 s": WindowPlan(later_s=5.0),
    "no crossfade": WindowPlan(fade_ms=0.0),
}


def main() -> None:
    torch.set_num_threads(2)
    lm = load_model("kokoro-v1.0-int8", device="cpu")
    model = lm.model
    phonemes = json.loads((HERE / "gpu_check_phonemes.json").read_text(encoding="utf-8"))
    texts = [t for t in phonemes if len(phonemes[t]) > 40]
    whisper = Transcriber()
    work = Path(tempfile.mkdtemp())
    items = []
    for text in texts:
        ids = model.phonemes_to_ids(phonemes[text])
        items.append(model.item(ids, lm.voices.style("af_heart", len(ids))))
    whole, whole_s = [], []
    for it in items:
        start = time.perf_counter()
        whole.append(model.forward_batch([it])[0].audio.numpy())
        whole_s.append(time.perf_counter() - start)
    heard = [whisper(a, work, f"w{i}") for i, a in enumerate(whole)]
    print(f"{len(texts)} sentences, {sum(map(len, whole)) / 24000:.1f} s of audio; whole: "
          f"WER {word_error_rate(texts, heard):.1%}, {sum(whole_s):.2f} s")
    for name, plan in PLANS.items():
        dist, firsts, seam_steps, any_steps, got = [], [], [], [], []
        for i, (it, ref) in enumerate(zip(items, whole, strict=True)):
            start = time.perf_counter()
            pieces: list[np.ndarray] = []
            for piece in decode_windows(model, it, plan):
                if not pieces:
                    firsts.append(time.perf_counter() - start)
                pieces.append(piece.audio)
            audio = np.concatenate(pieces)
            dist.append(mel_distance_db(audio, ref))
            steps = np.abs(np.diff(audio))
            seams = np.cumsum([len(p) for p in pieces[:-1]])
            seam_steps += [float(steps[s - 3:s + 2].max()) for s in seams]
            any_steps.append(float(steps.max()))
            got.append(whisper(audio, work, f"p{i}"))
        print(f"{name}: mel {np.mean(dist):.2f} dB (max {np.max(dist):.2f}); first piece "
              f"{np.median(firsts):.2f} s median vs whole {np.median(whole_s):.2f} s; largest "
              f"step at a seam {max(seam_steps, default=0):.3f} (anywhere {max(any_steps):.3f}); "
              f"WER {word_error_rate(texts, got):.1%}", flush=True)


if __name__ == "__main__":
    main()
