"""HTTP routes against a real uvicorn server: health, readiness, voices, metrics, and the
OpenAI-compatible speech endpoint in every format, whole and streamed."""

from __future__ import annotations

import json
import struct
import subprocess
import threading
import wave
from pathlib import Path

import pytest

from realtime.config import ServerConfig
from realtime.errors import ModelFileError
from realtime.weights.registry import LoadedModel
from tests.server.conftest import (
    Running,
    start_server,
    stop_server,
    tiny_config_for_tests,
    tiny_kokoro,
)

TEXT = "Hello there! Your order of $4.50 shipped on 3/14. It should arrive soon."


def test_readyz_reports_the_engine_plan(tiny_server: Running) -> None:
    """``/readyz`` gives the plan the engine runs (over IPC too): the settings resolved for the
    device, as ``plan_engine`` makes them here."""
    from realtime.engine.plan import plan_engine
    from realtime.engine.runner.runner import native_bf16

    status, body = tiny_server.get("/readyz")
    want = plan_engine(tiny_config_for_tests().engine, "cpu", native_bf16()).describe()
    assert status == 200 and json.loads(body)["plan"] == json.loads(json.dumps(want))
    assert json.loads(body)["plan"]["windows"]["adaptive"] is True


def speak(server: Running, **fields: object) -> tuple[int, bytes, dict[str, str]]:
    return server.post("/v1/audio/speech", {"model": "kokoro", "input": TEXT, **fields})


def test_health_ready_voices(tiny_server: Running) -> None:
    assert tiny_server.get("/healthz")[0] == 200
    status, body = tiny_server.get("/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    status, body = tiny_server.get("/v1/voices")
    assert status == 200
    listed = json.loads(body)
    assert listed["voices"] == ["jf_alpha", "jm_kumo"]
    assert listed["voice_info"] == [
        {"name": "jf_alpha", "language": "en-us", "family": "Japanese", "gender": "female"},
        {"name": "jm_kumo", "language": "en-us", "family": "Japanese", "gender": "male"}]
    assert listed["languages"][:2] == ["auto", "en-us"] and "es" in listed["languages"]


def test_wav_whole(tiny_server: Running, tmp_path: Path) -> None:
    status, body, headers = speak(tiny_server, response_format="wav")
    assert status == 200 and headers["content-type"] == "audio/wav"
    (tmp_path / "a.wav").write_bytes(body)
    with wave.open(str(tmp_path / "a.wav")) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1
        assert w.getnframes() == (len(body) - 44) // 2 > 2400


def test_streamed_pcm_equals_whole(tiny_server: Running) -> None:
    _, whole, _ = speak(tiny_server, response_format="pcm")
    _, streamed, _ = speak(tiny_server, response_format="pcm", stream=True)
    assert len(whole) % 2 == 0 and len(whole) > 4800
    assert streamed == whole  # noise off: the same audio, however it is sent
    _, wav, _ = speak(tiny_server, response_format="wav", stream=True)
    assert wav[:4] == b"RIFF" and wav[44:] == whole


def test_mulaw_length(tiny_server: Running) -> None:
    _, pcm, _ = speak(tiny_server, response_format="pcm")
    status, body, headers = speak(tiny_server, response_format="mulaw")
    assert status == 200 and headers["content-type"] == "audio/basic"
    samples_8k = len(pcm) // 2 // 3
    assert len(body) % 160 == 0 and samples_8k <= len(body) < samples_8k + 160 + 80


def test_ogg_opus_decodes(tiny_server: Running, tmp_path: Path) -> None:
    _, pcm, _ = speak(tiny_server, response_format="pcm")
    status, body, headers = speak(tiny_server, response_format="opus", stream=True)
    assert status == 200 and headers["content-type"] == "audio/ogg" and body[:4] == b"OggS"
    (tmp_path / "a.ogg").write_bytes(body)
    subprocess.run(["opusdec", "--quiet", "--rate", "24000", str(tmp_path / "a.ogg"),
                    str(tmp_path / "d.wav")], check=True, capture_output=True)
    with wave.open(str(tmp_path / "d.wav")) as w:
        assert abs(w.getnframes() - len(pcm) // 2) <= 1


@pytest.mark.parametrize(("fields", "code", "needle"), [
    ({"response_format": "flac"}, "bad_input", "wav, pcm, mp3, opus, mulaw"),
    ({"voice": "nobody"}, "unknown_voice", "jf_alpha"),
    ({"voice": "alloy"}, "unknown_voice", "maps to 'af_alloy'"),
    ({"input": ""}, "bad_input", "input"),
    ({"input": "x" * 5000}, "bad_input", "4096"),
    ({"speed": 9}, "bad_input", "speed"),
    ({"stream": "yes"}, "bad_input", "stream"),
    ({"language": "fr"}, "bad_input", "'language' must be auto"),
    ({"input": "🙂 **"}, "bad_input", "nothing to say"),
])
def test_speech_errors(tiny_server: Running, fields: dict[str, object], code: str,
                       needle: str) -> None:
    status, body, _ = speak(tiny_server, **fields)
    assert status == 400
    err = json.loads(body)["error"]
    assert err["code"] == code and needle in err["message"]


def test_language_picks_the_g2p(tiny_server: Running) -> None:
    text = "Tengo 25 años y 3,5 kilos."
    _, spanish, _ = speak(tiny_server, input=text, response_format="pcm", language="es")
    _, auto, _ = speak(tiny_server, input=text, response_format="pcm")  # jf_alpha: en-us
    _, english, _ = speak(tiny_server, input=text, response_format="pcm", language="en-us")
    assert auto == english and spanish != english


def test_bad_json(tiny_server: Running) -> None:
    status, body, _ = tiny_server.post("/v1/audio/speech", b"{not json")
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_message"


def test_metrics_count_audio(tiny_server: Running) -> None:
    speak(tiny_server, response_format="pcm")
    status, body = tiny_server.get("/metrics")
    text = body.decode()
    assert status == 200
    audio = [line for line in text.splitlines() if line.startswith("realtime_audio_seconds_total")]
    assert audio and float(audio[0].split()[1]) > 0
    assert "realtime_first_audio_seconds_bucket" in text
    assert "realtime_batch_size_count" in text


def test_api_keys() -> None:
    lm = tiny_kokoro()
    running = start_server(tiny_config_for_tests(api_keys=("s3cret",)), lambda cfg: lm)
    try:
        running.wait_ready()
        assert speak(running, response_format="pcm")[0] == 401
        assert running.get("/v1/voices")[0] == 401
        ok = running.post("/v1/audio/speech", {"input": "Hi there.", "response_format": "pcm"},
                          headers={"Authorization": "Bearer s3cret"})
        assert ok[0] == 200 and len(ok[1]) > 0
        assert running.get("/v1/voices?token=s3cret")[0] == 200
        assert running.get("/healthz")[0] == 200  # probes need no key
    finally:
        stop_server(running)


def test_loading_then_ready() -> None:
    gate = threading.Event()
    lm = tiny_kokoro()

    def slow(cfg: ServerConfig) -> LoadedModel:
        assert gate.wait(30)
        return lm

    running = start_server(tiny_config_for_tests(), slow)
    try:
        status, body = running.get("/readyz")
        assert status == 503 and json.loads(body)["status"] == "loading"
        assert running.get("/healthz")[0] == 200
        assert speak(running)[0] == 503
        gate.set()
        running.wait_ready()
    finally:
        gate.set()
        stop_server(running)


def test_failed_start_is_reported() -> None:
    def broken(cfg: ServerConfig) -> LoadedModel:
        raise ModelFileError("weights file is truncated")

    running = start_server(tiny_config_for_tests(), broken)
    try:
        for _ in range(100):
            status, body = running.get("/healthz")
            if status == 503:
                break
            threading.Event().wait(0.05)
        assert status == 503 and "truncated" in json.loads(body)["reason"]
        assert running.get("/readyz")[0] == 503
    finally:
        stop_server(running)


def test_wav_header_sizes(tiny_server: Running) -> None:
    _, body, _ = speak(tiny_server, response_format="wav")
    riff_size, = struct.unpack("<I", body[4:8])
    data_size, = struct.unpack("<I", body[40:44])
    assert riff_size == len(body) - 8 and data_size == len(body) - 44
