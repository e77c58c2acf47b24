"""Build realtime/weights/data/kokoro-v1.0-voices.npz from a folder of official voice packs.

    .venv/bin/python scripts/pack_voices.py ../shared/voices/kokoro-v1.0

Every ``*.pt`` must be listed, with its sha256, in ``SHA256SUMS`` one folder up (the provenance
that ships in data/VOICES.md); each becomes one float32 array ``[510, 1, 256]`` named by file.
Float32, not float16: half precision moved the audio by 0.26 dB of log-mel (mean; durations
unchanged), six times what float ordering alone moves it (0.04 dB), so it is not "no difference".
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[1] / "realtime" / "weights" / "data"
OUT = DATA / "kokoro-v1.0-voices.npz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of NAME.pt voice packs")
    parser.add_argument("--sums", type=Path, default=None, help="default: FOLDER/../SHA256SUMS")
    args = parser.parse_args()
    sums_file = args.sums or args.folder.parent / "SHA256SUMS"
    sums = dict(reversed(line.split()) for line in sums_file.read_text().splitlines() if line)
    packs: dict[str, np.ndarray] = {}
    for file in sorted(args.folder.glob("*.pt")):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if sums.get(file.name) != digest:
            print(f"{file.name}: sha256 {digest} is not the one in {sums_file}", file=sys.stderr)
            return 1
        pack = torch.load(file, map_location="cpu", weights_only=True)
        if tuple(pack.shape) != (510, 1, 256) or pack.dtype != torch.float32:
            print(f"{file.name}: shape {tuple(pack.shape)} {pack.dtype}", file=sys.stderr)
            return 1
        packs[file.stem] = pack.numpy()
    if len(packs) != len(sums):
        print(f"found {len(packs)} packs, {sums_file} lists {len(sums)}", file=sys.stderr)
        return 1
    np.savez_compressed(OUT, **packs)  # type: ignore[arg-type]  # numpy stubs: **packs vs allow_pickle
    print(f"wrote {OUT} ({len(packs)} voices, {OUT.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
