"""Twilio Media Streams framing for mu-law/8000 (protocol v1, ``framing=twilio``).

Audio goes out as ``{"event": "media", "media": {"payload": <base64 mu-law>}}``, one 20 ms frame
each, and a chunk's end as ``{"event": "mark", "mark": {"name": ...}}``, so a bridge can forward
them to Twilio unchanged (Twilio echoes a mark back once the audio before it has played).

A mark goes right after the frame that holds the chunk's last sample. That frame is complete only
once the next chunk's audio (or a flush) fills it, so no silence is inserted between chunks.
"""

from __future__ import annotations

import base64
from typing import Literal, TypedDict

import numpy as np

from realtime.codecs.config import DEFAULT_FRAME_MS, INPUT_RATE
from realtime.codecs.encoder import Frame, make_encoder

TWILIO_RATE = 8000


class TwilioPayload(TypedDict):
    payload: str


class TwilioMark(TypedDict):
    name: str


class _StreamSid(TypedDict, total=False):
    streamSid: str  # Twilio's stream id, when the framer was given one


class TwilioMediaMessage(_StreamSid):
    event: Literal["media"]
    media: TwilioPayload


class TwilioMarkMessage(_StreamSid):
    event: Literal["mark"]
    mark: TwilioMark


class TwilioClearMessage(_StreamSid):
    event: Literal["clear"]


TwilioMessage = TwilioMediaMessage | TwilioMarkMessage


class TwilioFramer:
    """Float samples at 24 kHz, one synthesised chunk at a time, in; Twilio messages out."""

    def __init__(
        self, stream_sid: str | None = None, frame_ms: int = DEFAULT_FRAME_MS,
        input_rate: int = INPUT_RATE,
    ) -> None:
        self._sid = stream_sid
        self._input_rate = input_rate
        self.encoder = make_encoder("mulaw", TWILIO_RATE, frame_ms, input_rate=input_rate)
        self._frame = self.encoder.config.frame_samples
        self._base = 0  # output samples before the current stream (after the last flush)
        self._input = 0  # input samples pushed since the last flush
        self._marks: list[tuple[int, str]] = []  # (frames needed before the mark, name)

    def push_chunk(self, samples: np.ndarray, mark: str | None = None) -> list[TwilioMessage]:
        """The messages ready after this chunk: media frames, then any marks now due.

        ``mark`` names this chunk's end (e.g. ``"ctx:3"``)."""
        frames = self.encoder.push(samples)
        self._input += len(samples)
        if mark is not None:
            end = self._base + -(-self._input * TWILIO_RATE // self._input_rate)
            self._marks.append((-(-end // self._frame), mark))
        return self._messages(frames) + self._due(self.encoder.frames_out)

    def flush(self) -> list[TwilioMessage]:
        """End of the audio for now (a flush or end): the padded last frame and every mark."""
        messages = self._messages(self.encoder.flush())
        messages += [self._mark(name) for _, name in self._marks]
        self._marks = []
        self._base = self.encoder.frames_out * self._frame
        self._input = 0
        return messages

    def clear(self) -> TwilioClearMessage:
        """Barge-in: drop what is held and tell Twilio to drop what it buffered."""
        self.encoder.reset()
        self._marks, self._base, self._input = [], 0, 0
        message: TwilioClearMessage = {"event": "clear"}
        if self._sid is not None:
            message["streamSid"] = self._sid
        return message

    def _messages(self, frames: list[Frame]) -> list[TwilioMessage]:
        out: list[TwilioMessage] = []
        for frame in frames:
            out.append(self._media(frame.data))
            out += self._due(frame.index + 1)
        return out

    def _due(self, frames_sent: int) -> list[TwilioMessage]:
        out: list[TwilioMessage] = []
        while self._marks and self._marks[0][0] <= frames_sent:
            out.append(self._mark(self._marks.pop(0)[1]))
        return out

    def _media(self, data: bytes) -> TwilioMediaMessage:
        message: TwilioMediaMessage = {
            "event": "media", "media": {"payload": base64.b64encode(data).decode("ascii")}
        }
        if self._sid is not None:
            message["streamSid"] = self._sid
        return message

    def _mark(self, name: str) -> TwilioMarkMessage:
        message: TwilioMarkMessage = {"event": "mark", "mark": {"name": name}}
        if self._sid is not None:
            message["streamSid"] = self._sid
        return message
