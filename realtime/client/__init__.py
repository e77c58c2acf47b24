"""An async client for ``/v1/stream`` (protocol v1): websockets + msgpack, no torch.

```python
async with await RealtimeClient.connect("ws://127.0.0.1:8000/v1/stream") as c:
    await c.text("Hello there! ", context_id="a")
    await c.end("a")
    async for msg in c.messages():
        if msg["type"] == "audio": play(msg["data"])
        if msg["type"] == "done": break
```
Messages come back as dicts with the wire fields; ``data`` is always ``bytes`` (decoded from
base64 in JSON framing).

**Failover** (opt in with ``reconnect=Reconnect()``). Behind a balancer, a session lives on one
replica; when that replica drains (close 1001), restarts or is full (1012, 1013), loses its
engine (1011) or dies (no close frame: 1006), the session is gone, and so is every context it
had open. With a ``Reconnect`` policy the client then raises ``SessionLost`` from ``recv`` (and
``send``, ``collect``, ``speak``, ``messages``) instead of ``websockets.ConnectionClosed``; it
carries the close code and ``contexts``: each context that was open (input sent, no ``done``
nor ``cancelled`` received, not cancelled by us) as a ``LostContext`` with its settings, the
text sent, and the split of that text into what was heard (the words whose audio arrived whole)
and ``text_unspoken``, what to send again. ``await client.reconnect()`` then connects again to
the same URL (through the balancer: another replica), retrying with bounded, jittered
exponential backoff, and returns a ``Reconnected``. Contexts are per session: a lost context
is not open on the new session; sending to its id opens a new one.

```python
client = await RealtimeClient.connect(url, reconnect=Reconnect())
async for event in client.events():  # messages, and a Reconnected after each loss
    if isinstance(event, Reconnected):
        for ctx in event.lost:
            if ctx.text_unspoken:
                await client.start(ctx.context_id, **ctx.settings)
                await client.text(ctx.text_unspoken, ctx.context_id)
                if ctx.ended:
                    await client.end(ctx.context_id)
    elif event["type"] == "audio":
        play(event["data"])
```
Other closes (1000 normal or idle, 1008 policy, 1009, ...) are not retried: they raise
``websockets.ConnectionClosed`` as without a policy. After a loss, every call on the lost
session raises the same ``SessionLost`` until ``reconnect()`` returns (concurrent callers share
one reconnection); its ``contexts`` include text given to a ``text`` call that failed with it.
Without a policy nothing changes. ``phonemes`` spans are not part of ``LostContext.text``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import msgpack
import websockets
from websockets.asyncio.client import ClientConnection

from realtime.client.failover import (
    ABNORMAL_CLOSE,
    RECONNECT_CODES,
    RETRY_STATUSES,
    ContextTracker,
    LostContext,
    Reconnect,
    Reconnected,
    ReconnectFailed,
    SessionLost,
)

__all__ = [
    "RECONNECT_CODES", "ContextTracker", "LostContext", "RealtimeClient", "Reconnect",
    "ReconnectFailed", "Reconnected", "SessionLost", "Utterance",
]

Framing = Literal["msgpack", "json"]

@dataclass
class Utterance:
    """What ``speak`` collected for one context: audio frames and the other messages."""

    audio: list[bytes] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


def _decode(frame: str | bytes) -> dict[str, Any]:
    if isinstance(frame, bytes):
        msg = msgpack.unpackb(frame, raw=False)
    else:
        msg = json.loads(frame)
        if isinstance(msg, dict) and isinstance(msg.get("data"), str):
            msg["data"] = base64.b64decode(msg["data"])
    if not isinstance(msg, dict):
        raise ValueError(f"server sent a non-map message: {msg!r}")
    return msg


def _close_code(closed: websockets.ConnectionClosed) -> tuple[int, str]:
    if closed.rcvd is None:
        return ABNORMAL_CLOSE, ""
    return closed.rcvd.code, closed.rcvd.reason


class RealtimeClient:
    def __init__(self, ws: ClientConnection, framing: Framing, ready: dict[str, Any], *,
                 url: str | None = None, headers: dict[str, str] | None = None,
                 reconnect: Reconnect | None = None, rng: random.Random | None = None
                 ) -> None:
        self.ws = ws
        self.framing = framing
        self.ready = ready
        self.url = url
        self.headers = headers
        self.policy = reconnect
        self.generation = 0  # connections made after the first
        self.attempts = 1  # tries the current connection took
        self._rng = rng or random.Random()
        self._tracker = ContextTracker()
        self._lost: SessionLost | None = None
        self._reconnecting: asyncio.Task[Reconnected] | None = None
        self._last: Reconnected | None = None

    @classmethod
    async def connect(cls, url: str, *, token: str | None = None, framing: Framing = "msgpack",
                      headers: dict[str, str] | None = None, reconnect: Reconnect | None = None,
                      rng: random.Random | None = None, **query: Any) -> RealtimeClient:
        """Connect, and wait for ``ready``. ``query``: session defaults (voice, codec, ...).
        ``reconnect``: the failover policy (module docstring); the first connection is then
        retried as a reconnection is."""
        params = {k: str(v) for k, v in query.items() if v is not None}
        if token is not None:
            params["token"] = token
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        tries = 1
        if reconnect is None:
            ws, ready = await _open(url, headers)
        else:
            ws, ready, tries = await _dial(url, headers, reconnect, rng or random.Random(), None)
        client = cls(ws, framing, ready, url=url, headers=headers, reconnect=reconnect, rng=rng)
        client.attempts = tries
        return client

    async def __aenter__(self) -> RealtimeClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- sending -------------------------------------------------------------------------------
    async def send(self, message: dict[str, Any]) -> None:
        ws, tracker = self.ws, self._tracker
        if self.framing == "msgpack":
            frame: str | bytes = msgpack.packb(message, use_bin_type=True)
        else:
            frame = json.dumps(message)
        tracker.sent(message)  # first: a lost session's report includes what failed to go
        try:
            await ws.send(frame)
        except websockets.ConnectionClosed as closed:
            self._raise_lost(ws, tracker, closed)
            raise

    async def start(self, context_id: str = "default", **settings: Any) -> None:
        await self.send({"type": "start", "context_id": context_id, **settings})

    async def text(self, text: str, context_id: str = "default") -> None:
        await self.send({"type": "text", "context_id": context_id, "text": text})

    async def phonemes(self, phonemes: str, context_id: str = "default") -> None:
        await self.send({"type": "phonemes", "context_id": context_id, "phonemes": phonemes})

    async def flush(self, context_id: str = "default", flush_id: str | None = None) -> None:
        msg: dict[str, Any] = {"type": "flush", "context_id": context_id}
        if flush_id is not None:
            msg["flush_id"] = flush_id
        await self.send(msg)

    async def update(self, context_id: str = "default", **settings: Any) -> None:
        await self.send({"type": "update", "context_id": context_id, **settings})

    async def cancel(self, context_id: str = "default", played_ms: float | None = None) -> None:
        msg: dict[str, Any] = {"type": "cancel", "context_id": context_id}
        if played_ms is not None:
            msg["played_ms"] = played_ms
        await self.send(msg)

    async def end(self, context_id: str = "default") -> None:
        await self.send({"type": "end", "context_id": context_id})

    async def ping(self, id: str | int | None = None) -> None:
        await self.send({"type": "ping", "id": id})

    # -- receiving -----------------------------------------------------------------------------
    async def recv(self) -> dict[str, Any]:
        """The next server message. When the connection closes: ``SessionLost`` if the
        policy says to reconnect, otherwise websockets' ``ConnectionClosed``."""
        ws, tracker = self.ws, self._tracker
        try:
            frame = await ws.recv()
        except websockets.ConnectionClosed as closed:
            self._raise_lost(ws, tracker, closed)
            raise
        msg = _decode(frame)
        tracker.received(msg)
        return msg

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Every server message until the connection closes (a loss raises ``SessionLost``
        when there is a policy)."""
        while True:
            try:
                yield await self.recv()
            except websockets.ConnectionClosed:
                return

    async def events(self) -> AsyncIterator[dict[str, Any] | Reconnected]:
        """Every server message, across sessions: after a loss, ``reconnect`` and yield its
        ``Reconnected`` (the lost contexts), then the new session's messages. Ends on a close
        that is not a loss; raises ``ReconnectFailed`` when reconnecting gives up."""
        while True:
            try:
                msg = await self.recv()
            except SessionLost as lost:
                yield await self.reconnect(lost)
                continue
            except websockets.ConnectionClosed:
                return
            yield msg

    async def speak(self, text: str, context_id: str = "default",
                    **settings: Any) -> Utterance:
        """Open a context, send ``text`` and ``end``, collect until its ``done``."""
        if settings:
            await self.start(context_id, **settings)
        await self.text(text, context_id)
        await self.end(context_id)
        return await self.collect(context_id)

    async def collect(self, context_id: str = "default", until: str = "done") -> Utterance:
        """Collect one context's messages until one of type ``until`` (or an error) for it."""
        out = Utterance()
        while True:
            msg = await self.recv()
            if msg.get("context_id", context_id) != context_id:
                continue
            out.messages.append(msg)
            if msg["type"] == "audio":
                out.audio.append(msg["data"])
            if msg["type"] in (until, "error"):
                return out

    # -- failover ------------------------------------------------------------------------------
    def open_contexts(self) -> tuple[LostContext, ...]:
        """The contexts open on the current session, as they would be reported if it were
        lost now."""
        return self._tracker.open()

    @property
    def lost(self) -> SessionLost | None:
        """The loss of the current session, until ``reconnect`` replaces it."""
        return self._lost

    def _raise_lost(self, ws: ClientConnection, tracker: ContextTracker,
                    closed: websockets.ConnectionClosed) -> None:
        """Raise ``SessionLost`` for a closed connection the policy reconnects after; return
        (the caller re-raises ``closed``) otherwise."""
        code, reason = _close_code(closed)
        if self.policy is None or code not in self.policy.codes:
            return
        if ws is not self.ws:  # the loss of a session already replaced
            raise SessionLost(code, reason, tracker, self.generation - 1) from closed
        if self._lost is None:
            self._lost = SessionLost(code, reason, tracker, self.generation)
        raise self._lost from closed

    async def reconnect(self, lost: SessionLost | None = None) -> Reconnected:
        """Connect again (the same URL, query and headers) with the policy's backoff; the
        lost session's contexts are in the result. Concurrent callers share one attempt, and
        a caller holding an older loss gets the reconnection that replaced it."""
        if self.policy is None:
            raise RuntimeError("no reconnect policy: connect(..., reconnect=Reconnect())")
        lost = lost or self._lost
        if lost is None:
            raise RuntimeError("the session is not lost")
        if lost.generation < self.generation and self._last is not None:
            return self._last
        if self._reconnecting is None:
            self._reconnecting = asyncio.create_task(self._redial(lost))
        task = self._reconnecting
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._reconnecting is task:
                self._reconnecting = None

    async def _redial(self, lost: SessionLost) -> Reconnected:
        assert self.policy is not None and self.url is not None
        ws, ready, attempts = await _dial(self.url, self.headers, self.policy, self._rng, lost)
        with_lost = Reconnected(lost.contexts, lost.code, lost.reason, attempts, lost.closed_at,
                                time.monotonic())
        self.ws, self.ready, self.attempts = ws, ready, attempts
        self._tracker = ContextTracker()
        self._lost = None
        self.generation += 1
        self._last = with_lost
        return with_lost

    # -- the connection ------------------------------------------------------------------------
    @property
    def response_headers(self) -> Mapping[str, str]:
        """The handshake response's headers (``x-realtime-worker``; a balancer's own)."""
        response = self.ws.response
        return response.headers if response is not None else {}

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    async def close(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            self._reconnecting = None
        await self.ws.close()


async def _open(url: str, headers: dict[str, str] | None) -> tuple[ClientConnection,
                                                                   dict[str, Any]]:
    """One connection, up to its ``ready``."""
    ws = await websockets.connect(url, additional_headers=headers, max_size=None)
    try:
        first = _decode(await ws.recv())
    except BaseException:  # refused (closed), or cancelled by the connect timeout: no waiting
        ws.transport.abort()
        raise
    if first.get("type") != "ready":
        await ws.close()
        raise ConnectionError(f"expected ready, got {first!r}")
    return ws, first


async def _dial(url: str, headers: dict[str, str] | None, policy: Reconnect,
                rng: random.Random, lost: SessionLost | None
                ) -> tuple[ClientConnection, dict[str, Any], int]:
    """Connect with backoff: (connection, ready, tries). The first connection (``lost`` None)
    tries at once; a reconnection waits its first delay first."""
    start = time.monotonic() if lost is None else lost.closed_at
    last: BaseException | None = None
    for attempt in range(policy.attempts):
        if lost is not None or attempt > 0:
            pause = policy.delay(attempt if lost is not None else attempt - 1, rng)
            if time.monotonic() + pause - start > policy.give_up_s:
                break
            await asyncio.sleep(pause)
        try:
            ws, ready = await asyncio.wait_for(_open(url, headers), policy.connect_timeout_s)
            return ws, ready, attempt + 1
        except websockets.ConnectionClosed as closed:  # refused after the handshake
            code, reason = _close_code(closed)
            if code not in policy.codes:
                raise ReconnectFailed(f"refused: close {code} {reason}", lost) from closed
            last = closed
        except websockets.InvalidStatus as refused:
            if refused.response.status_code not in RETRY_STATUSES:
                raise ReconnectFailed(f"refused: {refused}", lost) from refused
            last = refused
        except (OSError, TimeoutError, websockets.InvalidHandshake, ConnectionError) as e:
            last = e
    raise ReconnectFailed(f"no session after {attempt + 1} tries "
                          f"({time.monotonic() - start:.1f} s): {last!r}", lost) from last
