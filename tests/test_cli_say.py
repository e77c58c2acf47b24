"""``realtime say`` through the CLI's own code, in this process, on the registered tiny model:
an engine, the session protocol, a WAV of exactly the audio the model's durations say."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.cli import main
from realtime.codecs.wav import pcm16
from realtime.session.scheduler import TextScheduler
from realtime.text.phonemize import Phonemizer
from realtime.weights.registry import LoadedModel, load_model

TEXT = "Hello there! Your order of $4.50 shipped on 3/14, and it should arrive soon."
TINY = ["--model", "tiny-random", "--device", "cpu", "--dtype", "float32"]


@pytest.fixture(autouse=True)
def one_thread_count() -> None:
    """This thread and the engine thread that ``say`` starts compute with one torch thread
    count, so their sums run in one order: an earlier in-process server may have set another
    count, which only threads started after it take (the last bit of a sample then differs)."""
    torch.set_num_threads(torch.get_num_threads())


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    return load_model("tiny-random", device="cpu")  # the same weights `say` builds


def model_audio(lm: LoadedModel, phonemes: list[str], voice: str = "jf_alpha",
                speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Each chunk straight through the model, joined; and the frames of its durations."""
    outs = [lm.model(lm.model.phonemes_to_ids(p),
                     lm.voices.style(voice, len(p)), speed=speed) for p in phonemes]
    return (np.concatenate([o.audio.numpy() for o in outs]),
            sum(int(o.durations.sum()) for o in outs))


def read_wav(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24_000, 1, 2)
        return w.readframes(w.getnframes())


def test_say_writes_the_durations_worth_of_audio(tiny: LoadedModel, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hello.wav"
    assert main(["say", TEXT, "-o", str(out), "--speed", "1.2", *TINY]) == 0
    scheduler = TextScheduler(Phonemizer("en-us"))  # jf_alpha reads English as en-us
    chunks = [c.phonemes for c in scheduler.push(TEXT, 0.0) + scheduler.end(0.0) if c.phonemes]
    assert len(chunks) == 2
    audio, frames = model_audio(tiny, chunks, speed=1.2)
    pcm = read_wav(out)
    assert len(pcm) // 2 == frames * tiny.model.config.frame_samples == len(audio)
    assert pcm == pcm16(audio)
    assert f"wrote {out}: " in capsys.readouterr().err


def test_say_phonemes_and_seed(tiny: LoadedModel, tmp_path: Path) -> None:
    phonemes = "həlˈO wˈɜɹld."
    for name, seed in (("plain.wav", []), ("seeded.wav", ["--seed", "3"])):
        assert main(["say", phonemes, "--phonemes", "-o", str(tmp_path / name), *seed,
                     *TINY]) == 0
    audio, _ = model_audio(tiny, [phonemes])
    assert read_wav(tmp_path / "plain.wav") == pcm16(audio)
    ids = tiny.model.phonemes_to_ids(phonemes)
    noisy = tiny.model(ids, tiny.voices.style("jf_alpha", len(ids)), seed=3).audio.numpy()
    assert read_wav(tmp_path / "seeded.wav") == pcm16(noisy) != pcm16(audio)  # seed reached it


def test_say_bad_voice_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.wav"
    assert main(["say", "Hi.", "-o", str(out), "--voice", "nobody", *TINY]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("realtime: error")]
    assert errors == ["realtime: error [unknown_voice]: unknown voice 'nobody'; "
                      "known voices: jf_alpha, jm_kumo"]
    assert "Traceback" not in err and not out.exists()
