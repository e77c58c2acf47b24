"""One chunk of phonemes straight through the model, for the real model's quality tests.

Serving code does not use this: the WebSocket sessions, ``POST /v1/audio/speech`` and
``realtime say`` all synthesise through the session protocol and an engine client
(``realtime.server.utterance``). The intelligibility tests (``tests/real``) hear the model's
audio of chunks the scheduler cut, and need neither; ``set_threads`` serves the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from realtime.engine.registry import LoadedModel


@dataclass(frozen=True, slots=True)
class Synthesis:
    audio: np.ndarray  # float32, 24 kHz
    phonemes: str
    durations: list[int]  # frames per token, the boundary tokens included


def synthesize_phonemes(lm: LoadedModel, phonemes: str, voice: str | None = None,
                        speed: float = 1.0, seed: int | None = None) -> Synthesis:
    """One chunk (at most ``MAX_PHONEMES``, as the scheduler cuts them); the model raises our
    errors for anything it refuses (too long, unknown symbol or voice)."""
    voice = voice or lm.default_voice
    ids = lm.model.phonemes_to_ids(phonemes)
    out = lm.model(ids, lm.voices.style(voice, len(ids)), speed=speed, seed=seed)
    return Synthesis(out.audio.cpu().numpy().astype(np.float32), phonemes,
                     [int(d) for d in out.durations])


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
