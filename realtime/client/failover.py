"""Failover bookkeeping for ``realtime.client``: the reconnect policy, what a lost session
had open (``ContextTracker`` from the messages sent and received, no I/O), and the exceptions and
event a reconnection produces. See ``realtime.client``'s docstring for how they are used."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# 1001 going away (drain), 1006 no close frame (the replica died, or the network), 1011 internal
# (the engine process was lost: the replica turns unready), 1012 service restart, 1013 try again
# later (full, or not serving), 1014 bad gateway.
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
# A balancer's answers to a handshake when no replica can take it now.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
ABNORMAL_CLOSE = 1006
SESSION_TYPES = frozenset({"start", "text", "phonemes", "flush", "update", "end"})



@dataclass(frozen=True, slots=True)
class Reconnect:
    """When and how to connect again after a session is lost.

    Try ``n`` (from 0) waits ``min(max_delay_s, first_delay_s * factor ** n)``, less a random
    share of up to ``jitter`` of it (0: none; 1: "full jitter"), so that the sessions of a
    dead replica do not all arrive at once. It gives up after ``attempts`` tries or when
    ``give_up_s`` have passed since the loss; each try may take ``connect_timeout_s``.
    ``codes``: the close codes that count as a lost session (1006: closed without a close
    frame). The first ``connect`` retries on them too (and on 429/502/503/504 from a balancer).
    """

    first_delay_s: float = 0.1
    max_delay_s: float = 2.0
    factor: float = 2.0
    jitter: float = 0.5
    attempts: int = 10
    give_up_s: float = 30.0
    connect_timeout_s: float = 5.0
    codes: frozenset[int] = RECONNECT_CODES

    def __post_init__(self) -> None:
        if not (0 <= self.first_delay_s <= self.max_delay_s and self.factor >= 1
                and 0 <= self.jitter <= 1 and self.attempts >= 1 and self.give_up_s > 0
                and self.connect_timeout_s > 0):
            raise ValueError(f"bad reconnect policy: {self!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before try ``attempt`` (0-based)."""
        base = min(self.max_delay_s, self.first_delay_s * self.factor ** attempt)
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class LostContext:
    """A context that was open on a lost session.

    ``text``: every ``text`` delta sent to it; ``text_spoken`` + ``text_unspoken`` is ``text``,
    split at the end of the last word whose audio the client received (from ``alignment`` and
    ``audio``; without alignment, ``timestamps: none``, nothing counts as spoken);
    ``audio_ms``: its audio received; ``ended``: ``end`` was sent; ``settings``: the fields of
    its ``start`` and ``update`` messages, to open it again alike; ``marks``: (end_ms, char_end)
    of each word received, for ``unspoken(played_ms)``."""

    context_id: str
    text: str
    text_spoken: str
    text_unspoken: str
    audio_ms: float
    ended: bool
    settings: Mapping[str, Any]
    marks: tuple[tuple[float, int], ...]

    def unspoken(self, played_ms: float | None = None) -> str:
        """The text after the last word played by ``played_ms`` (capped at the audio
        received): what to send again when the client knows how much it played."""
        heard = self.audio_ms if played_ms is None else min(played_ms, self.audio_ms)
        return self.text[_spoken_chars(self.marks, heard):]


def _spoken_chars(marks: tuple[tuple[float, int], ...] | list[tuple[float, int]],
                  heard_ms: float) -> int:
    return max((end for end_ms, end in marks if end_ms <= heard_ms), default=0)


@dataclass(slots=True)
class _Track:
    text: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    marks: list[tuple[float, int]] = field(default_factory=list)
    audio_ms: float = 0.0
    ended: bool = False

    def report(self, context_id: str) -> LostContext:
        text = "".join(self.text)
        cut = _spoken_chars(self.marks, self.audio_ms)
        return LostContext(context_id, text, text[:cut], text[cut:], self.audio_ms, self.ended,
                           dict(self.settings), tuple(self.marks))


class ContextTracker:
    """One session's open contexts, from the messages sent and received (no I/O).

    A context opens with any context message and closes with its ``done`` or ``cancelled``,
    or when we send ``cancel``. An id reused after ``end`` before its ``done`` arrived is a new
    context, queued behind the old one."""

    def __init__(self) -> None:
        self._open: dict[str, list[_Track]] = {}

    def sent(self, msg: Mapping[str, Any]) -> None:
        kind, cid = msg.get("type"), str(msg.get("context_id") or "default")
        if kind == "cancel":
            self._open.pop(cid, None)
            return
        if kind not in SESSION_TYPES:
            return
        tracks = self._open.setdefault(cid, [])
        if not tracks or tracks[-1].ended:
            tracks.append(_Track())
        track = tracks[-1]
        if kind in ("start", "update"):
            track.settings.update({k: v for k, v in msg.items()
                                   if k not in ("type", "context_id")})
        elif kind == "text" and isinstance(msg.get("text"), str):
            track.text.append(msg["text"])
        elif kind == "end":
            track.ended = True

    def received(self, msg: Mapping[str, Any]) -> None:
        cid = msg.get("context_id")
        if not isinstance(cid, str) or not (tracks := self._open.get(cid)):
            return
        kind, track = msg.get("type"), tracks[0]
        if kind in ("done", "cancelled"):
            tracks.pop(0)
            if not tracks:
                del self._open[cid]
        elif kind == "alignment":
            track.marks.extend((float(w["end_ms"]), int(w["char_end"]))
                               for w in msg.get("words") or ())
        elif kind == "audio":
            end = float(msg.get("offset_ms", 0)) + float(msg.get("duration_ms", 0))
            track.audio_ms = max(track.audio_ms, end)

    def open(self) -> tuple[LostContext, ...]:
        """The open contexts now, oldest first per id."""
        return tuple(t.report(cid) for cid, tracks in self._open.items() for t in tracks)


class SessionLost(ConnectionError):
    """The session ended with a close code of the policy's ``codes``: reconnect, and send
    ``contexts``' unspoken text again. ``contexts`` is read from the lost session's tracker
    each time (it includes text whose ``send`` failed with this exception)."""

    def __init__(self, code: int, reason: str, tracker: ContextTracker, generation: int
                 ) -> None:
        super().__init__(f"session lost: close {code} {reason}".strip())
        self.code = code
        self.reason = reason
        self.generation = generation  # which connection of the client (0: the first)
        self.closed_at = time.monotonic()
        self._tracker = tracker

    @property
    def contexts(self) -> tuple[LostContext, ...]:
        return self._tracker.open()


class ReconnectFailed(ConnectionError):
    """``reconnect`` gave up (attempts or time spent, or a refusal not worth retrying, such
    as close 1008); ``lost`` is the loss it was for, ``__cause__`` the last error."""

    def __init__(self, message: str, lost: SessionLost | None) -> None:
        super().__init__(message)
        self.lost = lost


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new session after a loss: ``lost`` (the contexts to resend), the close ``code`` and
    ``reason``, the ``attempts`` it took, and when (``time.monotonic``) the loss was seen and
    the new session was ready."""

    lost: tuple[LostContext, ...]
    code: int
    reason: str
    attempts: int
    closed_at: float
    ready_at: float

    @property
    def downtime_s(self) -> float:
        return self.ready_at - self.closed_at
