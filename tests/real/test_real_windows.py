"""Windowed decoding with the real weights: the pieces sound like the chunk decoded whole
(log-mel within the bound docs/engine.md gives, the same words), and the seams make no click
where decoding without the crossfade does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from realtime.bench.quality import mel_distance_db
from realtime.engine.plan import WindowPlan
from realtime.engine.runner.windows import Piece, decode_windows, next_pieces, start_windows
from realtime.model.kmodel import SynthItem
from tests.real.conftest import Transcriber, normalise

pytestmark = pytest.mark.real

# Phonemes of the GPU check's sentences (made with our front end); the first four with more
# than one window.
PHONEMES = json.loads((Path(__file__).parents[2] / "scripts" / "gpu_check_phonemes.json")
                      .read_text(encoding="utf-8"))
TEXTS = [t for t in PHONEMES if len(PHONEMES[t]) > 60][:4]
MEL_BOUND_DB = 3.0  # measured up to 2.6 dB over ten sentences (scripts/window_choices.py)
# Batched against alone, whole chunks: float ordering alone gives up to 0.16 dB (docs/engine.md).
BATCHED_BOUND_DB = 0.3


def seam_step(audio: np.ndarray, s: int) -> float:
    return float(np.abs(np.diff(audio[s - 3:s + 3])).max())


def local_step(audio: np.ndarray, s: int, reach: int = 240) -> float:
    """The largest step within 10 ms of a seam, the seam itself left out."""
    steps = np.abs(np.diff(audio[s - reach:s + reach]))
    return float(np.concatenate([steps[:reach - 3], steps[reach + 3:]]).max())


@dataclass(frozen=True)
class Alone:
    """One sentence's windows decoded alone, and what Whisper heard in them: both tests use
    them (decoded and transcribed once)."""

    item: SynthItem
    pieces: list[Piece]
    audio: np.ndarray  # the pieces joined
    heard: str


@pytest.fixture(scope="module")
def alone(real, transcribe: Transcriber,  # type: ignore[no-untyped-def]
          tmp_path_factory: pytest.TempPathFactory) -> list[Alone]:
    model, workdir = real.model, tmp_path_factory.mktemp("windows")
    out = []
    for n, text in enumerate(TEXTS):
        ids = model.phonemes_to_ids(PHONEMES[text])
        item = model.item(ids, real.voices.style("af_heart", len(ids)))
        pieces = list(decode_windows(model, item, WindowPlan()))
        audio = np.concatenate([p.audio for p in pieces])
        out.append(Alone(item, pieces, audio, normalise(transcribe(audio, workdir, f"w{n}"))))
    return out


def test_windows_sound_like_the_whole_chunk(real, transcribe: Transcriber,  # type: ignore[no-untyped-def]
                                            alone: list[Alone], tmp_path: Path) -> None:
    model = real.model
    clicks_without_fade = 0
    for n, windows in enumerate(alone):
        item, pieces, audio = windows.item, windows.pieces, windows.audio
        whole = model.forward_batch([item])[0].audio.numpy()
        assert len(pieces) >= 2
        assert len(audio) == len(whole)
        distance = mel_distance_db(audio, whole)
        print(f"\n{len(whole) / 24000:.1f} s, {len(pieces)} pieces: {distance:.2f} dB")
        assert distance <= MEL_BOUND_DB
        assert windows.heard == normalise(transcribe(whole, tmp_path, f"a{n}"))
        seams = np.cumsum([len(p.audio) for p in pieces[:-1]])
        for s in seams:
            assert seam_step(audio, s) <= local_step(audio, s), f"a click at {s / 24000:.3f} s"
        if clicks_without_fade == 0:  # until one sentence shows the measure sees a hard cut
            cut = list(decode_windows(model, item, WindowPlan(fade_ms=0.0)))
            hard = np.concatenate([p.audio for p in cut])
            clicks_without_fade += sum(seam_step(hard, s) > local_step(hard, s)
                                       for s in np.cumsum([len(p.audio) for p in cut[:-1]]))
    assert clicks_without_fade > 0  # the measure does see a hard cut


def test_windows_batched_sound_like_windows_alone(real, transcribe: Transcriber,  # type: ignore[no-untyped-def]
                                                  alone: list[Alone], tmp_path: Path) -> None:
    """Four sentences' windows decoded as one padded batch (what a GPU serving many sessions
    runs) against each sentence's windows decoded alone: within the float-ordering distance of
    whole batches (docs/engine.md), the same durations, the same words."""
    model = real.model
    items = [windows.item for windows in alone]
    cursors = start_windows(model, items, WindowPlan())
    together: dict[int, list[Piece]] = {id(c): [] for c in cursors}
    while active := [c for c in cursors if not c.done]:
        for c, piece in zip(active, next_pieces(model, active), strict=True):
            together[id(c)].append(piece)
    for n, (windows, cursor) in enumerate(zip(alone, cursors, strict=True)):
        mine = together[id(cursor)]
        assert [len(p.audio) for p in mine] == [len(p.audio) for p in windows.pieces]
        assert np.array_equal(mine[0].durations, windows.pieces[0].durations)
        a, b = np.concatenate([p.audio for p in mine]), windows.audio
        distance = mel_distance_db(a, b)
        print(f"\n{len(a) / 24000:.1f} s, {len(mine)} pieces, batched vs alone: {distance:.3f} dB")
        assert distance <= BATCHED_BOUND_DB
        assert normalise(transcribe(a, tmp_path, f"b{n}")) == windows.heard
