"""Kokoro-82M's facts that every layer shares, in one place and without torch.

The codecs take its sample rate, the scheduler its phoneme limit, the protocol and the HTTP
endpoint its speed range, a worker process (no torch) all of them. Voice names and the blend
grammar are in ``realtime.voice_names``; the vocabulary travels with each model's config.
"""

from __future__ import annotations

SAMPLE_RATE = 24_000  # Hz, mono float audio out of the model
FRAME_SAMPLES = 600  # audio samples per duration frame (25 ms) of Kokoro v1.0
MAX_PHONEMES = 510  # phonemes per chunk (ALBERT's 512 positions less the boundary tokens)
MIN_SPEED = 0.5  # the speeds the server accepts (the model takes any positive one)
MAX_SPEED = 2.0

__all__ = ["FRAME_SAMPLES", "MAX_PHONEMES", "MAX_SPEED", "MIN_SPEED", "SAMPLE_RATE"]
