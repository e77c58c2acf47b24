"""One context's state inside a session: its settings, text, chunks in flight, audio timeline.

``SessionProtocol`` owns these; a ``Context`` knows nothing of frames or framings. It turns
engine results into server messages in chunk order (results may come back out of order across
a batch), keeps what was sent and spoken for ``cancelled``, and fires ``flushed``/``done`` once
the last audio before them has gone out.

With a lead bound (``max_lead_s``) it also paces its audio stream: a listener is modelled as
playing the context's audio in real time from its first frame, pausing when it runs out (so an
idle gap between utterances earns no credit), and the stream's messages are handed out only
while the audio written stays at most ``max_lead_s`` ahead of that playback; the rest waits in
``outbox``, in order. ``may_submit`` keeps synthesis from running further ahead than that.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from realtime.codecs import StreamEncoder
from realtime.codecs.twilio import TwilioFramer
from realtime.engine.request import FRAME_S, FRAMES_PER_PHONEME, ChunkRequest, ChunkResult
from realtime.errors import (
    ChunkCancelled,
    EngineBusy,
    EngineLost,
    EngineStopped,
    InputError,
    RealtimeError,
)
from realtime.session.alignment import word_timings
from realtime.session.messages import ErrorCode, MessageId, ServerMessage, Timestamps
from realtime.session.scheduler import Chunk, TextScheduler, estimate_audio_s

__all__ = ["Context", "ContextSettings", "Out", "StreamKind"]

ENGINE_RATE = 24000  # the engine's output rate (realtime.model.SAMPLE_RATE)

StreamKind = Literal["control", "audio"]
# What a context hands its session: a message (or a Twilio dict) and whether it belongs to the
# context's ordered audio stream ("audio") or may overtake it ("control").
Out = tuple[ServerMessage | dict[str, Any], StreamKind]


HOLD_MARGIN_S = 0.5  # spare time when the buffer delay of later text finally fires
FAST_RTF = 0.2  # the pace assumed without a chunk plan (the server plans below 0.2: none)
# Held audio goes out in batches of about this much (never past the lead): one timer wake-up
# per batch per context instead of one per frame.
RELEASE_BATCH_S = 0.1
_EPS = 1e-6  # float slack on the clock comparisons (a deadline met must release)


@dataclass(frozen=True, slots=True)
class ContextSettings:
    voice: str
    speed: float
    codec: str
    sample_rate: int
    frame_ms: int
    language: str
    timestamps: Timestamps
    max_buffer_delay_ms: float


@dataclass(slots=True)
class _Slot:
    """A chunk in chunk order, from the scheduler until its audio has been sent. Its audio
    may come in pieces (windowed decoding): the first result is ``outcome``, and every result
    waits in ``pieces`` until its audio is delivered; a failure after the first piece is
    ``failure``."""

    chunk: Chunk
    request: ChunkRequest | None  # None: nothing to say
    outcome: ChunkResult | BaseException | None = None
    pieces: deque[ChunkResult] = field(default_factory=deque)
    failure: BaseException | None = None
    complete: bool = False  # every piece is in, or it failed
    started: bool = False  # the first piece went out (alignment, audio)
    samples: int = 0  # audio delivered
    last: ChunkResult | None = None  # the latest piece delivered

    @property
    def ready(self) -> bool:
        return self.request is None or self.outcome is not None

    @property
    def done(self) -> bool:
        """Nothing more will come for it."""
        return self.request is None or self.complete

    def receive(self, outcome: ChunkResult | BaseException) -> None:
        """The engine's result for this chunk, or for its next piece, or a failure."""
        if self.outcome is None:
            self.outcome = outcome
        elif isinstance(outcome, BaseException):
            self.failure = outcome
        if isinstance(outcome, ChunkResult):
            self.pieces.append(outcome)
        self.complete = isinstance(outcome, BaseException) or outcome.next is None


@dataclass(slots=True)
class _Marker:
    upto: int  # fires once this many chunks have been delivered
    kind: Literal["flush", "end"]
    flush_id: MessageId | None = None


_Item = tuple[Out, float]  # a message of the audio stream and the ms of audio it carries


@dataclass(eq=False, slots=True)
class Context:
    """The state of one ``context_id`` (see the module doc)."""

    id: str
    settings: ContextSettings
    scheduler: TextScheduler
    audio: StreamEncoder | TwilioFramer
    text: str = ""  # everything the client sent, as sent
    ended: bool = False
    first_text_at: float | None = None
    first_audio_at: float | None = None
    first_audio_reported: bool = False  # a `metrics` carried first_audio_ms
    slots: deque[_Slot] = field(default_factory=deque)
    created: int = 0  # chunks from the scheduler
    delivered: int = 0
    synthesised: int = 0  # chunks that had audio
    voiced_chars: int = 0  # text offset up to which chunks have been delivered
    seq: int = 0
    frames_ms: float = 0.0  # audio sent (whole frames, on the timeline)
    stream_in: int = 0  # engine samples pushed since the last encoder flush
    stream_base_ms: float = 0.0  # timeline position of that flush
    spoken: list[tuple[float, int]] = field(default_factory=list)  # (end_ms, char_end) per word
    markers: deque[_Marker] = field(default_factory=deque)
    held: list[Chunk] = field(default_factory=list)  # chunks cut but not yet submitted
    max_lead_s: float | None = None  # None: no lead bound (everything goes out at once)
    outbox: deque[_Item] = field(default_factory=deque)  # the audio stream beyond the lead
    outbox_ms: float = 0.0  # audio in it
    sent_ms: float = 0.0  # audio handed out (written): ``cancelled``'s audio_sent_ms
    plays_until: float | None = None  # when the audio handed out runs out in playback
    lost_told: bool = False  # an `engine_lost` error went out: one per context, not per chunk

    @property
    def buffered_chars(self) -> int:
        return len(self.text) - self.voiced_chars

    @property
    def pending(self) -> list[ChunkRequest]:
        return [s.request for s in self.slots if s.request is not None and s.outcome is None]

    def add(self, chunk: Chunk, request: ChunkRequest | None) -> _Slot:
        slot = _Slot(chunk, request)
        self.slots.append(slot)
        self.created += 1
        return slot

    def deadline(self, now: float) -> float:
        """When the next chunk is needed: when the audio sent and queued so far runs out."""
        return self._audio_end(now)

    def _audio_end(self, now: float) -> float:
        """When the listener runs out of audio: what was written, then what is held back, then
        the estimate of the chunks in synthesis (``now`` if that is all played or nothing)."""
        start = now if self.plays_until is None else max(self.plays_until, now)
        return start + self.outbox_ms / 1000.0 + self._queued_s()

    def _queued_s(self) -> float:
        return sum(r.est_audio_s for r in self.pending)

    def lead(self, now: float) -> float:
        """Audio written ahead of the listener's playback (seconds, >= 0)."""
        return 0.0 if self.plays_until is None else max(0.0, self.plays_until - now)

    def may_submit(self, chunk: Chunk, now: float) -> bool:
        """Whether ``chunk`` may go to the engine now: without a lead bound, yes; with one,
        once the audio ahead of the listener (written, held back, in synthesis) is down to the
        lead plus the time the chunk takes to synthesise (see ``_gate``)."""
        if self.max_lead_s is None or not chunk.phonemes:
            return True
        return self._audio_end(now) - now <= self._gate(chunk) + _EPS

    def next_submit(self) -> float | None:
        """When ``may_submit`` turns true for the first held chunk by time alone (None: it does
        now, it waits for an engine result, or there is none)."""
        if self.max_lead_s is None or not self.held or not self.held[0].phonemes:
            return None
        queued, gate = self._queued_s(), self._gate(self.held[0])
        if self.plays_until is None or queued > gate:
            return None  # nothing plays yet, or only results coming back can open the gate
        return self.plays_until + self.outbox_ms / 1000.0 + queued - gate

    def _gate(self, chunk: Chunk) -> float:
        # The lead, plus the time to synthesise the chunk at the planned pace: the chunk comes
        # back with about the lead still in hand, so a slow engine is not starved by the bound.
        assert self.max_lead_s is not None
        return self.max_lead_s + (self.scheduler.config.plan_rtf or FAST_RTF) * self._est_s(chunk)

    def _est_s(self, chunk: Chunk) -> float:
        """The chunk's audio as ``ChunkRequest.est_audio_s`` will estimate it."""
        return len(chunk.phonemes) * FRAMES_PER_PHONEME * FRAME_S / self.settings.speed

    def text_hold_until(self) -> float | None:
        """Until when text after the first chunk may wait for a sentence or clause end rather
        than be cut by the buffer delay: the audio sent and queued runs out then, less the time
        to synthesise the waiting text and a margin. Only where synthesis is far ahead of real
        time (no chunk plan): on a slow engine a longer chunk costs a gap. None while no audio
        has started."""
        if self.first_audio_at is None or self.scheduler.config.plan_rtf is not None:
            return None
        # (no `now`: the playback clock's end; chunks kept back for the lead will play too)
        runs_out = self._audio_end(self.first_audio_at) + sum(map(self._est_s, self.held))
        waiting = estimate_audio_s(len(self.scheduler.pending_text.strip()))
        return runs_out - FAST_RTF * waiting - HOLD_MARGIN_S

    def mark(self, kind: Literal["flush", "end"], flush_id: MessageId | None = None) -> None:
        self.markers.append(_Marker(self.created + len(self.held), kind, flush_id))

    def deliver(self, now: float) -> list[Out]:
        """Messages to write now: of every chunk deliverable in order and the markers they
        release, as far as the lead bound lets them go (the rest waits for ``next_release``)."""
        control: list[Out] = []  # errors may overtake the audio stream, held or not
        while True:
            while self.markers and self.markers[0].upto <= self.delivered:
                self._queue(self._fire(self.markers.popleft(), now), control)
            if not self.slots or not self.slots[0].ready:
                break
            slot = self.slots[0]
            self._queue(self._chunk(slot, now), control)
            if not slot.done:
                break  # more of its pieces are to come: the chunks after it wait
            self.slots.popleft()
            self.delivered += 1
        return control + self._release(now)

    def next_release(self) -> float | None:
        """When ``deliver`` next has held-back audio to hand out (None: nothing is held)."""
        if not self.outbox or self.max_lead_s is None or self.plays_until is None:
            return None
        room = max(self.outbox[0][1] / 1000.0, RELEASE_BATCH_S)
        return self.plays_until - max(0.0, self.max_lead_s - room)

    def _queue(self, items: list[_Item], control: list[Out]) -> None:
        for out, ms in items:
            if out[1] == "control":
                control.append(out)
            else:
                self.outbox.append((out, ms))
                self.outbox_ms += ms

    def _release(self, now: float) -> list[Out]:
        out: list[Out] = []
        while self.outbox:
            message, ms = self.outbox[0]
            if ms:
                lead = self.lead(now)
                if self.max_lead_s is not None and lead > 0 and (
                        lead + ms / 1000.0 > self.max_lead_s + _EPS):
                    break
                start = now if self.plays_until is None else max(self.plays_until, now)
                self.plays_until = start + ms / 1000.0
                self.sent_ms += ms
                self.outbox_ms -= ms
            self.outbox.popleft()
            out.append(message)
        if not self.outbox:
            self.outbox_ms = 0.0  # no float drift
        return out

    @property
    def busy(self) -> bool:
        """Chunks are waiting for synthesis or delivery (audio held back counts)."""
        return bool(self.slots or self.held or self.outbox)

    @property
    def finished(self) -> bool:
        """``done`` has been sent: the session may forget this context."""
        return self.ended and not self.markers and not self.slots and not self.outbox

    def cancelled(self, played_ms: float | None) -> dict[str, Any]:
        """The fields of ``cancelled``: audio sent, and the text split where playback stopped."""
        point = self.sent_ms if played_ms is None else min(played_ms, self.sent_ms)
        cut = max((c for end, c in self.spoken if end <= point + 1e-6), default=0)
        return {"audio_sent_ms": self.sent_ms, "text_spoken": self.text[:cut],
                "text_unspoken": self.text[cut:]}

    def _chunk(self, slot: _Slot, now: float) -> list[_Item]:
        """What a ready chunk has to send now: on its first call its alignment; the audio of
        each piece that came in; once complete, its metrics (or the error)."""
        chunk, result = slot.chunk, slot.outcome
        self.voiced_chars = max(self.voiced_chars, chunk.char_end)
        if isinstance(result, BaseException):
            return self._failed(chunk, result, "was not synthesised")
        if result is None:
            return []
        out: list[_Item] = [] if slot.started else self._start(slot, result)
        while slot.pieces:
            piece = slot.pieces.popleft()
            samples = np.asarray(piece.audio, dtype=np.float32)
            out += self._push(samples, f"{self.id}:{chunk.index}" if piece.next is None
                              else None, now)
            self.stream_in += len(samples)
            slot.samples += len(samples)
            slot.last = piece
        if slot.failure is not None:
            out += self._failed(chunk, slot.failure, "was cut off")
        elif slot.complete and slot.last is not None:
            out.append(self._metrics(chunk, slot.last, slot.samples, now))
        return out

    def _failed(self, chunk: Chunk, exc: BaseException, what: str) -> list[_Item]:
        reason = exc.reason if isinstance(exc, RealtimeError) else type(exc).__name__
        code: ErrorCode
        if isinstance(exc, EngineLost):
            # Every chunk in flight fails with it: one error tells the client all it can do.
            if self.lost_told:
                return []
            self.lost_told = True
            code, message = "engine_lost", (
                f"the engine was lost at chunk {chunk.index} ({reason}); reconnect and send "
                "again what was not spoken")
        else:
            refused = isinstance(exc, EngineBusy | EngineStopped | ChunkCancelled)
            code = "overloaded" if refused else "internal"
            message = f"chunk {chunk.index} {what}: {reason}"
        return [(({"type": "error", "code": code, "context_id": self.id, "message": message},
                  "control"), 0.0)]

    def _start(self, slot: _Slot, result: ChunkResult) -> list[_Item]:
        """A chunk's alignment (its audio follows, piece by piece)."""
        chunk = slot.chunk
        slot.started = True
        self.synthesised += 1
        out: list[_Item] = []
        offset = self.stream_base_ms + self.stream_in * 1000.0 / ENGINE_RATE
        try:
            timings = word_timings(chunk, [int(d) for d in result.durations], offset)
        except InputError:
            timings = []
        self.spoken += [(t.end_ms, t.char_end) for t in timings]
        if self.settings.timestamps == "word":
            out.append((({"type": "alignment", "context_id": self.id, "chunk": chunk.index,
                          "words": [{"word": t.word, "start_ms": round(t.start_ms, 1),
                                     "end_ms": round(t.end_ms, 1), "char_start": t.char_start,
                                     "char_end": t.char_end} for t in timings]}, "audio"), 0.0))
        return out

    def _metrics(self, chunk: Chunk, result: ChunkResult, samples: int, now: float) -> _Item:
        """The chunk's ``metrics``, once all its audio is out (``result``: its last piece)."""
        audio_ms = samples * 1000.0 / ENGINE_RATE
        metrics: dict[str, Any] = {
            "type": "metrics", "context_id": self.id, "chunk": chunk.index, "text": chunk.text,
            "queued_ms": round(float(result.queued_s) * 1000.0, 2),
            "inference_ms": round(float(result.inference_s) * 1000.0, 2),
            "batch_size": int(result.batch_size), "audio_ms": round(audio_ms, 2),
            "rtf": round(float(result.inference_s) * 1000.0 / audio_ms, 4) if audio_ms else 0.0,
        }
        if not self.first_audio_reported and self.first_audio_at is not None:
            # the first chunk whose audio filled a frame (a very short chunk 0 may not)
            start = self.first_text_at if self.first_text_at is not None else now
            metrics["first_audio_ms"] = round((self.first_audio_at - start) * 1000.0, 2)
            self.first_audio_reported = True
        return ((metrics, "audio"), 0.0)

    def _push(self, samples: np.ndarray, mark: str | None, now: float) -> list[_Item]:
        if isinstance(self.audio, TwilioFramer):
            before = self.audio.encoder.frames_out
            twilio = self.audio.push_chunk(samples, mark)
            return self._twilio(twilio, before, now)
        return self._frames(self.audio.push(samples), now)

    def _flush_audio(self, now: float) -> list[_Item]:
        if isinstance(self.audio, TwilioFramer):
            before = self.audio.encoder.frames_out
            out = self._twilio(self.audio.flush(), before, now)
            frames_out = self.audio.encoder.frames_out
        else:
            out = self._frames(self.audio.flush(), now)
            frames_out = self.audio.frames_out
        self.stream_base_ms = frames_out * self.settings.frame_ms
        self.stream_in = 0
        return out

    def _frames(self, frames: list[Any], now: float) -> list[_Item]:
        out: list[_Item] = []
        for f in frames:
            out.append((({"type": "audio", "context_id": self.id, "seq": self.seq,
                          "offset_ms": f.offset_ms, "duration_ms": f.duration_ms,
                          "data": f.data}, "audio"), float(f.duration_ms)))
            self._made(f.duration_ms, now)
        return out

    def _twilio(self, messages: list[Any], before: int, now: float) -> list[_Item]:
        sent = (self.audio.encoder.frames_out - before) if isinstance(
            self.audio, TwilioFramer) else 0
        for _ in range(sent):
            self._made(self.settings.frame_ms, now)
        # one `media` per frame; `mark`s carry no audio
        return [((dict(m), "audio"), float(self.settings.frame_ms) if m.get("event") == "media"
                 else 0.0) for m in messages]

    def _made(self, duration_ms: float, now: float) -> None:
        # The timeline (seq, offsets, ``done``'s audio_ms). A context's first frame is never
        # held back (nothing is ahead of it), so it is also the first written: first_audio_at.
        if self.first_audio_at is None:
            self.first_audio_at = now
        self.seq += 1
        self.frames_ms += duration_ms

    def _fire(self, marker: _Marker, now: float) -> list[_Item]:
        out = self._flush_audio(now)
        if marker.kind == "flush":
            out.append((({"type": "flushed", "context_id": self.id,
                          "flush_id": marker.flush_id}, "audio"), 0.0))
        else:
            out.append((({"type": "done", "context_id": self.id, "audio_ms": self.frames_ms,
                          "chunks": self.synthesised}, "audio"), 0.0))
        return out
