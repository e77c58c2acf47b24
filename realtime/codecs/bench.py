"""Micro-benchmark: CPU cost of encoding, per codec and rate (``python -m realtime.codecs.bench``).

Reports milliseconds of CPU per second of audio, fed as the engine does: 24 kHz float chunks,
resampled and framed. 1000 / cost is about how many real-time streams one core could encode.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from realtime.codecs.config import INPUT_RATE
from realtime.codecs.encoder import make_encoder
from realtime.codecs.ogg import OggOpusStream

CASES: tuple[tuple[str, int], ...] = (
    ("pcm16", 24000), ("pcm16", 16000), ("pcm16", 8000), ("pcm16", 22050), ("pcm16", 44100),
    ("pcm16", 48000), ("mulaw", 8000), ("alaw", 8000), ("opus", 8000), ("opus", 16000),
    ("opus", 24000), ("opus", 48000),
)


def speech_like(seconds: float, rate: int = INPUT_RATE, seed: int = 0) -> np.ndarray:
    """A voiced, speech-like test signal: a gliding 90-220 Hz pitch, harmonics under three moving
    formants, syllable-rate loudness (4 Hz) and a little breath noise; peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.7 * t) + 20 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    out = np.zeros_like(t)
    formants = (500 + 200 * np.sin(2 * np.pi * 1.3 * t), 1500 + 400 * np.sin(2 * np.pi * 0.9 * t),
                2500.0 + 0 * t)
    for k in range(1, 40):
        fk = k * f0
        gain = sum(np.exp(-(((fk - fm) / 150.0) ** 2)) for fm in formants) / k**0.5
        out += np.where(fk < min(3400.0, rate / 2), gain, 0.0) * np.sin(k * phase)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    out = out * envelope + 0.01 * rng.standard_normal(len(t))
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def encode_cost_ms(
    codec: str, rate: int, seconds: float = 10.0, chunk_ms: int = 200, complexity: int = 9
) -> float:
    """CPU milliseconds spent per second of audio encoding ``seconds`` of speech-like signal."""
    audio = speech_like(seconds)
    step = INPUT_RATE * chunk_ms // 1000
    encoder = make_encoder(codec, rate, 20, complexity=complexity)
    start = time.process_time()
    for i in range(0, len(audio), step):
        encoder.push(audio[i:i + step])
    encoder.flush()
    return (time.process_time() - start) * 1000 / seconds


def ogg_cost_ms(seconds: float = 10.0, chunk_ms: int = 200, complexity: int = 9) -> float:
    audio = speech_like(seconds)
    step = INPUT_RATE * chunk_ms // 1000
    stream = OggOpusStream(complexity=complexity)
    start = time.process_time()
    stream.header()
    for i in range(0, len(audio), step):
        stream.push(audio[i:i + step])
    stream.finish()
    return (time.process_time() - start) * 1000 / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--complexity", type=int, default=9, help="Opus complexity, 0..10")
    args = parser.parse_args(argv)
    print(f"{'codec':<10}{'rate':>7}{'ms CPU / s audio':>19}{'streams/core':>14}")
    for codec, rate in (*CASES, ("ogg-opus", 48000)):
        cost = min(
            ogg_cost_ms(args.seconds, complexity=args.complexity) if codec == "ogg-opus"
            else encode_cost_ms(codec, rate, args.seconds, complexity=args.complexity)
            for _ in range(args.repeat)
        )
        print(f"{codec:<10}{rate:>7}{cost:>19.2f}{1000 / max(cost, 1e-3):>14.0f}")


if __name__ == "__main__":
    main()
