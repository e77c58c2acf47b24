from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from realtime.codecs import make_encoder
from realtime.codecs.twilio import TwilioFramer
from tests.codecs.helpers import encode_chunked, speech_like

SIGNAL = speech_like(0.5)


def events(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    return [m["event"] + (f":{m['mark']['name']}" if m["event"] == "mark" else "")
            for m in messages]


def test_message_shapes() -> None:
    framer = TwilioFramer(stream_sid="MZ123")
    messages = framer.push_chunk(SIGNAL, mark="ctx:0") + framer.flush()
    media, mark = messages[0], messages[-1]
    assert set(media) == {"event", "streamSid", "media"} and media["event"] == "media"
    assert set(media["media"]) == {"payload"}
    assert len(base64.b64decode(media["media"]["payload"])) == 160  # 20 ms of mu-law at 8 kHz
    assert mark == {"event": "mark", "streamSid": "MZ123", "mark": {"name": "ctx:0"}}
    json.dumps(messages)  # plain JSON, forwardable unchanged


def test_without_stream_sid_matches_protocol_example() -> None:
    framer = TwilioFramer()
    messages = framer.push_chunk(SIGNAL[:4800], mark="a") + framer.flush()
    assert set(messages[0]) == {"event", "media"}
    assert messages[-1] == {"event": "mark", "mark": {"name": "a"}}


def test_payloads_are_the_mulaw_frames() -> None:
    framer = TwilioFramer()
    messages = framer.push_chunk(SIGNAL[:7000], "a") + framer.push_chunk(SIGNAL[7000:], "b")
    messages += framer.flush()
    payload = b"".join(base64.b64decode(m["media"]["payload"]) for m in messages
                       if m["event"] == "media")
    expected = encode_chunked(make_encoder("mulaw", 8000, 20), [SIGNAL])
    assert payload == b"".join(f.data for f in expected)


def test_mark_follows_the_frame_holding_the_chunk_end() -> None:
    framer = TwilioFramer()
    # 100 ms = 5 frames exactly; then 30 ms (frame 6 plus half of frame 7), then 10 ms.
    chunk = np.full(2400, 0.1, np.float32)
    out = framer.push_chunk(chunk, "one") + framer.push_chunk(chunk[:720], "two")
    out += framer.push_chunk(chunk[:240], "three") + framer.flush()
    names = events(out)
    assert names == ["media"] * 5 + ["mark:one"] + ["media"] * 2 + ["mark:two", "mark:three"]


def test_marks_wait_for_their_audio_then_flush_releases_them() -> None:
    framer = TwilioFramer()
    out = framer.push_chunk(np.full(100, 0.1, np.float32), "short")
    assert "mark:short" not in events(out)
    assert events(framer.flush())[-1] == "mark:short"
    # After a flush, marks count from the new frame timeline.
    out = framer.push_chunk(np.full(480, 0.1, np.float32), "next") + framer.flush()
    assert events(out) == ["media", "mark:next"]


def test_clear_drops_pending_audio_and_marks() -> None:
    framer = TwilioFramer(stream_sid="MZ9")
    framer.push_chunk(SIGNAL[:1000], "lost")
    assert framer.clear() == {"event": "clear", "streamSid": "MZ9"}
    assert events(framer.flush()) == []
