"""``SynthesizeStream``: one LiveKit stream is one protocol context on a pooled connection.

Input, as LiveKit hands it over (``self._input_ch``): each text token goes out as ``text``
(tokens that queue up while the session is at the server's message rate go out together), each
framework flush that follows text as our ``flush`` with a ``flush_id``, the end of input as
``end``. Output: one LiveKit segment per flush (started at its first audio, ended at our
``flushed``), the audio through the emitter, and the words of each ``alignment`` as
``TimedString``s pushed before the audio they describe; the stream ends at ``done``.

Time base of the timed transcript: seconds from the stream's first audio frame. LiveKit's
synchronizer (``voice/transcription/synchronizer.py``) compares a word's ``start_time`` with the
time played since the speech's playback started, and a speech is one stream (in 1.8.9
``SynthesizeStream.push_text`` takes one segment per stream; the Cartesia and ElevenLabs plugins
give times from the start of their one context's audio). Our ``alignment`` times are on the
context's timeline, 0 at its first frame, continuous across flushes (a flush pads the last frame,
so the frames are the timeline): the same clock.

Each ``TimedString`` carries the text from the end of the word before it up to the start of the
next word (so the spaces and punctuation are in it), and their concatenation is the text
spoken: LiveKit shows that concatenation as the agent's transcript.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from livekit.agents import APITimeoutError, tts, utils
from livekit.agents.types import APIConnectOptions, TimedString

from realtime.integrations.common import word_times

from . import deadline
from .errors import from_lost, from_message
from .host import Host, Options
from .pool import Connection, ConnectionLost, Routed

FRAME_SIZE_MS = 200  # LiveKit's frames (the emitter merges a 10 ms tail: at most 210 ms)
GAP_S = 30.0  # the bound between two messages once the first after a flush or end came


@dataclass(slots=True)
class _Segment:
    id: str
    end: int | None = None  # where its text ends (the flush's position), once flushed


@dataclass(slots=True)
class _Context:
    """One attempt's context: what was sent, and what the server still owes."""

    conn: Connection
    id: str
    queue: asyncio.Queue[Routed]
    text: str = ""
    segments: deque[_Segment] = field(default_factory=deque)  # sent, not yet `flushed`
    typing: _Segment | None = None  # the segment text is going to now
    playing: _Segment | None = None  # the emitter's open segment
    said: int = 0  # text already in the timed transcript
    last_end_s: float = 0.0
    flushes: int = 0  # flushes sent and not answered
    ended: bool = False  # `end` sent
    heard: bool = True  # a message came since the last flush or end
    started: bool = False  # `start` sent
    finished: bool = False  # `done` received: nothing to cancel
    closed: bool = False  # the attempt is over: nothing more goes out
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one message at a time, in order

    async def send(self, msg: dict[str, Any]) -> None:
        async with self.lock:
            if self.closed:
                return
            if msg["type"] == "start":
                self.started = True
            elif msg["type"] == "end":
                self.ended = True
            elif msg["type"] == "update" and (not self.started or self.ended):
                # before `start` it is in the start; after `end` it would be refused (and
                # after `done` open the context again)
                return
            await self.conn.send(msg)

    def owe(self) -> None:
        self.heard = False
        self.queue.put_nowait(None)  # the receiver takes up the new deadline

    def deadline(self, timeout: float) -> float | None:
        if not (self.flushes or self.ended):
            return None  # the server owes nothing: waiting for the framework's text
        return max(timeout, GAP_S) if self.heard else timeout


class SynthesizeStream(tts.SynthesizeStream):
    """A streaming synthesis (from ``TTS.stream()``); LiveKit drives it with ``push_text``,
    ``flush``, ``end_input`` and ``aclose`` (barge-in: our ``cancel``, no frame after it)."""

    def __init__(self, *, tts: Host, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: Host = tts
        self._opts: Options = tts._opts
        self._live: _Context | None = None

    def _update(self, voice: str | None, speed: float | None) -> None:
        """Voice and speed for text from now on (``TTS.update_options``)."""
        changes: dict[str, Any] = {k: v for k, v in (("voice", voice), ("speed", speed))
                                   if v is not None}
        self._opts = replace(self._opts, **changes)
        if (ctx := self._live) is not None:
            ctx.conn.spawn(ctx.send({"type": "update", "context_id": ctx.id, **changes}))

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        request_id = utils.shortuuid()
        output_emitter.initialize(request_id=request_id, sample_rate=self._opts.sample_rate,
                                  num_channels=1, mime_type="audio/pcm", stream=True,
                                  frame_size_ms=FRAME_SIZE_MS)
        conn, queue, reused, waited = await self._tts._acquire(request_id, self._conn_options)
        self._acquire_time, self._connection_reused = waited, reused
        ctx = _Context(conn, request_id, queue)
        self._live = ctx
        sender = asyncio.create_task(self._send_input(ctx), name="realtime-livekit-input")
        try:
            await self._receive(ctx, output_emitter)
        finally:
            # nothing of this context after our `cancel` (a `text` or `update` would open it
            # again): the sender stops at its next await, pending updates find it closed
            self._live, ctx.closed = None, True
            sender.cancel()
            conn.close(ctx.id, cancel=not ctx.finished)
            await asyncio.gather(sender, return_exceptions=True)

    # -- to the server -------------------------------------------------------------------------
    async def _send_input(self, ctx: _Context) -> None:
        try:
            opts = self._opts
            await ctx.send({"type": "start", "context_id": ctx.id, "voice": opts.voice,
                            "speed": opts.speed, "language": opts.language, "codec": "pcm16",
                            "sample_rate": opts.sample_rate, "timestamps": "word"})
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    await self._flush(ctx)
                    continue
                await ctx.conn.text_turn()
                text, flush = self._more_text(item)
                await self._send_text(ctx, text)
                if flush:
                    await self._flush(ctx)
            await self._flush(ctx)
            await ctx.send({"type": "end", "context_id": ctx.id})
            ctx.owe()
        except Exception as e:  # the receiver raises it (mapped, if a lost connection)
            ctx.queue.put_nowait(e)

    def _more_text(self, first: str) -> tuple[str, bool]:
        """``first`` and the tokens queued behind it; True if a flush came after them."""
        parts = [first]
        while not self._input_ch.empty():
            item = self._input_ch.recv_nowait()
            if isinstance(item, self._FlushSentinel):
                return "".join(parts), True
            parts.append(item)
        return "".join(parts), False

    async def _send_text(self, ctx: _Context, text: str) -> None:
        if ctx.typing is None:
            ctx.typing = _Segment(utils.shortuuid())
            ctx.segments.append(ctx.typing)
        limit = ctx.conn.max_text_chars
        for i in range(0, len(text), limit):
            ctx.text += text[i:i + limit]  # first: its alignment may come before send returns
            self._mark_started()
            await ctx.send({"type": "text", "context_id": ctx.id, "text": text[i:i + limit]})

    async def _flush(self, ctx: _Context) -> None:
        segment, ctx.typing = ctx.typing, None
        if segment is None:
            return  # nothing since the last flush: LiveKit's empty flushes end nothing
        segment.end = len(ctx.text)
        ctx.flushes += 1
        await ctx.send({"type": "flush", "context_id": ctx.id, "flush_id": segment.id})
        ctx.owe()

    # -- from the server -----------------------------------------------------------------------
    async def _receive(self, ctx: _Context, emitter: tts.AudioEmitter) -> None:
        timeout = self._conn_options.timeout
        while True:
            wait = ctx.deadline(timeout)
            try:
                item = await deadline.get(ctx.queue, wait)
            except asyncio.TimeoutError as e:
                raise APITimeoutError(f"realtime: no answer from the server in {wait:g} s "
                                      f"(context {ctx.id})") from e
            if item is None:
                continue
            if isinstance(item, ConnectionLost):
                raise from_lost(item) from item
            if isinstance(item, BaseException):
                raise item
            ctx.heard = True
            if self._on_message(ctx, emitter, item):
                return

    def _on_message(self, ctx: _Context, emitter: tts.AudioEmitter,
                    msg: dict[str, Any]) -> bool:
        """Handle one message of the context; True at its end."""
        kind = msg.get("type")
        if kind == "audio":
            self._play(ctx, emitter)
            emitter.push(msg["data"])
        elif kind == "alignment":
            self._play(ctx, emitter)
            emitter.push_timed_transcript(_timed(ctx, msg.get("words") or []))
        elif kind == "flushed":
            segment = ctx.segments[0] if ctx.segments else None
            if segment is not None and msg.get("flush_id") == segment.id:
                ctx.flushes -= 1
                self._play(ctx, emitter)  # a flush with no audio is still its segment
                self._end_segment(ctx, emitter, segment.end)
        elif kind == "done":
            ctx.finished = True
            if ctx.playing is not None:
                self._end_segment(ctx, emitter, len(ctx.text))
            return True
        elif kind == "error":
            raise from_message(msg)
        elif kind == "cancelled":  # not ours: we stop routing a context before cancelling it
            raise from_message({"code": "internal", "message": "the server cancelled the "
                                "context", "context_id": ctx.id})
        return False

    def _play(self, ctx: _Context, emitter: tts.AudioEmitter) -> None:
        if ctx.playing is None and ctx.segments:
            ctx.playing = ctx.segments[0]
            emitter.start_segment(segment_id=ctx.playing.id)

    def _end_segment(self, ctx: _Context, emitter: tts.AudioEmitter, end: int | None) -> None:
        # the text after the segment's last word (its final punctuation), before its last frame
        if end is not None and end > ctx.said:
            emitter.push_timed_transcript(TimedString(ctx.text[ctx.said:end],
                                                      start_time=ctx.last_end_s,
                                                      end_time=ctx.last_end_s))
            ctx.said = end
        emitter.end_segment()
        ctx.playing = None
        if ctx.segments:
            ctx.segments.popleft()


def _timed(ctx: _Context, words: list[Mapping[str, Any]]) -> list[TimedString]:
    """An alignment's words, each with the text up to the next word's start (the last one: up
    to the next space, taking its punctuation)."""
    out = []
    for i, (w, (_, start, end)) in enumerate(zip(words, word_times(words), strict=True)):
        if i + 1 < len(words):
            stop = int(words[i + 1]["char_start"])
        else:
            stop = int(w["char_end"])
            while stop < len(ctx.text) and not ctx.text[stop].isspace():
                stop += 1
        if stop > ctx.said:
            out.append(TimedString(ctx.text[ctx.said:stop], start_time=start, end_time=end))
            ctx.said = stop
        ctx.last_end_s = end
    return out
