"""Waiting with a deadline without losing a cancellation.

Python 3.11's ``asyncio.wait_for`` returns the result, and drops the caller's cancellation,
when the awaited thing completes in the same loop iteration as the cancel (fixed in 3.12). A
barge-in (LiveKit's ``aclose`` cancels the stream's task) racing a message would then be
lost and the stream would play on, so the plugin waits with these instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def within(aw: Awaitable[T], timeout: float,
                 abandon: Callable[[T], object] | None = None) -> T:
    """``aw``'s result within ``timeout`` seconds, else ``asyncio.TimeoutError``. When the
    caller leaves without the result (timeout, cancelled) and ``aw`` still produces one,
    ``abandon`` gets it (to release what it holds)."""
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        _drop(task, abandon)
        raise
    if not done:
        _drop(task, abandon)
        raise asyncio.TimeoutError
    return task.result()


def _drop(task: asyncio.Future[T], abandon: Callable[[T], object] | None) -> None:
    def release(t: asyncio.Future[T]) -> None:
        if not t.cancelled() and t.exception() is None and abandon is not None:
            abandon(t.result())
    task.cancel()
    task.add_done_callback(release)


class _Token:
    """What a timer puts into a queue at a deadline (a stale one, of an earlier wait, is
    skipped)."""


async def get(queue: asyncio.Queue[T], timeout: float | None) -> T:
    """The next item of ``queue``, within ``timeout`` seconds (None: no limit), else
    ``asyncio.TimeoutError``. A timer puts a token behind the items instead of wrapping the
    wait in a task, so a cancellation of the caller always goes through."""
    token = _Token()
    put: Callable[[Any], None] = queue.put_nowait
    timer = None if timeout is None else asyncio.get_running_loop().call_later(timeout, put, token)
    try:
        while True:
            item = await queue.get()
            if item is token:
                raise asyncio.TimeoutError
            if not isinstance(item, _Token):
                return item
    finally:
        if timer is not None:
            timer.cancel()
