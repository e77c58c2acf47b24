"""One-shot synthesis: text or phonemes -> audio, for the CLI and tests.

The streaming path (sessions, the scheduler, the batched engine) is built on the same pieces;
this is the simplest composition of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from realtime.engine.model import MAX_PHONEMES
from realtime.engine.registry import LoadedModel
from realtime.errors import InputError


@dataclass(frozen=True, slots=True)
class Synthesis:
    audio: np.ndarray  # float32, 24 kHz
    phonemes: str
    durations: list[int]  # frames per token, one list entry per chunk joined


def split_phonemes(phonemes: str, limit: int = MAX_PHONEMES) -> list[str]:
    """Split a long phoneme string at sentence, then clause, then word boundaries."""
    phonemes = phonemes.strip()
    if len(phonemes) <= limit:
        return [phonemes] if phonemes else []
    for marks in (".!?", ",;:—…", " "):
        cut = max(phonemes.rfind(m, 0, limit) for m in marks)
        if cut > 0:
            head = phonemes[: cut + 1].strip()
            return [head, *split_phonemes(phonemes[cut + 1:], limit)]
    return [phonemes[:limit], *split_phonemes(phonemes[limit:], limit)]


def synthesize_phonemes(lm: LoadedModel, phonemes: str, voice: str | None = None,
                        speed: float = 1.0, seed: int | None = None) -> Synthesis:
    """Synthesise a phoneme string of any length (split into chunks the model accepts)."""
    voice = voice or lm.default_voice
    lm.voices.pack(voice)  # validate the voice before any work
    chunks = split_phonemes(phonemes)
    if not chunks:
        raise InputError("nothing to say: the phoneme string is empty")
    pieces: list[np.ndarray] = []
    durations: list[int] = []
    for chunk in chunks:
        ids = lm.model.phonemes_to_ids(chunk)
        out = lm.model(ids, lm.voices.style(voice, len(ids)), speed=speed, seed=seed)
        pieces.append(out.audio.cpu().numpy())
        durations.extend(int(d) for d in out.durations)
    return Synthesis(np.concatenate(pieces).astype(np.float32), phonemes, durations)


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
