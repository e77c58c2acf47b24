"""What OpenAI's TTS clients send to ``POST /v1/audio/speech``, against a real server: OpenAI's
voice names, pcm and mp3 streamed, mp3, ``stream_format: sse``, any model."""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import soundfile

from tests.server.conftest import (
    Running,
    start_server,
    stop_server,
    tiny_config_for_tests,
    tiny_kokoro,
)

# Several sentences: several chunks from the engine, so a stream has pieces to send.
TEXT = ("Hello there, this is a test. It should sound the same however it is sent. Your order "
        "of four items shipped on Monday, and it should arrive by Friday afternoon. Thank you "
        "for waiting; we will call again if anything changes.")
RATE = 24000
# An MP3 decodes longer by LAME's delay (1105 samples) and the last frame's padding (< 576).
MP3_SLACK_S = 0.08


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    lm = tiny_kokoro()
    running = start_server(tiny_config_for_tests(openai_voices=("alloy=jf_alpha",
                                                                "ash=jm_kumo")),
                           lambda cfg: lm)
    running.wait_ready()
    yield running
    stop_server(running)


def speak(server: Running, **fields: object) -> tuple[int, bytes, dict[str, str]]:
    return server.post("/v1/audio/speech",
                       {"model": "gpt-4o-mini-tts", "input": TEXT, **fields})


def ok(server: Running, **fields: object) -> tuple[bytes, dict[str, str]]:
    status, body, headers = speak(server, **fields)
    assert status == 200, body[:300]
    return body, {k.lower(): v for k, v in headers.items()}


def streamed(headers: dict[str, str]) -> bool:
    """Sent in chunks as it was made: no length known up front."""
    return headers.get("transfer-encoding") == "chunked" and "content-length" not in headers


def chunks(server: Running, **fields: object) -> list[bytes]:
    """The body's HTTP chunks as sent (HTTP/1.1 chunked transfer coding, read off a socket)."""
    body = json.dumps({"input": TEXT, **fields}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    head, rest = raw.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in head.lower()
    out: list[bytes] = []
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return out
        out.append(rest[:size])
        rest = rest[size + 2:]


def mp3_seconds(data: bytes) -> float:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE
    return len(samples) / rate


def events(body: bytes) -> list[dict[str, Any]]:
    """OpenAI's SSE: ``data: <json>`` blocks separated by blank lines, nothing else."""
    blocks = body.split(b"\n\n")
    assert blocks[-1] == b""  # ends with a complete event
    out: list[dict[str, Any]] = []
    for block in blocks[:-1]:
        assert block.startswith(b"data: ") and b"\n" not in block, block[:80]
        out.append(json.loads(block[6:]))
    return out


def audio_of(body: bytes) -> bytes:
    """The delta events' audio, joined; checks the stream ends with one done event."""
    evs = events(body)
    assert [e["type"] for e in evs] == ["speech.audio.delta"] * (len(evs) - 1) + [
        "speech.audio.done"]
    assert len(evs) >= 2 and all(e["audio"] for e in evs[:-1])
    assert evs[-1]["usage"] == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    return b"".join(base64.b64decode(e["audio"]) for e in evs[:-1])


def test_pcm_streams_without_asking(server: Running) -> None:
    body, headers = ok(server, response_format="pcm")
    assert headers["content-type"] == "audio/pcm" and streamed(headers)
    assert headers["x-request-id"].startswith("req_")  # OpenAI's clients read it
    assert len(body) % 2 == 0 and len(body) > RATE  # whole 16-bit samples, over 0.5 s
    pieces = chunks(server, response_format="pcm")
    assert len(pieces) >= 2 and b"".join(pieces) == body  # sent piece by piece as it was made
    whole, headers = ok(server, response_format="pcm", stream=False)
    assert headers["content-length"] == str(len(whole)) and not streamed(headers)
    assert whole == body  # the same audio, however it is sent


def test_other_formats_stay_whole_by_default(server: Running) -> None:
    _, headers = ok(server, response_format="wav")
    assert headers["content-type"] == "audio/wav" and not streamed(headers)


def test_mp3_streams_and_decodes_to_the_pcm_duration(server: Running) -> None:
    pcm, _ = ok(server, response_format="pcm")
    mp3, headers = ok(server, response_format="mp3")
    assert headers["content-type"] == "audio/mpeg" and streamed(headers)
    pcm_s = len(pcm) / 2 / RATE
    assert pcm_s <= mp3_seconds(mp3) <= pcm_s + MP3_SLACK_S
    whole, headers = ok(server, response_format="mp3", stream=False)
    assert not streamed(headers) and whole == mp3


@pytest.mark.parametrize("fmt", ["pcm", "mp3"])
def test_sse_carries_the_same_audio_as_events(server: Running, fmt: str) -> None:
    plain, _ = ok(server, response_format=fmt)
    body, headers = ok(server, response_format=fmt, stream_format="sse")
    assert headers["content-type"].split(";")[0] == "text/event-stream" and streamed(headers)
    audio = audio_of(body)
    pieces = chunks(server, response_format=fmt, stream_format="sse")
    assert len(pieces) >= 3 and all(p.endswith(b"\n\n") for p in pieces)  # events as made
    if fmt == "pcm":
        assert abs(len(audio) - len(plain)) <= 0.02 * len(plain) and len(audio) % 2 == 0
    else:
        assert abs(mp3_seconds(audio) - mp3_seconds(plain)) <= MP3_SLACK_S
    # "stream": false: the same events in one body
    whole, headers = ok(server, response_format=fmt, stream_format="sse", stream=False)
    assert not streamed(headers) and abs(len(audio_of(whole)) - len(audio)) <= 0.02 * len(audio)


def test_sse_wav_starts_with_a_header_of_unknown_length(server: Running) -> None:
    body, _ = ok(server, response_format="wav", stream_format="sse", stream=False)
    audio = audio_of(body)
    assert audio[:4] == b"RIFF" and audio[40:44] == b"\xff\xff\xff\xff"


def test_stream_format_audio_is_the_plain_body(server: Running) -> None:
    plain, _ = ok(server, response_format="pcm")
    body, headers = ok(server, response_format="pcm", stream_format="audio")
    assert headers["content-type"] == "audio/pcm" and body == plain


def test_openai_voice_names_map_to_the_models_voices(server: Running) -> None:
    alloy, _ = ok(server, response_format="pcm", voice="alloy")
    ash, _ = ok(server, response_format="pcm", voice="ash")
    assert alloy == ok(server, response_format="pcm", voice="jf_alpha")[0]
    assert ash == ok(server, response_format="pcm", voice="jm_kumo")[0]
    assert alloy != ash
    # the model's own voices and blends work as before
    assert ok(server, response_format="pcm", voice="jf_alpha(1)+jm_kumo(1)")[0] not in (alloy,
                                                                                       ash)


def test_an_alias_the_model_cannot_speak_names_both_voices(server: Running) -> None:
    status, body, headers = speak(server, voice="nova", stream_format="sse")
    assert status == 400 and headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    assert err["code"] == "unknown_voice"
    assert ("'nova'" in err["message"] and "'af_nova'" in err["message"]
            and "model tiny" in err["message"] and "REALTIME_OPENAI_VOICES" in err["message"])


def test_voices_lists_the_aliases_the_model_can_speak(server: Running) -> None:
    status, body = server.get("/v1/voices")
    assert status == 200
    assert json.loads(body)["openai_voices"] == {"alloy": "jf_alpha", "ash": "jm_kumo"}


@pytest.mark.parametrize(("fields", "needle"), [
    ({"stream_format": "ws"}, "'stream_format' must be audio or sse, got 'ws'"),
    ({"stream_format": 1}, "'stream_format' must be audio or sse"),
    ({"model": 123}, "'model' must be a string"),
    ({"instructions": ["loud"]}, "'instructions' must be a string"),
    ({"response_format": "flac"}, "wav, pcm, mp3, opus, mulaw"),
    ({"response_format": ["mp3"]}, "response_format"),
    ({"speed": 0.25}, "within 0.5..2.0 on this server (OpenAI's range is 0.25..4.0)"),
    ({"speed": 4.0}, "got 4.0"),
    ({"voice": "nobody", "stream_format": "sse"}, "unknown voice 'nobody'"),
    ({"language": ["es"]}, "'language' must be auto"),
])
def test_openai_field_errors(server: Running, fields: dict[str, object], needle: str) -> None:
    status, body, _ = speak(server, **fields)
    assert status == 400
    assert needle in json.loads(body)["error"]["message"]


def test_any_model_and_instructions_are_accepted(server: Running) -> None:
    plain, _ = ok(server, response_format="pcm")
    for fields in ({"model": "tts-1"}, {"model": None}, {"model": "x", "instructions": "Whisper"},
                   {"instructions": None, "speed": 1.0}):
        assert ok(server, response_format="pcm", **fields)[0] == plain
    status, _, _ = server.post("/v1/audio/speech", {"input": TEXT, "response_format": "pcm"})
    assert status == 200  # no model at all
