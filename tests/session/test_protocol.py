"""SessionProtocol, driven synchronously: frames and fake engine results in, actions out.

No socket, no model: a real en-us Phonemizer and real encoders, and ChunkResults made of a sine
with 3 frames (75 ms) per phoneme.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import Future
from itertools import pairwise
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.errors import (
    ChunkCancelled,
    ConfigError,
    EngineBusy,
    EngineLost,
    EngineStopped,
    VoiceError,
)
from realtime.session.messages import Limits
from realtime.session.protocol import (
    RECENT_FINISHED,
    RECENT_REFUSED,
    Action,
    CancelChunks,
    Close,
    Send,
    SessionProtocol,
    SessionSettings,
    Submit,
)
from realtime.session.scheduler import SchedulerConfig
from realtime.text.phonemize import Phonemizer

PHONEMIZER = Phonemizer("en-us")
VOICES = ("af_heart", "am_adam", "bf_emma")
FRAMES_PER_PHONEME = 3
SAMPLES_PER_FRAME = 600  # 25 ms at 24 kHz


def fake_result(request: ChunkRequest, queued_s: float = 0.01, inference_s: float = 0.05,
                batch_size: int = 1) -> ChunkResult:
    durations = np.full(len(request.phonemes) + 2, FRAMES_PER_PHONEME, dtype=np.int64)
    durations[0] = durations[-1] = 1
    n = int(durations.sum()) * SAMPLES_PER_FRAME
    audio = (0.2 * np.sin(np.arange(n) * 2 * np.pi * 220 / 24000)).astype(np.float32)
    return ChunkResult(request, audio, durations, queued_s, inference_s, batch_size, 0)


def audio_ms(request: ChunkRequest) -> float:
    return (len(request.phonemes) * FRAMES_PER_PHONEME + 2) * 25.0


class Session:
    """A protocol with a client's view: send messages, read back decoded ones."""

    def __init__(self, framing: str = "json", query: dict[str, str] | None = None,
                 check_voice: Callable[[str], None] | None = None,
                 plan_rtf: Callable[[], float | None] | None = None,
                 phonemizer: Callable[[str], Phonemizer] | None = None,
                 **settings: Any) -> None:
        settings.setdefault("voices", VOICES)
        settings.setdefault("codec", "pcm16")
        self.framing = framing
        self.proto = SessionProtocol(SessionSettings(**settings), "s1",
                                     phonemizer=phonemizer or (lambda lang: PHONEMIZER),
                                     check_voice=check_voice, query=query,
                                     plan_rtf=plan_rtf)
        self.submitted: list[ChunkRequest] = []
        self.log: list[Action] = []
        self.ready = self.read()

    def send(self, now: float = 0.0, **msg: Any) -> list[dict[str, Any]]:
        frame: bytes | str = (msgpack.packb(msg) if self.framing == "msgpack"
                              else json.dumps(msg))
        self.proto.receive(frame, now)
        return self.read()

    def raw(self, frame: bytes | str, now: float = 0.0) -> list[dict[str, Any]]:
        self.proto.receive(frame, now)
        return self.read()

    def finish(self, request: ChunkRequest, now: float = 1.0, **kw: Any) -> list[dict[str, Any]]:
        self.proto.chunk_done(request, fake_result(request, **kw), now)
        return self.read()

    def finish_all(self, now: float = 1.0) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while self.submitted:
            out += self.finish(self.submitted.pop(0), now)
        return out

    def read(self) -> list[dict[str, Any]]:
        out = []
        for action in self.proto.actions():
            self.log.append(action)
            if isinstance(action, Submit):
                self.submitted.append(action.request)
            elif isinstance(action, Send):
                out.append(decode(action))
        return out

    def actions_of(self, kind: type) -> list[Any]:
        return [a for a in self.log if isinstance(a, kind)]


def decode(send: Send) -> dict[str, Any]:
    if isinstance(send.frame, bytes):
        msg = msgpack.unpackb(send.frame)
    else:
        msg = json.loads(send.frame)
        if msg.get("type") == "audio":
            msg["data"] = base64.b64decode(msg["data"])
    msg["_kind"] = send.kind
    return dict(msg)


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("type") or m["event"] for m in messages]


def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("type") == kind]


TEXT = "Hello there, my friend. How are you today? I hope that all is well with you. "


# ready, framing, ping

@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_ready_first_then_framing_of_first_message(framing: str) -> None:
    s = Session(framing)
    ready = s.ready[0]  # the query gave no framing: msgpack
    assert ready["type"] == "ready" and ready["session_id"] == "s1" and ready["protocol"] == 1
    assert "opus" in ready["codecs"] and 48000 in ready["sample_rates"]["opus"]
    assert ready["voices"] == list(VOICES)
    assert ready["voice_info"][2] == {"name": "bf_emma", "language": "en-gb",
                                      "family": "British English", "gender": "female"}
    assert ready["languages"] == ["auto", "en-us", "en-gb", "es", "fr-fr", "hi", "it", "pt-br"]
    assert ready["defaults"]["language"] == "auto"
    assert ready["limits"]["max_contexts"] == Limits().max_contexts
    assert ready["_kind"] == "control"
    assert isinstance(s.actions_of(Send)[0].frame, bytes)
    s.send(type="ping", id=7)
    pong = s.actions_of(Send)[-1]
    assert isinstance(pong.frame, bytes if framing == "msgpack" else str)
    assert decode(pong) == {"type": "pong", "id": 7, "_kind": "control"}


def test_query_framing_and_defaults() -> None:
    s = Session("json", query={"framing": "json", "codec": "opus", "voice": "am_adam",
                               "speed": "1.25", "frame_ms": "40"})
    assert isinstance(s.actions_of(Send)[0].frame, str)
    d = s.ready[0]["defaults"]
    assert (d["codec"], d["sample_rate"], d["voice"], d["speed"], d["frame_ms"]) == (
        "opus", 24000, "am_adam", 1.25, 40)  # the session rate, which opus has
    s.send(type="text", text="Hi there, you. ")
    s.send(type="flush")
    assert (s.submitted[0].voice, s.submitted[0].speed) == ("am_adam", 1.25)
    audio = of(s.finish_all(), "audio")
    assert audio and all(a["duration_ms"] == 40 for a in audio)


@pytest.mark.parametrize("query", [{"codec": "mp3"}, {"speed": "fast"}, {"voice": "nobody"},
                                   {"framing": "xml"}, {"codec": "mulaw", "sample_rate": "16000"}])
def test_bad_query_is_error_then_1008(query: dict[str, str]) -> None:
    s = Session(query=query)
    assert types(s.ready) == ["error"]
    assert s.actions_of(Close)[0].code == 1008
    assert s.send(type="ping") == []


def test_ping_without_id() -> None:
    assert Session().send(type="ping") == [{"type": "pong", "id": None, "_kind": "control"}]


# the main flow, both framings

@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_text_to_audio_alignment_metrics_done(framing: str) -> None:
    s = Session(framing)
    assert s.send(now=10.0, type="text", context_id="c", text=TEXT[:30]) == []
    assert len(s.submitted) == 1 and s.submitted[0].deadline == 10.0  # first chunk: now
    first = s.submitted[0]
    s.send(now=10.1, type="text", context_id="c", text=TEXT[30:])
    s.send(now=10.2, type="end", context_id="c")
    out = s.finish_all(now=10.5)
    assert types(out)[0] == "alignment"
    kinds = [t for t in types(out) if t != "audio"]
    chunks = len(s.actions_of(Submit))
    assert kinds == ["alignment", "metrics"] * chunks + ["done"]
    audio = of(out, "audio")
    assert [a["seq"] for a in audio] == list(range(len(audio)))
    assert [a["offset_ms"] for a in audio] == [20 * i for i in range(len(audio))]
    assert all(len(a["data"]) == 2 * 24000 * 20 // 1000 for a in audio)  # pcm16 at 24 kHz
    assert all(a["_kind"] == "audio" and a["context_id"] == "c" for a in audio)
    words = [w for m in of(out, "alignment") for w in m["words"]]
    assert [w["word"] for w in words][:4] == ["Hello", "there", "my", "friend"]
    assert all(a["start_ms"] < a["end_ms"] <= b["start_ms"] for a, b in pairwise(words))
    assert TEXT[words[-1]["char_start"]:words[-1]["char_end"]] == "you"
    metrics = of(out, "metrics")
    assert metrics[0]["first_audio_ms"] == pytest.approx(500.0)  # text at 10.0, audio at 10.5
    assert all("first_audio_ms" not in m for m in metrics[1:])
    m0 = metrics[0]
    assert (m0["chunk"], m0["queued_ms"], m0["inference_ms"], m0["batch_size"]) == (0, 10, 50, 1)
    assert m0["audio_ms"] == audio_ms(first)
    assert m0["rtf"] == pytest.approx(50 / audio_ms(first), abs=1e-3)
    assert "".join(m["text"] for m in metrics) == TEXT
    done = out[-1]
    total = sum(m["audio_ms"] for m in metrics)
    assert done["chunks"] == chunks and done["audio_ms"] == 20 * len(audio) >= total
    assert s.proto.contexts == ()  # forgotten after done


def test_later_chunk_deadline_is_when_audio_runs_out() -> None:
    s = Session(scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(now=5.0, type="text", text="Hello there, my friend. How")
    r0 = s.submitted[0]
    s.send(now=5.1, type="text", text=" are you? Fine")  # chunk 0 still pending
    assert s.submitted[1].deadline == pytest.approx(5.1 + len(r0.phonemes) * 0.075)
    s.finish(s.submitted.pop(0), now=5.4)  # first audio at 5.4
    sent_ms = s.proto._contexts["default"].frames_ms
    s.send(now=5.5, type="text", text=", thanks. Bye")
    r1 = s.submitted[0]
    assert s.submitted[1].deadline == pytest.approx(
        5.4 + (sent_ms + len(r1.phonemes) * 75) / 1000)


def test_opus_frames() -> None:
    s = Session(codec="opus", sample_rate=48000)
    s.send(type="text", text="Hello there, my friend. ")
    s.send(type="flush")
    out = s.finish_all()
    audio = of(out, "audio")
    assert len(audio) == -(-(audio_ms(s.actions_of(Submit)[0].request) + 6.5) // 20)
    assert all(0 < len(a["data"]) < 400 for a in audio)
    assert types(out)[-1] == "flushed"


def test_timestamps_none_sends_no_alignment() -> None:
    s = Session()
    s.send(type="start", timestamps="none")
    s.send(type="text", text="Hello there, my friend. ")
    assert "alignment" not in types(s.finish_all())


# ordering

def test_out_of_order_results_are_delivered_in_chunk_order() -> None:
    s = Session(scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(type="text", text="One two three. Four five six. Seven eight nine. ")
    s.send(type="flush")
    r0, r1, r2 = s.submitted
    assert s.finish(r2) == [] and s.finish(r1) == []
    out = s.finish(r0)
    assert [m["chunk"] for m in of(out, "metrics")] == [0, 1, 2]
    audio = of(out, "audio")
    assert [a["seq"] for a in audio] == list(range(len(audio)))


def test_several_contexts_at_once() -> None:
    s = Session()
    s.send(type="start", context_id="a", codec="opus", sample_rate=24000, voice="am_adam")
    s.send(type="start", context_id="b", codec="mulaw", sample_rate=8000, frame_ms=40)
    s.send(type="text", context_id="a", text="Hello there, my friend. ")
    s.send(type="text", context_id="b", text="Good morning to you all. ")
    s.send(type="end", context_id="a")
    s.send(type="end", context_id="b")
    ra, rb = s.submitted
    assert (ra.context, ra.voice, rb.context, rb.voice) == ("a", "am_adam", "b", "af_heart")
    out = s.finish(rb) + s.finish(ra)
    for cid, size in (("a", None), ("b", 320)):
        mine = [m for m in out if m.get("context_id") == cid]
        audio = of(mine, "audio")
        assert [a["seq"] for a in audio] == list(range(len(audio)))
        assert size is None or all(len(a["data"]) == size for a in audio)
        assert types(mine)[-1] == "done"
    assert s.proto.contexts == ()


@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_flush_then_flushed_after_its_last_audio(framing: str) -> None:
    s = Session(framing)
    s.send(type="text", text="Hello there, my friend. And then")
    assert s.send(type="flush", flush_id="f1") == []
    r0, r1 = s.submitted
    out = s.finish(r1)
    assert out == []
    out = s.finish(r0)
    assert types(out)[-1] == "flushed" and out[-1]["flush_id"] == "f1"
    assert out[-1]["_kind"] == "audio"  # ordered behind the audio, not ahead of it
    audio = of(out, "audio")
    assert audio[-1]["offset_ms"] + 20 >= audio_ms(r0) + audio_ms(r1)
    # nothing pending: flushed at once
    assert s.send(type="flush", flush_id=2) == [
        {"type": "flushed", "context_id": "default", "flush_id": 2, "_kind": "audio"}]


def test_two_flushes_in_order() -> None:
    s = Session()
    s.send(type="text", text="First part")
    s.send(type="flush", flush_id=1)
    s.send(type="text", text="second part")
    s.send(type="flush", flush_id=2)
    r0, r1 = s.submitted
    out = s.finish(r1) + s.finish(r0)
    assert [m["flush_id"] for m in of(out, "flushed")] == [1, 2]
    assert types(out).index("flushed") < types(out).index("alignment", 1)


@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_update_applies_from_the_next_chunk(framing: str) -> None:
    s = Session(framing, scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(type="text", text="Hello there, my friend. How")
    s.send(type="update", voice="bf_emma", speed=1.5)
    s.send(type="text", text=" are you today? Good")
    r0, r1 = s.submitted
    assert (r0.voice, r0.speed) == ("af_heart", 1.0)
    assert (r1.voice, r1.speed) == ("bf_emma", 1.5)
    s.send(type="update", speed=0.8)
    s.send(type="text", text="bye now. ")
    s.send(type="flush")
    assert (s.submitted[2].voice, s.submitted[2].speed) == ("bf_emma", 0.8)


def test_blend_voice_and_unknown_voice() -> None:
    s = Session()
    assert s.send(type="start", voice="af_heart(2)+am_adam(1)") == []
    err = s.send(type="update", voice="af_nobody")
    assert err[0]["code"] == "unknown_voice" and err[0]["context_id"] == "default"
    assert s.send(type="start", context_id="x", voice="af_heart+zz")[0]["code"] == "unknown_voice"


def test_custom_voice_check() -> None:
    def check(spec: str) -> None:
        if spec != "mine":
            raise VoiceError(f"no voice {spec}")

    s = Session(check_voice=check, voice="mine")
    assert s.send(type="start", context_id="x", voice="af_heart")[0]["code"] == "unknown_voice"
    s.send(type="text", text="Hello there, you. ")  # another context: the default voice
    s.send(type="flush")
    assert s.submitted[0].voice == "mine"


def test_empty_chunk_keeps_the_order() -> None:
    s = Session()
    s.send(type="text", text="... ")
    s.send(type="flush", flush_id="a")  # a chunk with nothing to say: no submit
    assert s.submitted == []
    assert types(s.read()) == []
    assert s.log and types([decode(a) for a in s.actions_of(Send)])[-1] == "flushed"


@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_phonemes_are_spoken_in_order(framing: str) -> None:
    s = Session(framing)
    s.send(type="text", text="Say")
    s.send(type="phonemes", phonemes="kəkˈɔɹO")
    assert [r.phonemes for r in s.submitted][1] == "kəkˈɔɹO"
    err = s.send(type="phonemes", phonemes="k§")
    assert err[0]["code"] == "bad_value"
    out = s.finish_all()
    assert of(out, "alignment")[1]["words"][0]["word"] == "kəkˈɔɹO"


def test_max_buffer_delay_poll() -> None:
    s = Session()
    s.send(type="start", max_buffer_delay_ms=300)
    s.send(now=1.0, type="text", text="and so we went")
    assert s.submitted == [] and s.proto.next_deadline() == pytest.approx(1.3)
    s.proto.poll(1.2)
    assert s.read() == [] and s.submitted == []
    s.proto.poll(1.3)
    s.read()
    assert len(s.submitted) == 1 and s.submitted[0].phonemes == "ænd sˌO wi"
    assert s.proto.next_deadline() == pytest.approx(1.6)  # "went" waits on


# cancel

@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_cancel_mid_chunk(framing: str) -> None:
    s = Session(framing, scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(type="text", context_id="c", text=TEXT)
    s.send(type="text", context_id="other", text="Meanwhile, elsewhere. ")
    s.send(type="flush", context_id="other")
    r0 = s.submitted[0]
    out = s.finish(r0)
    words = of(out, "alignment")[0]["words"]
    sent = sum(a["duration_ms"] for a in of(out, "audio"))
    played = (words[1]["end_ms"] + words[2]["end_ms"]) / 2  # during the third word
    out = s.send(type="cancel", context_id="c", played_ms=played)
    assert out == [{"type": "cancelled", "context_id": "c", "audio_sent_ms": sent,
                    "text_spoken": "Hello there", "text_unspoken": TEXT[len("Hello there"):],
                    "_kind": "control"}]
    assert s.log[-2] == CancelChunks("s1", "c")
    for request in s.submitted[1:]:  # late results of the cancelled context: dropped
        if request.context == "c":
            assert s.finish(request) == []
    other = [r for r in s.submitted if r.context == "other"]
    assert of(s.finish(other[0]), "audio")  # the other context carries on
    assert s.proto.contexts == ("other",)


def test_cancel_without_played_ms_splits_at_what_was_sent() -> None:
    s = Session()
    s.send(type="text", text="Hello there, my friend. How are")
    out = s.finish(s.submitted[0])
    words = of(out, "alignment")[0]["words"]
    cancelled = s.send(type="cancel")[0]
    assert cancelled["audio_sent_ms"] >= words[-1]["end_ms"]
    assert cancelled["text_spoken"] == "Hello there, my friend"
    assert cancelled["text_unspoken"] == ". How are"


def test_cancel_before_audio_and_unknown_context() -> None:
    s = Session()
    s.send(type="text", text="Hello there, my friend. ")
    s.send(type="flush")
    assert s.send(type="cancel")[0] == {
        "type": "cancelled", "context_id": "default", "audio_sent_ms": 0, "text_spoken": "",
        "text_unspoken": "Hello there, my friend. ", "_kind": "control"}
    assert s.finish(s.submitted[0]) == []
    assert s.send(type="cancel", context_id="nope")[0]["text_unspoken"] == ""


def test_cancel_after_done_still_splits_what_the_client_played() -> None:
    # The server finished long before the client's playback did: the barge-in still learns
    # which words were heard, for the last RECENT_FINISHED contexts.
    s = Session()
    s.send(type="text", context_id="c", text="Hello there, my friend. ")
    s.send(type="end", context_id="c")
    out = s.finish(s.submitted[0])
    assert of(out, "done") and s.proto.contexts == ()
    words = of(out, "alignment")[0]["words"]
    cancelled = s.send(type="cancel", context_id="c", played_ms=words[1]["end_ms"])[0]
    assert cancelled["text_spoken"] == "Hello there"
    assert cancelled["text_unspoken"] == ", my friend. "
    assert cancelled["audio_sent_ms"] == sum(a["duration_ms"] for a in of(out, "audio"))
    for i in range(RECENT_FINISHED):  # newer finished contexts push it out
        s.send(type="text", context_id=f"n{i}", text="Next. ")
        s.send(type="end", context_id=f"n{i}")
        s.finish(s.submitted[-1])
    assert s.send(type="cancel", context_id="c")[0]["text_unspoken"] == ""
    assert s.send(type="cancel", context_id=f"n{RECENT_FINISHED - 1}")[0]["text_spoken"]


def test_each_new_context_plans_for_the_current_pace() -> None:
    pace: list[float | None] = [0.7]
    s = Session(plan_rtf=lambda: pace[-1])
    text = ("Sure, I can help with that. "
            "I found two tables for four people, one at seven and one at half past eight.")
    s.send(type="text", context_id="a", text=text)
    s.send(type="end", context_id="a")
    pace.append(None)  # e.g. the server found it runs far faster than real time
    s.send(type="text", context_id="b", text=text)
    s.send(type="end", context_id="b")
    planned = [r for r in s.submitted if r.context == "a"]
    free = [r for r in s.submitted if r.context == "b"]
    assert len(planned) > len(free) == 2
    assert planned[0].phonemes == free[0].phonemes  # the first chunk: the eager rule either way
    assert len(planned[1].phonemes) < len(free[1].phonemes)


def test_later_text_waits_for_a_boundary_while_the_listener_has_audio() -> None:
    # Chunk 0 is playing: text after it need not be cut mid-sentence by the buffer delay;
    # it waits for its sentence end until the audio in hand is about to run out.
    s = Session()
    s.send(type="text", context_id="c", text="Sure, I can help you with that. ")
    s.send(type="text", context_id="c", text="And then the next part of the", now=0.1)
    (first,) = s.submitted
    s.finish(first, now=1.0)  # its audio starts playing at 1.0
    runs_out = 1.0 + audio_ms(first) / 1000
    assert s.proto.next_deadline() is not None
    hold = s.proto.next_deadline()
    assert 1.0 + 0.4 < hold < runs_out  # later than the 400 ms delay, before the audio ends
    s.proto.poll(hold - 0.05)
    assert len(s.read()) == 0 and len(s.submitted) == 1  # still waiting for the sentence end
    s.proto.poll(hold)
    s.read()
    assert len(s.submitted) == 2 and s.submitted[1].phonemes  # the timeout fired in time


def test_under_a_chunk_plan_later_text_keeps_the_buffer_delay() -> None:
    # A slow engine (a plan is set): a longer chunk would cost a gap, so no hold.
    s = Session(plan_rtf=lambda: 0.7)
    s.send(type="text", context_id="c", text="Sure, I can help you with that. ")
    s.send(type="text", context_id="c", text="And then the next part of the", now=0.1)
    s.finish(s.submitted[0], now=1.0)
    assert s.proto.next_deadline() == pytest.approx(0.5)  # the last cut (0.1) + 400 ms


def test_first_chunk_still_goes_out_after_the_buffer_delay() -> None:
    s = Session()
    s.send(type="text", context_id="c", text="A first clause with no end in sight")
    assert s.proto.next_deadline() == pytest.approx(0.4)
    s.proto.poll(0.4)
    s.read()
    assert len(s.submitted) == 1


def test_context_id_reused_after_cancel_starts_afresh() -> None:
    s = Session()
    s.send(type="text", text="Hello there, my friend. ")
    s.send(type="flush")
    s.finish(s.submitted.pop())
    s.send(type="cancel")
    s.send(type="text", text="Again from the start. ")
    s.send(type="flush")
    audio = of(s.finish(s.submitted.pop()), "audio")
    assert audio[0]["seq"] == 0 and audio[0]["offset_ms"] == 0


# languages

_BY_LANGUAGE = {code: Phonemizer(code) for code in ("en-us", "en-gb", "es", "fr-fr")}


def _languages_asked(query: dict[str, str] | None = None, **start: Any) -> list[str]:
    asked: list[str] = []

    def phonemizer(language: str) -> Phonemizer:
        asked.append(language)
        return _BY_LANGUAGE[language]

    s = Session(voices=(*VOICES, "ef_dora", "ff_siwis"), query=query, phonemizer=phonemizer)
    out = s.send(type="start", **start)
    assert out == [], out
    return asked


@pytest.mark.parametrize(("query", "start", "language"), [
    (None, {}, "en-us"),  # the default voice, af_heart
    (None, {"voice": "bf_emma"}, "en-gb"),
    (None, {"voice": "ef_dora"}, "es"),
    (None, {"voice": "ef_dora(1)+af_heart(3)"}, "en-us"),  # the heaviest voice's
    (None, {"voice": "ef_dora", "language": "fr-fr"}, "fr-fr"),  # the context says otherwise
    ({"language": "es"}, {"voice": "ff_siwis"}, "es"),  # so does the session
    ({"language": "es"}, {"voice": "ff_siwis", "language": "auto"}, "fr-fr"),
    ({"voice": "ff_siwis"}, {}, "fr-fr"),
])
def test_a_contexts_language_is_its_voices_unless_said(query: dict[str, str] | None,
                                                       start: dict[str, Any],
                                                       language: str) -> None:
    assert _languages_asked(query, **start) == [language]


def test_a_spanish_voice_reads_spanish() -> None:
    s = Session(voices=(*VOICES, "ef_dora"), phonemizer=_BY_LANGUAGE.__getitem__)
    s.send(type="start", voice="ef_dora")
    s.send(type="text", text="Hola, ¿qué tal? ")
    s.send(type="flush")
    assert s.submitted[0].phonemes.startswith("ˈola,")


def test_a_bad_language_is_refused() -> None:
    s = Session()
    for bad in ("fr", "EN-US", "", "klingon"):
        err = s.send(type="start", context_id="c", language=bad)
        assert err[0]["code"] == "bad_value" and "es, fr-fr" in err[0]["message"]
    closed = Session(query={"language": "de"})
    assert closed.actions_of(Close)[0].code == 1008


# limits and errors

@pytest.mark.parametrize("framing", ["msgpack", "json"])
def test_errors_for_bad_messages(framing: str) -> None:
    s = Session(framing)
    cases: list[tuple[dict[str, Any], str]] = [
             ({"type": "dance"}, "unknown_type"), ({"text": "x"}, "bad_message"),
             ({"type": "text", "text": 42}, "bad_value"),
             ({"type": "text", "text": "x" * 10001}, "too_long"),
             ({"type": "start", "codec": "mp3"}, "bad_value"),
             ({"type": "start", "codec": "opus", "sample_rate": 44100}, "bad_value"),
             ({"type": "start", "language": "fr"}, "bad_value"),
             ({"type": "start", "speed": 0}, "bad_value")]
    for msg, code in cases:
        out = s.send(**msg)
        assert [(m["type"], m["code"], m["_kind"]) for m in out] == [("error", code, "control")]
    s.send(type="start", context_id="c")
    assert s.send(type="start", context_id="c")[0]["code"] == "bad_value"
    assert s.raw(json.dumps([1, 2]))[0]["code"] == "bad_message"
    assert s.raw(msgpack.packb("hi"))[0]["code"] == "bad_message"
    assert s.actions_of(Close) == []


def test_too_many_contexts() -> None:
    s = Session(limits=Limits(max_contexts=2))
    s.send(type="text", context_id="a", text="x")
    s.send(type="start", context_id="b")
    err = s.send(type="text", context_id="c", text="y")
    assert err[0]["code"] == "too_many_contexts" and err[0]["context_id"] == "c"
    s.send(type="cancel", context_id="a")
    assert s.send(type="text", context_id="c", text="y") == []


def test_buffered_text_limit() -> None:
    s = Session(limits=Limits(max_buffered_chars=50))
    s.send(type="text", text="a" * 40)
    assert s.send(type="text", text="b" * 20)[0]["code"] == "too_long"
    assert s.send(type="text", text="b" * 10) == []


def test_text_after_end_is_refused() -> None:
    s = Session()
    s.send(type="text", text="Hello there, my friend. ")
    s.send(type="end")
    assert s.send(type="text", text="more")[0]["code"] == "bad_value"
    assert types(s.finish_all())[-1] == "done"
    assert s.send(type="text", text="New one. ") == []  # the id is free again


def test_end_on_empty_context_is_done_at_once() -> None:
    assert Session().send(type="end", context_id="z") == [
        {"type": "done", "context_id": "z", "audio_ms": 0, "chunks": 0, "_kind": "audio"}]


@pytest.mark.parametrize("frame, code", [
    (b"\x82\xa4type", 1007), (b"\xc1", 1007), ("{nope", 1007), ('{"a": Infinity}', 1007),
    (b"\x81" + b"x" * 70000, 1009), ("x" * 70000, 1009),
])
def test_unreadable_or_huge_frames_close(frame: bytes | str, code: int) -> None:
    s = Session()
    s.send(type="text", text="Hello there, my friend. ")
    s.send(type="flush")
    assert s.raw(frame) == []
    closes = s.actions_of(Close)
    assert [c.code for c in closes] == [code] and s.proto.closed
    assert CancelChunks("s1", "default") in s.log
    assert s.send(type="ping") == [] and s.finish(s.submitted[0]) == []


def test_rate_limit_then_1008() -> None:
    s = Session(limits=Limits(rate_burst=5, rate_messages_per_s=10, rate_close_after=3))
    for _ in range(5):
        assert s.send(now=0.0, type="ping")[0]["type"] == "pong"
    assert s.send(now=0.0, type="ping")[0]["code"] == "rate_limited"
    assert s.send(now=0.05, type="ping") == []  # half a token: still dropped, no new error
    assert s.send(now=0.1, type="ping")[0]["type"] == "pong"  # refilled: the run is over
    assert s.send(now=0.1, type="ping")[0]["code"] == "rate_limited"
    s.send(now=0.1, type="ping")
    s.send(now=0.1, type="ping")
    assert [c.code for c in s.actions_of(Close)] == [1008]


def test_engine_error_is_reported_and_the_context_goes_on() -> None:
    s = Session(scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(type="text", text="Hello there, my friend. How are you? ")
    s.send(type="end")
    r0, r1 = s.submitted
    s.proto.chunk_done(r0, EngineBusy("queue full"), 1.0)
    err = s.read()
    assert err[0]["code"] == "overloaded" and err[0]["context_id"] == "default"
    out = s.finish(r1)
    assert [m["chunk"] for m in of(out, "metrics")] == [1] and types(out)[-1] == "done"


# a refused start

def refused(s: Session, cid: str = "c1", **start: Any) -> dict[str, Any]:
    """A ``start`` that is refused: its one error."""
    (err,) = s.send(type="start", context_id=cid, **start)
    assert err["type"] == "error" and err["context_id"] == cid
    return err


@pytest.mark.parametrize(("start", "code", "said"), [
    ({"codec": "opux"}, "bad_value", "opux"),
    ({"codec": "opus", "sample_rate": 44100}, "bad_value", "44100"),
    ({"codec": "pcm16", "frame_ms": 33}, "bad_value", "frame"),
    ({"voice": "af_nobody"}, "unknown_voice", "af_nobody"),
    ({"language": "klingon"}, "bad_value", "language"),
    ({"speed": "fast"}, "bad_value", "speed"),
    ({"timestamps": 3}, "bad_value", "timestamps"),
])
def test_text_after_a_refused_start_opens_nothing(start: dict[str, Any], code: str,
                                                  said: str) -> None:
    s = Session()
    assert refused(s, **start)["code"] == code
    (err,) = s.send(type="text", context_id="c1", text="Hello there, my friend. ")
    assert err["code"] == "context_refused" and err["context_id"] == "c1"
    message = err["message"]
    assert message.startswith("context 'c1' was not opened: its start was refused")
    assert f"({code}: " in message and said in message and "send a valid start" in message
    # the rest of the stream is dropped without a word (not one error per token)
    assert s.send(type="text", context_id="c1", text="And then. ") == []
    assert s.send(type="phonemes", context_id="c1", phonemes="kəkˈɔɹO") == []
    assert s.send(type="update", context_id="c1", speed=1.5) == []
    assert s.proto.contexts == () and s.actions_of(Submit) == [] and not s.proto.busy


def test_phonemes_or_update_first_after_a_refused_start_says_why() -> None:
    for first in ({"type": "phonemes", "phonemes": "kəkˈɔɹO"}, {"type": "update", "speed": 1.5}):
        s = Session()
        refused(s, codec="opux")
        assert [e["code"] for e in s.send(context_id="c1", **first)] == ["context_refused"]
        assert s.send(type="text", context_id="c1", text="Hi. ") == []
        assert s.actions_of(Submit) == []


def test_a_refused_context_answers_every_flush_and_end_then_end_forgets_it() -> None:
    s = Session()
    refused(s, codec="opux")
    s.send(type="text", context_id="c1", text="Hello there, my friend. ")
    for _ in range(2):  # the client waits for `flushed`: it must hear why it will not come
        (err,) = s.send(type="flush", context_id="c1", flush_id="f")
        assert err["code"] == "context_refused" and "opux" in err["message"]
    (err,) = s.send(type="end", context_id="c1")
    assert err["code"] == "context_refused" and s.actions_of(Submit) == []
    assert s.send(type="text", context_id="c1", text="Hello there, my friend. ") == []
    assert s.send(type="flush", context_id="c1") == []
    assert s.proto.contexts == ("c1",) and len(s.submitted) == 1  # a fresh id: the defaults


def test_a_good_start_after_a_refused_one_opens_with_its_own_settings() -> None:
    s = Session()  # the session's codec: pcm16 at 24 kHz
    refused(s, codec="opux", sample_rate=8000)
    s.send(type="text", context_id="c1", text="Lost words. ")
    assert s.send(type="start", context_id="c1", codec="mulaw", sample_rate=8000) == []
    assert s.send(type="text", context_id="c1", text="Hello there, my friend. ") == []
    assert s.send(type="flush", context_id="c1", flush_id="f") == []
    (request,) = s.submitted
    assert request.context == "c1" and "lost" not in request.phonemes
    out = s.finish_all()
    assert of(out, "audio") and all(len(a["data"]) == 160 for a in of(out, "audio"))  # mulaw
    assert types(out)[-1] == "flushed"


def test_cancel_forgets_a_refused_start() -> None:
    s = Session()
    refused(s, voice="af_nobody")
    assert s.send(type="cancel", context_id="c1") == [
        {"type": "cancelled", "context_id": "c1", "audio_sent_ms": 0, "text_spoken": "",
         "text_unspoken": "", "_kind": "control"}]
    assert s.send(type="text", context_id="c1", text="Hello there, my friend. ") == []
    assert s.send(type="flush", context_id="c1") == []
    assert s.proto.contexts == ("c1",) and len(s.submitted) == 1


def test_too_many_contexts_on_start_refuses_the_context_too() -> None:
    s = Session(limits=Limits(max_contexts=1))
    s.send(type="start", context_id="a")
    assert refused(s, "b")["code"] == "too_many_contexts"
    s.send(type="cancel", context_id="a")  # room now, but b's start was still refused
    (err,) = s.send(type="text", context_id="b", text="Hi there. ")
    assert err["code"] == "context_refused" and "too_many_contexts" in err["message"]
    assert s.proto.contexts == ()


def test_a_start_refused_for_an_open_context_leaves_it_open() -> None:
    s = Session()
    s.send(type="start", context_id="c1", codec="mulaw", sample_rate=8000)
    assert "already open" in refused(s, codec="opux")["message"]
    assert s.send(type="text", context_id="c1", text="Hello there, my friend. ") == []
    s.send(type="flush", context_id="c1")
    out = s.finish_all()
    assert all(len(a["data"]) == 160 for a in of(out, "audio")) and "error" not in types(out)


def test_a_context_without_an_id_is_refused_as_default() -> None:
    s = Session()
    assert refused(s, "default", codec="opux")["code"] == "bad_value"
    (err,) = s.send(type="text", text="Hello there, my friend. ")
    assert err["code"] == "context_refused" and err["context_id"] == "default"


def test_the_last_refused_starts_are_remembered() -> None:
    s = Session()
    for i in range(RECENT_REFUSED + 1):
        refused(s, f"r{i}", codec="opux")
    assert s.send(type="text", context_id="r0", text="Hi there. ") == []  # forgotten: opened
    assert s.proto.contexts == ("r0",)
    for i in (1, RECENT_REFUSED):
        assert s.send(type="text", context_id=f"r{i}", text="Hi. ")[0]["code"] == (
            "context_refused")
    refused(s, "r1", codec="opux")  # refused again: the newest
    refused(s, "x", codec="opux")  # pushes out the oldest, now r2
    assert s.send(type="flush", context_id="r2") == [
        {"type": "flushed", "context_id": "r2", "flush_id": None, "_kind": "audio"}]
    assert s.send(type="flush", context_id="r1")[0]["code"] == "context_refused"


def test_internal_error_closes_1011_without_raising() -> None:
    def broken(spec: str) -> None:
        raise RuntimeError("bug")

    s = Session(query=None, check_voice=None)
    s.proto._check_voice = broken  # a bug inside the handler
    out = s.send(type="start", context_id="x")
    assert out[0]["code"] == "internal" and s.actions_of(Close)[0].code == 1011


def test_connection_lost_cancels_everything() -> None:
    s = Session()
    s.send(type="text", context_id="a", text="Hello there, my friend. ")
    s.send(type="text", context_id="b", text="Hello there, my friend. ")
    s.send(type="flush", context_id="a")
    s.read()
    s.proto.connection_lost()
    assert set(s.proto.actions()) == {CancelChunks("s1", "a"), CancelChunks("s1", "b")}
    assert s.finish(s.submitted[0]) == []


# twilio

def test_twilio_framing() -> None:
    s = Session(query={"framing": "twilio"})
    assert isinstance(s.actions_of(Send)[0].frame, str)
    assert s.ready[0]["defaults"]["codec"] == "mulaw"
    s.send(type="text", text="Hello there, my friend. ")
    s.send(type="flush", flush_id="f")
    out = s.finish_all()
    events = [m.get("event") or m["type"] for m in out]
    assert events[0] == "alignment" and events[-1] == "flushed"
    media = [m for m in out if m.get("event") == "media"]
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)
    assert [m["mark"]["name"] for m in out if m.get("event") == "mark"] == ["default:0"]
    s.send(type="text", text="Another sentence here. ")
    s.finish_all()
    out = s.send(type="cancel")
    assert [m.get("event") or m["type"] for m in out] == ["clear", "cancelled"]
    assert s.send(type="start", context_id="o", codec="opus")[0]["code"] == "bad_value"


# endpoint hooks: backpressure, idle timeout, drain

def test_pause_keeps_chunks_back_until_resume() -> None:
    s = Session()
    s.proto.pause()
    s.send(now=1.0, type="text", text="Hello there, my friend. How")
    s.send(now=1.0, type="flush", flush_id="f")
    assert s.submitted == [] and s.proto.busy
    s.proto.resume(2.0)
    s.read()
    assert [r.deadline for r in s.submitted] == [2.0, pytest.approx(2.0 + len(
        s.submitted[0].phonemes) * 0.075)]
    out = s.finish_all()
    assert types(out).count("flushed") == 1 and types(out)[-1] == "flushed"
    assert not s.proto.busy


def test_idle_timeout_closes_1000_only_when_nothing_is_in_flight() -> None:
    s = Session(limits=Limits(idle_timeout_s=10.0))
    assert s.ready[0]["limits"]["idle_timeout_s"] == 10.0
    assert s.proto.next_deadline() == 10.0
    s.send(now=5.0, type="text", text="Hello there, my friend. ")
    s.send(now=5.0, type="flush")
    assert s.proto.next_deadline() is None  # synthesis in flight: not idle
    s.finish_all(now=6.0)
    assert s.proto.next_deadline() == 16.0
    s.proto.poll(15.9)
    s.read()
    assert s.actions_of(Close) == []
    s.proto.poll(16.0)
    s.read()
    assert s.actions_of(Close) == [Close(1000, "idle timeout")]


def test_server_close_cancels_contexts() -> None:
    s = Session()
    s.send(type="text", context_id="a", text="Hello there, my friend. ")
    s.send(type="flush", context_id="a")
    assert s.proto.busy
    s.proto.close(1001, "server draining")
    s.read()
    assert s.log[-2:] == [CancelChunks("s1", "a"), Close(1001, "server draining")]
    assert s.finish(s.submitted[0]) == []


def test_malformed_engine_result_closes_1011_without_raising() -> None:
    s = Session()
    s.send(type="text", text="Hello there, my friend. ")
    s.send(type="flush")
    request = s.submitted[0]
    bad = ChunkResult(request, np.zeros((2, 600), np.float32), np.ones(len(request.phonemes) + 2,
                      np.int64), 0.0, 0.0, 1, 0)
    s.proto.chunk_done(request, bad, 1.0)
    out = s.read()
    assert out[-1]["code"] == "internal" and s.actions_of(Close)[0].code == 1011


# the lead bound: each context's audio at most max_lead_s ahead of playback

Event = tuple[float, dict[str, Any]]


def play(s: Session, now: float = 0.0, delay: float = 0.0
         ) -> tuple[list[Event], list[tuple[float, ChunkRequest]]]:
    """Run the clock as the endpoint does: ``poll`` at each ``next_deadline``; a submitted
    chunk comes back ``delay`` later. Every message sent and every submit, with its time."""
    events: list[Event] = []
    submits: list[tuple[float, ChunkRequest]] = []
    engine: list[tuple[float, ChunkRequest]] = []
    for _ in range(100_000):
        submits += [(now, r) for r in s.submitted]
        engine += [(now + delay, r) for r in s.submitted]
        s.submitted.clear()
        due = s.proto.next_deadline()
        times = [t for t, _ in engine] + ([] if due is None else [due])
        if not times:
            return events, submits
        now = max(now, min(times))
        for item in [e for e in engine if e[0] <= now]:
            engine.remove(item)
            events += [(now, m) for m in s.finish(item[1], now=now)]
        s.proto.poll(now)
        events += [(now, m) for m in s.read()]
    raise AssertionError("the clock does not advance: a deadline that polls to nothing")


def listener(events: list[Event], cid: str) -> tuple[float, float]:
    """A listener who plays the context's audio in real time from its first frame and waits
    whenever it runs out: the most audio it was ever written ahead, and the least it still had
    when a later frame came (<= 0: it ran dry)."""
    level, last, most, least = 0.0, None, 0.0, float("inf")
    for t, m in events:
        if m.get("type") == "audio" and m["context_id"] == cid:
            if last is not None:
                least = min(least, level - (t - last))
                level = max(0.0, level - (t - last))
            level += m["duration_ms"] / 1000
            last = t
            most = max(most, level)
    return most, least


@pytest.mark.parametrize(("pace", "delay"), [(None, 0.0), (None, 0.5), (0.5, 0.3)])
def test_audio_runs_at_most_max_lead_ahead_and_synthesis_follows_playback(
        pace: float | None, delay: float) -> None:
    s = Session(max_lead_s=1.0, plan_rtf=lambda: pace)
    s.send(type="text", context_id="a", text=TEXT * 4)
    s.send(type="end", context_id="a")
    chunks = len(s.submitted)
    events, submits = play(s, delay=delay)
    mine = [m for _, m in events if m.get("context_id") == "a"]
    assert types(mine)[-1] == "done" and not of(mine, "error")
    audio = of(mine, "audio")
    assert [a["seq"] for a in audio] == list(range(len(audio)))
    most, least = listener(events, "a")
    assert most <= 1.0 + 1e-9  # 20 ms frames fit the bound exactly: no slack needed
    assert least > 0.0  # ... and the listener never ran dry: synthesis kept up
    total = sum(a["duration_ms"] for a in audio) / 1000
    first = next(t for t, m in events if m.get("type") == "audio")
    done = next(t for t, m in events if m.get("type") == "done")
    assert done == pytest.approx(first + total - 1.0, abs=0.1)  # paced by playback
    # Synthesis paused: all but the first chunks were submitted later, each once the audio
    # in hand was down to the lead plus its synthesis time (at the planned pace) and the
    # earlier chunks were back. Without the bound, all are submitted at once.
    assert chunks < len(submits) and len({t for t, _ in submits}) > 2
    for i, (t, r) in enumerate(submits[chunks:], chunks):
        back = sum(audio_ms(q) / 1000 for u, q in submits[:i] if u + delay <= t)
        queued = sum(q.est_audio_s for u, q in submits[:i] if u + delay > t)
        ahead = back + queued - (t - first)  # written or held, and estimated, less played
        gate = 1.0 + (pace or 0.2) * r.est_audio_s
        assert ahead == pytest.approx(gate, abs=0.03)  # 0.03: part of a frame in the encoder
    unbounded = Session(plan_rtf=lambda: pace)
    unbounded.send(type="text", context_id="a", text=TEXT * 4)
    unbounded.send(type="end", context_id="a")
    assert len(unbounded.submitted) == len(submits)


def test_a_held_context_holds_back_no_other() -> None:
    s = Session(max_lead_s=1.0)
    s.send(type="text", context_id="a", text=TEXT * 4)
    s.send(type="end", context_id="a")
    out = s.finish_all(now=0.0)
    assert sum(a["duration_ms"] for a in of(out, "audio")) == 1000  # the rest is held back
    assert s.proto.busy and s.proto.next_deadline() == pytest.approx(0.1)  # one batch on
    s.send(now=0.5, type="text", context_id="b", text="Hello there, my friend. ")
    s.send(now=0.5, type="flush", context_id="b")
    (rb,) = [r for r in s.submitted if r.context == "b"]
    assert rb.deadline == 0.5  # b's first chunk is due now, whatever a holds
    out = s.finish(rb, now=0.6)
    assert {m["context_id"] for m in out} == {"b"}
    assert types(out)[0] == "alignment"
    assert sum(a["duration_ms"] for a in of(out, "audio")) == 1000  # b's own lead, at once
    assert s.send(now=0.7, type="ping", id=2) == [  # control frames are never held
        {"type": "pong", "id": 2, "_kind": "control"}]


def test_cancel_drops_the_held_audio_at_once() -> None:
    s = Session(max_lead_s=1.0)
    s.send(type="text", context_id="a", text=TEXT * 4)
    s.send(type="end", context_id="a")
    s.finish_all(now=0.0)
    out = s.send(now=0.4, type="cancel", context_id="a")
    assert [(m["type"], m["_kind"]) for m in out] == [("cancelled", "control")]
    assert out[0]["audio_sent_ms"] == 1000  # written, not made: the held audio never went
    assert out[0]["text_spoken"] + out[0]["text_unspoken"] == TEXT * 4
    assert s.log[-2] == CancelChunks("s1", "a")  # and what the endpoint still queues goes too
    assert not s.proto.busy and s.proto.next_deadline() is None
    s.proto.poll(30.0)
    assert s.read() == [] and s.finish_all(now=30.0) == []


def test_an_idle_gap_earns_no_credit_and_flushed_follows_the_held_audio() -> None:
    # The lead is a listener's buffer: it drains in real time and never below empty, so
    # after a pause between utterances the next one again starts at most max_lead ahead.
    s = Session(max_lead_s=1.0)
    s.send(type="text", context_id="a", text="Hello there. ")
    s.send(type="flush", context_id="a", flush_id=1)
    first, _ = play(s)
    assert types([m for _, m in first])[-1] == "flushed"
    s.send(now=60.0, type="text", context_id="a", text=TEXT * 2)
    s.send(now=60.0, type="flush", context_id="a", flush_id=2)
    assert s.submitted[0].deadline == 60.0  # the listener has nothing left: due now
    events, _ = play(s, now=60.0)
    at_once = sum(m["duration_ms"] for t, m in events if m.get("type") == "audio" and t == 60.0)
    assert at_once == 1000
    assert listener(first + events, "a")[0] <= 1.0 + 1e-9
    last_audio = max(t for t, m in events if m.get("type") == "audio")
    (flushed,) = [(t, m) for t, m in events if m.get("type") == "flushed"]
    assert flushed[1]["flush_id"] == 2 and flushed[0] == last_audio
    assert types([m for _, m in events])[-1] == "flushed"


def test_twilio_media_is_paced_too() -> None:
    s = Session(query={"framing": "twilio"}, max_lead_s=0.5)
    s.send(type="text", text=TEXT)
    s.send(type="flush", flush_id="f")
    events, _ = play(s)
    media = [t for t, m in events if m.get("event") == "media"]
    assert media.count(0.0) == 25  # 0.5 s of 20 ms frames, then one batch at a time
    assert events[-1][1]["type"] == "flushed" and events[-1][0] >= media[-1]


def test_max_lead_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        SessionSettings(max_lead_s=0.0)


_FUZZ_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(),
    st.text(max_size=40), st.binary(max_size=8),
    st.sampled_from(["opus", "mulaw", "en-gb", "es", "auto", "ef_dora"]),
    st.lists(st.integers(0, 9), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(0, 9),
                                                        max_size=2))
_FUZZ_MESSAGES = st.dictionaries(
    st.sampled_from(["type", "context_id", "text", "phonemes", "voice", "speed", "codec",
                     "sample_rate", "frame_ms", "flush_id", "played_ms", "id", "timestamps",
                     "language", "max_buffer_delay_ms"]),
    _FUZZ_VALUES, max_size=5,
).map(lambda m: {**m, "type": m.get("type", "text")})
_FUZZ_TYPES = st.sampled_from(["start", "text", "phonemes", "flush", "update", "cancel", "end",
                               "ping", "other"])


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(_FUZZ_MESSAGES, _FUZZ_TYPES, st.booleans()), max_size=8))
def test_fuzz_never_raises_nor_disturbs_another_context(
        messages: list[tuple[dict[str, Any], str, bool]]) -> None:
    s = Session("msgpack", limits=Limits(max_text_chars=200))
    s.send(type="text", context_id="steady", text="Hello there, my friend. ")
    for msg, kind, retype in messages:
        if retype:
            msg["type"] = kind
        if msg.get("context_id") == "steady":
            del msg["context_id"]
        s.raw(msgpack.packb(msg))
    assert [c.code for c in s.actions_of(Close)] == []
    s.send(type="end", context_id="steady")
    steady = [m for m in s.finish_all() if m.get("context_id") == "steady"]
    assert of(steady, "audio") and types(steady)[-1] == "done"


# a chunk in pieces (windowed decoding)

def pieces(request: ChunkRequest, n: int, inference_s: float = 0.05) -> list[ChunkResult]:
    """``fake_result``'s audio cut in ``n`` pieces, chained as the engine chains them (the
    futures left unset: the test hands each piece to the protocol itself)."""
    whole = fake_result(request, inference_s=inference_s)
    cuts = np.array_split(whole.audio, n)
    out, offset = [], 0
    for i, audio in enumerate(cuts):
        last = i == n - 1
        out.append(ChunkResult(request, audio, whole.durations if i == 0 else
                               np.zeros(0, np.int64), 0.01, inference_s * (i + 1) / n, 1, 0,
                               None if last else Future(), offset))
        offset += len(audio)
    return out


def test_a_chunk_in_pieces_streams_each_piece_and_holds_the_next_chunk() -> None:
    s = Session(scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(now=10.0, type="text", context_id="c", text="One two three. Four five six. ")
    s.send(now=10.0, type="end", context_id="c")
    r0, r1 = s.submitted
    p0 = pieces(r0, 3)
    s.proto.chunk_done(r0, p0[0], 10.3)
    first = s.read()
    assert types(first)[0] == "alignment" and "metrics" not in types(first)
    sent = len(of(first, "audio"))
    assert sent > 0  # the first piece plays before the rest is decoded
    assert of(s.finish(r1, now=10.4), "metrics") == []  # chunk 1 waits behind chunk 0
    s.proto.chunk_done(r0, p0[1], 10.5)
    middle = s.read()
    assert types(middle) and set(types(middle)) == {"audio"}
    s.proto.chunk_done(r0, p0[2], 10.7)
    rest = s.read()
    metrics = of(rest, "metrics")
    assert [m["chunk"] for m in metrics] == [0, 1]  # chunk 0's metrics once, then chunk 1
    assert metrics[0]["inference_ms"] == 50 and metrics[0]["audio_ms"] == audio_ms(r0)
    assert metrics[0]["first_audio_ms"] == pytest.approx(300.0)  # the first piece's
    assert types(rest)[-1] == "done"
    audio = of(first, "audio") + of(middle, "audio") + of(rest, "audio")
    assert [a["seq"] for a in audio] == list(range(len(audio)))
    pcm = b"".join(a["data"] for a in audio)
    whole0, whole1 = fake_result(r0).audio, fake_result(r1).audio
    assert len(pcm) // 2 >= len(whole0) + len(whole1)  # nothing lost (the end pads a frame)


def first_piece_out(last: str) -> tuple[Session, ChunkRequest, list[ChunkResult]]:
    """A context with one chunk in three pieces, its first piece delivered; ``last``: the
    message that closed its text (``end`` or ``flush``)."""
    s = Session()
    s.send(type="text", context_id="c", text="One two three four five six.")
    s.send(type=last, context_id="c")
    (r0,) = s.submitted
    p0 = pieces(r0, 3)
    s.proto.chunk_done(r0, p0[0], 1.0)
    s.read()
    return s, r0, p0


def test_a_chunk_cut_off_between_pieces_says_so() -> None:
    s, r0, _ = first_piece_out("end")
    s.proto.chunk_done(r0, EngineStopped("the engine process stopped"), 1.2)
    out = s.read()
    errors = of(out, "error")
    assert len(errors) == 1 and "chunk 0 was cut off" in errors[0]["message"]
    assert errors[0]["code"] == "overloaded"
    assert types(out)[-1] == "done"  # the context still ends


def test_cancel_between_pieces_says_nothing_more_of_the_chunk() -> None:
    s, r0, p0 = first_piece_out("flush")
    out = s.send(now=1.1, type="cancel", context_id="c")
    assert types(out) == ["cancelled"]
    assert s.actions_of(CancelChunks)  # the engine is told
    s.proto.chunk_done(r0, ChunkCancelled("cancelled"), 1.2)  # its next piece's fate
    s.proto.chunk_done(r0, p0[1], 1.3)  # or a piece that was already on its way
    assert s.read() == []


def failing(s: Session, exc: Callable[[], BaseException], now: float = 1.0,
            order: Callable[[list[ChunkRequest]], list[ChunkRequest]] = list,
            ) -> list[dict[str, Any]]:
    """Every chunk in flight fails with a fresh ``exc()``, in ``order``; the messages out."""
    out: list[dict[str, Any]] = []
    for request in order(s.submitted):
        s.proto.chunk_done(request, exc(), now)
        out += s.read()
    s.submitted.clear()
    return out


def test_a_lost_engine_is_reported_once_per_context() -> None:
    s = Session(scheduler=SchedulerConfig(min_chunk_chars=0))
    for cid in ("a", "b"):
        s.send(type="text", context_id=cid, text=TEXT)
        s.send(type="end", context_id=cid)
    assert len([r for r in s.submitted if r.context == "a"]) >= 3  # several in flight
    first = s.submitted.pop(0)  # a's chunk 0 is spoken; its later chunks and b's are lost
    assert first.context == "a" and of(s.finish(first), "audio")
    out = failing(s, lambda: EngineLost("the engine process stopped answering"),
                  order=lambda rs: rs[::-1])  # the last first: chunk order holds the error
    errors = of(out, "error")
    assert [(e["context_id"], e["code"]) for e in errors] == [("b", "engine_lost"),
                                                             ("a", "engine_lost")]
    assert "engine was lost at chunk 1 (the engine process stopped" in errors[1]["message"]
    assert "chunk 0" in errors[0]["message"] and "reconnect" in errors[0]["message"]
    assert all(e["_kind"] == "control" for e in errors)
    assert "metrics" not in types(out)  # nothing more was spoken (audio: the end's padding)
    assert [(d["context_id"], d["chunks"]) for d in of(out, "done")] == [("b", 0), ("a", 1)]


def test_engine_lost_cutting_a_chunk_off_between_pieces_is_reported_once() -> None:
    s = Session(scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(type="text", context_id="c", text="One two three four five six. Seven eight nine. ")
    s.send(type="end", context_id="c")
    r0, r1 = s.submitted
    s.proto.chunk_done(r0, pieces(r0, 3)[0], 1.0)
    assert of(s.read(), "audio")
    s.proto.chunk_done(r1, EngineLost("lost"), 1.2)
    s.proto.chunk_done(r0, EngineLost("lost"), 1.2)  # chunk 0 cut off: the one error is its
    errors = of(s.read(), "error")
    assert [(e["code"], e["context_id"]) for e in errors] == [("engine_lost", "c")]
    assert "at chunk 0" in errors[0]["message"]


def test_a_busy_engine_is_still_overloaded_for_each_chunk() -> None:
    s = Session(scheduler=SchedulerConfig(min_chunk_chars=0))
    s.send(type="text", text=TEXT)
    s.send(type="end")
    chunks = len(s.submitted)
    out = failing(s, lambda: EngineBusy("queue full"))
    assert [e["code"] for e in of(out, "error")] == ["overloaded"] * chunks
    assert [int(e["message"].split()[1]) for e in of(out, "error")] == list(range(chunks))
    assert types(out)[-1] == "done"
