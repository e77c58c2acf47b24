"""WebSocket sessions shared by many streams: protocol v1 multiplexes contexts, so one
``RealtimeClient`` serves every stream that has room on it (``ready.limits.max_contexts``).

Each ``Connection`` has one reader task that routes every server message by ``context_id`` to
that context's queue, and a keepalive task that sends a protocol ``ping`` when nothing was sent
for a third of the server's idle timeout. A lost connection puts a ``ConnectionLost`` into every
open context's queue and leaves the pool; the next stream opens a fresh one, after a backoff
taken from ``realtime.client.failover.Reconnect``. Nothing here imports LiveKit: the TTS maps these
outcomes to LiveKit's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import websockets

from realtime.client import RealtimeClient
from realtime.client.failover import ABNORMAL_CLOSE, RECONNECT_CODES, Reconnect
from realtime.integrations.common import RateBucket

log = logging.getLogger("realtime.integrations.livekit")

DEFAULT_IDLE_TIMEOUT_S = 300.0  # the server's default, when ready.limits does not say
DEFAULT_MAX_CONTEXTS = 16

Connect = Callable[[str, dict[str, str] | None], Awaitable[RealtimeClient]]
Routed = dict[str, Any] | BaseException | None  # a message, a failure, or a wake-up (None)


class ConnectionLost(ConnectionError):
    """The session ended under open contexts (``code``: the close code; 1006 without one).
    ``retryable``: a drain, restart, crash or full server, where a new session may do."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"realtime session lost: close {code} {reason}".strip())
        self.code = code
        self.reason = reason
        self.retryable = code in RECONNECT_CODES


def _lost(closed: websockets.ConnectionClosed) -> ConnectionLost:
    if closed.rcvd is None:
        return ConnectionLost(ABNORMAL_CLOSE, "no close frame")
    return ConnectionLost(closed.rcvd.code, closed.rcvd.reason)


class Connection:
    """One session and the contexts open on it."""

    def __init__(self, client: RealtimeClient, on_lost: Callable[[Connection], None]) -> None:
        self.client = client
        limits = client.ready.get("limits") or {}
        self.max_contexts = int(limits.get("max_contexts") or DEFAULT_MAX_CONTEXTS)
        self.max_text_chars = int(limits.get("max_text_chars") or 10_000)
        idle = float(limits.get("idle_timeout_s") or DEFAULT_IDLE_TIMEOUT_S)
        self.ping_interval_s = idle / 3.0
        self._bucket = RateBucket(limits)
        self.lost: ConnectionLost | None = None
        self._on_lost = on_lost
        self._routes: dict[str, asyncio.Queue[Routed]] = {}
        self._closing: set[str] = set()  # cancelled by us, until the server's `cancelled`
        self._last_sent = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader = asyncio.create_task(self._read(), name="realtime-livekit-reader")
        self._keepalive = asyncio.create_task(self._ping(), name="realtime-livekit-keepalive")

    @property
    def contexts(self) -> int:
        """Contexts counted against ``max_contexts``: open, or cancelled and not yet closed."""
        return len(self._routes) + len(self._closing)

    def has_room(self) -> bool:
        return self.lost is None and self.contexts < self.max_contexts

    def open(self, context_id: str) -> asyncio.Queue[Routed]:
        """The queue the reader routes ``context_id``'s messages to."""
        queue: asyncio.Queue[Routed] = asyncio.Queue()
        self._routes[context_id] = queue
        return queue

    def close(self, context_id: str, *, cancel: bool) -> None:
        """Stop routing a context; ``cancel``: it is still open on the server, so send
        ``cancel`` (in a task of the connection's own, so a cancelled stream still sends it)."""
        self._routes.pop(context_id, None)
        if cancel and self.lost is None:
            self._closing.add(context_id)
            self.spawn(self.send({"type": "cancel", "context_id": context_id}))

    async def send(self, message: dict[str, Any]) -> None:
        if self.lost is not None:
            raise self.lost
        self._bucket.take()
        self._last_sent = time.monotonic()
        try:
            await self.client.send(message)
        except websockets.ConnectionClosed as closed:
            raise self._lose(_lost(closed)) from closed

    async def text_turn(self) -> None:
        """Wait until a ``text`` message fits the server's rate (at once, unless this session
        sends faster than ``rate_messages_per_s``)."""
        pause = self._bucket.wait_s()
        if pause > 0:
            await asyncio.sleep(pause)

    def spawn(self, sending: Coroutine[Any, Any, None]) -> None:
        """Send from a task of the connection (for callers that cannot wait: ``update_options``,
        a stream being cancelled); a lost connection has nothing more to send."""
        async def go() -> None:
            with contextlib.suppress(ConnectionLost):
                await sending
        task = asyncio.create_task(go())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.client.recv()
                cid = msg.get("context_id")
                if not isinstance(cid, str):
                    if msg.get("type") == "error":
                        log.warning("realtime server error: %s", msg)
                    continue
                if cid in self._closing:
                    if msg.get("type") in ("cancelled", "done"):
                        self._closing.discard(cid)
                    continue
                if (queue := self._routes.get(cid)) is not None:
                    queue.put_nowait(msg)
        except websockets.ConnectionClosed as closed:
            self._lose(_lost(closed))
        except (ValueError, TypeError) as e:  # not a protocol message: nothing more to trust
            self._lose(ConnectionLost(1002, f"bad message from the server: {e}"))
            await self.client.close()

    async def _ping(self) -> None:
        while True:
            due = self._last_sent + self.ping_interval_s - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
                continue
            with contextlib.suppress(ConnectionLost):
                await self.send({"type": "ping", "id": None})

    def _lose(self, lost: ConnectionLost) -> ConnectionLost:
        if self.lost is None:
            self.lost = lost
            log.info("%s", lost)
            for queue in self._routes.values():
                queue.put_nowait(lost)
            self._routes.clear()
            self._closing.clear()
            self._keepalive.cancel()
            self._on_lost(self)
        return self.lost

    async def aclose(self) -> None:
        self._lose(ConnectionLost(1000, "closed by the client"))
        tasks = [self._reader, self._keepalive, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.close()


async def _connect(url: str, headers: dict[str, str] | None) -> RealtimeClient:
    return await RealtimeClient.connect(url, headers=headers, framing="msgpack")


class ConnectionPool:
    """Connections to one URL, opened lazily (under a lock, so concurrent streams share one
    attempt) and added only when every open one is at ``max_contexts``.

    After a failed attempt or a lost connection the next attempt first waits the ``reconnect``
    policy's delay for the failures in a row (no retries here: LiveKit's stream retries are the
    retries, and each one goes through this backoff)."""

    def __init__(self, url: str, headers: dict[str, str] | None, *,
                 reconnect: Reconnect | None = None, connect: Connect = _connect,
                 rng: random.Random | None = None) -> None:
        self.url = url
        self.headers = headers
        self._policy = reconnect or Reconnect()
        self._connect = connect
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self._conns: list[Connection] = []
        self._failures = 0
        self._failed_at = 0.0
        self._closed = False

    @property
    def connections(self) -> tuple[Connection, ...]:
        return tuple(self._conns)

    async def acquire(self, context_id: str) -> tuple[Connection, asyncio.Queue[Routed], bool]:
        """A connection with room for one more context, that context's queue, and whether the
        connection was already open (the caller bounds the wait)."""
        async with self._lock:
            for conn in self._conns:
                if conn.has_room():
                    return conn, conn.open(context_id), True
            conn = await self._open()
            return conn, conn.open(context_id), False

    async def prewarm(self) -> None:
        """Open a connection unless one is open."""
        async with self._lock:
            if not any(c.lost is None for c in self._conns):
                await self._open()

    async def _open(self) -> Connection:
        if self._closed:
            raise ConnectionLost(1000, "the TTS is closed")
        if self._failures:
            pause = self._policy.delay(self._failures - 1, self._rng)
            await asyncio.sleep(max(0.0, self._failed_at + pause - time.monotonic()))
        try:
            client = await self._connect(self.url, self.headers)
        except Exception:  # not a cancellation: a stream that gave up is no failure of the server
            self._failed()
            raise
        self._failures = 0
        conn = Connection(client, self._drop)
        self._conns.append(conn)
        return conn

    def _failed(self) -> None:
        self._failures = min(self._failures + 1, self._policy.attempts)
        self._failed_at = time.monotonic()

    def _drop(self, conn: Connection) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
            if conn.lost is not None and conn.lost.retryable:
                self._failed()

    async def aclose(self) -> None:
        self._closed = True
        conns, self._conns = self._conns, []
        await asyncio.gather(*(c.aclose() for c in conns), return_exceptions=True)
