"""The engine across a process boundary, over ZeroMQ: requests and aborts in, audio out.

The engine process binds a ROUTER socket (``EngineServer``); each session worker connects a
DEALER (``RemoteEngine``, an ``EngineClient``). Every message is multipart, its first frame
the kind and its second a msgpack header:

- worker -> engine: ``hello`` (every second: I am here), ``submit`` (a chunk request),
  ``cancel`` (an owner's chunks: dropped from the queue before the next batch);
- engine -> worker: ``beat`` (every ``BEAT_S``: status, the model's info, queue figures),
  ``result`` (header, then the audio as raw float32 and the durations as raw int64: buffers,
  not pickles, received without a copy; a chunk decoded in windows sends one ``result`` per
  piece, ``more`` set on all but the last), ``error`` (a refused or failed chunk, by error
  class).

A worker that hears no beat for ``lost_after_s`` takes the engine as lost: every chunk it
waits for fails with ``EngineLost``, as does every ``submit`` until the engine is back (before
it ever served, ``submit`` raises ``EngineStopped``), and its watcher hears it; beats with
status ``ready`` bring it back (a restarted engine process binds the same address; ZeroMQ
reconnects).
Deadlines cross as they are: ``time.monotonic`` is one clock for every process of a machine.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Protocol

import msgpack
import numpy as np
import zmq

from realtime.engine.info import EngineStats, ModelInfo
from realtime.engine.loop import Engine
from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.errors import (
    ChunkCancelled,
    EngineBusy,
    EngineError,
    EngineLost,
    EngineStopped,
    InputError,
    RealtimeError,
    VoiceError,
)

log = logging.getLogger("realtime.engine")

BEAT_S = 0.25  # the engine's heartbeat
HELLO_S = 1.0  # a worker's keepalive
PEER_TTL_S = 5.0  # a worker not heard from this long gets no more beats
_ERRORS: dict[str, type[RealtimeError]] = {
    cls.__name__: cls for cls in (ChunkCancelled, EngineBusy, EngineError, EngineStopped,
                                  InputError, VoiceError, RealtimeError)}
_REQUEST_FIELDS = ("session", "context", "phonemes", "voice", "deadline", "speed", "seed",
                   "chunk_id")


Wire = dict[str, object]  # one message's map (msgpack)


def _pack(obj: Wire) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def _str(m: Wire, key: str) -> str:
    value = m[key]
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected a string, got {value!r}")
    return value


def _num(m: Wire, key: str, default: float | None = None) -> float:
    value = m.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key}: expected a number, got {value!r}")
    return value


def _int(m: Wire, key: str, default: int | None = None) -> int:
    value = m.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key}: expected an integer, got {value!r}")
    return value


def _request(m: Wire) -> ChunkRequest:
    seed = m.get("seed")
    if not (seed is None or (isinstance(seed, int) and not isinstance(seed, bool))):
        raise TypeError(f"seed: expected an integer or nothing, got {seed!r}")
    return ChunkRequest(_str(m, "session"), _str(m, "context"), _str(m, "phonemes"),
                        _str(m, "voice"), _num(m, "deadline"), _num(m, "speed"), seed,
                        _int(m, "chunk_id"))


def _waiting(sock: zmq.Socket[bytes]) -> Iterator[list[bytes]]:
    """The messages ``sock`` holds now (multipart), without waiting for more."""
    while True:
        try:
            yield sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return


def _waiting_frames(sock: zmq.Socket[bytes]) -> Iterator[list[zmq.Frame]]:
    """The same, as frames (their buffers not copied)."""
    while True:
        try:
            yield sock.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return


def _unpack(data: bytes | zmq.Frame) -> Wire:
    message = msgpack.unpackb(data.bytes if isinstance(data, zmq.Frame) else data, raw=False)
    if not isinstance(message, dict):
        raise TypeError(f"expected a map, got {type(message).__name__}")
    return message


class Beat(Protocol):
    """The supervisor's shared array (``multiprocessing.Array("d", 2)``)."""

    def __setitem__(self, index: int, value: float) -> None: ...

    def __getitem__(self, index: int) -> float: ...


class EngineServer:
    """The engine process's end: a ROUTER serving one engine to every worker.

    Bind first (``EngineServer(address)``: workers hear ``loading`` beats at once), then
    ``serve(engine)`` once it is warm. ``beat`` (optional) is a shared array the supervisor
    reads: [last beat time, start of the running batch or 0], both ``time.monotonic``.
    """

    def __init__(self, address: str, beat: Beat | None = None) -> None:
        self.address = address
        self._beat_cell = beat
        self._ctx = zmq.Context()
        self._engine: Engine | None = None  # once serving
        self._status, self._reason = "loading", "loading the model"
        self._peers: dict[bytes, float] = {}
        self._results: queue.SimpleQueue[tuple[bytes, ChunkRequest, Future[ChunkResult]]] = (
            queue.SimpleQueue())
        self._wake_address = f"inproc://results-{id(self)}"
        self._local = threading.local()
        self._wakers = _Wakers()
        self._stop = threading.Event()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.bind(address)
        self._wake = self._ctx.socket(zmq.PULL)
        self._wake.bind(self._wake_address)
        self._thread = threading.Thread(target=self._loop, name="realtime-engine-ipc", daemon=True)
        self._thread.start()

    def set_status(self, reason: str) -> None:
        """What the engine is doing before it serves (shown by the workers' /readyz)."""
        self._reason = reason

    def serve(self, engine: Engine) -> None:
        self._engine = engine
        self._status, self._reason = "ready", "serving"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._wakers.close()
        self._ctx.destroy(linger=0)

    # -- the I/O thread (the only one that touches the ROUTER) ---------------------------------
    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake, zmq.POLLIN)
        next_beat = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self._send_beats(now)
                    next_beat = now + BEAT_S
                events = dict(poller.poll(max(1, int((next_beat - now) * 1000))))
                if self._router in events:
                    for frames in _waiting(self._router):
                        self._handle(frames)
                if self._wake in events:
                    for _ in _waiting(self._wake):
                        pass  # a wake-up carries nothing: the results queue has it
                self._send_results()
        finally:
            self._router.close(0)
            self._wake.close(0)

    def _send_beats(self, now: float) -> None:
        engine = self._engine
        busy = engine.busy_since() if engine is not None else None
        if self._beat_cell is not None:
            self._beat_cell[0], self._beat_cell[1] = now, busy or 0.0
        header: Wire = {"status": self._status, "reason": self._reason}
        if engine is not None:
            stats = engine.stats()
            header |= {"info": engine.info.as_wire(), "queued": stats.queued,
                       "running": stats.running, "batches": stats.batches,
                       "chunks": stats.chunks, "cancelled": stats.cancelled,
                       "busy_s": 0.0 if busy is None else now - busy}
        message = _pack(header)
        for peer, seen in list(self._peers.items()):
            if now - seen > PEER_TTL_S:
                del self._peers[peer]
                continue
            self._router.send_multipart([peer, b"beat", message])

    def _handle(self, frames: list[bytes]) -> None:
        peer, kind = frames[0], frames[1]
        self._peers[peer] = time.monotonic()
        if kind == b"hello":
            return
        body = _unpack(frames[2])
        engine = self._engine
        if kind == b"cancel":
            if engine is not None:
                context = body.get("context")
                engine.cancel(_str(body, "session"), context if isinstance(context, str) else None)
            return
        if kind != b"submit":
            log.warning("unknown message %r from a worker", kind)
            return
        request = _request(body)
        if engine is None:
            self._send_error(peer, request, EngineStopped("the engine is not ready yet"))
            return
        try:
            future = engine.submit(request)
        except RealtimeError as exc:
            self._send_error(peer, request, exc)
            return
        future.add_done_callback(lambda f: self._done(peer, request, f))

    def _done(self, peer: bytes, request: ChunkRequest, future: Future[ChunkResult]) -> None:
        """Any thread: hand the outcome to the I/O thread, and wake it (unless it is the I/O
        thread itself: it sends what is queued before it polls again)."""
        self._results.put((peer, request, future))
        if threading.current_thread() is not self._thread:
            _wake(self._wakers, self._local, self._ctx, self._wake_address)

    def _send_results(self) -> None:
        while True:
            try:
                peer, request, future = self._results.get_nowait()
            except queue.Empty:
                return
            exc = future.exception()
            if exc is not None:
                if not isinstance(exc, ChunkCancelled):  # the worker dropped it already
                    self._send_error(peer, request, exc)
                continue
            res = future.result()
            header = {"session": request.session, "chunk_id": request.chunk_id,
                      "queued_s": res.queued_s, "inference_s": res.inference_s,
                      "batch_size": res.batch_size, "waited_batches": res.waited_batches,
                      "more": res.next is not None, "offset": res.offset}
            if res.next is not None:  # windowed decoding: the chunk's next piece follows
                res.next.add_done_callback(functools.partial(self._done, peer, request))
            audio = np.ascontiguousarray(res.audio, dtype=np.float32).data
            durations = np.ascontiguousarray(res.durations, dtype=np.int64).data
            # The arrays' own buffers go out: no pickling, no copy here.
            self._router.send_multipart([peer, b"result", _pack(header), audio, durations],
                                        copy=False)

    def _send_error(self, peer: bytes, request: ChunkRequest, exc: BaseException) -> None:
        reason = exc.reason if isinstance(exc, RealtimeError) else f"synthesis failed: {exc}"
        kind = type(exc).__name__ if type(exc).__name__ in _ERRORS else "RealtimeError"
        self._router.send_multipart([peer, b"error", _pack(
            {"session": request.session, "chunk_id": request.chunk_id, "error": kind,
             "reason": reason})])


class RemoteEngine:
    """An ``EngineClient`` for an engine in another process (see the module doc).

    Thread-safe: ``submit`` and ``cancel`` may be called from any thread; one I/O thread owns
    the socket. ``connect`` blocks until the engine serves (it may still be loading).
    """

    def __init__(self, address: str, lost_after_s: float = 3.0) -> None:
        self.address = address
        self.lost_after_s = lost_after_s
        self.info = ModelInfo("(connecting)", (), "", frozenset())
        self._ctx = zmq.Context()
        self._pending: dict[tuple[str, int], tuple[ChunkRequest, Future[ChunkResult]]] = {}
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue[list[bytes]] = queue.SimpleQueue()
        self._wake_address = f"inproc://outbox-{id(self)}"
        self._local = threading.local()
        self._wakers = _Wakers()
        self._up = False
        self._served = False  # it served once: not serving now means it was lost
        self._reason = "connecting to the engine process"
        self._last: Wire = {}
        self._ready = threading.Event()
        self._watchers: list[Callable[[bool, str], None]] = []
        self._stop = threading.Event()
        self._wake_in = self._ctx.socket(zmq.PULL)
        self._wake_in.bind(self._wake_address)
        self._thread = threading.Thread(target=self._loop, name="realtime-engine-client",
                                        daemon=True)
        self._thread.start()

    # -- EngineClient ----------------------------------------------------------------------------
    def clock(self) -> float:
        return time.monotonic()

    @property
    def running(self) -> bool:
        return self._up

    def connect(self, status: Callable[[str], None] | None = None,
                timeout: float | None = None) -> RemoteEngine:
        """Wait until the engine serves, reporting what it is doing to ``status``."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if status is not None:
                status(f"engine: {self._reason}")
            if end is not None and time.monotonic() > end:
                raise EngineStopped(f"no engine at {self.address} after {timeout:.0f} s: "
                                    f"{self._reason}")
        return self

    def submit(self, request: ChunkRequest) -> Future[ChunkResult]:
        if not self._up:
            refused = EngineLost if self._served else EngineStopped
            raise refused(f"the engine is not serving: {self._reason}")
        self.info.check(request)  # refused here, with the model's own errors
        future: Future[ChunkResult] = Future()
        with self._lock:
            self._pending[(request.session, request.chunk_id)] = (request, future)
        self._send([b"submit", _pack({k: getattr(request, k) for k in _REQUEST_FIELDS})])
        return future

    def cancel(self, session: str, context: str | None = None) -> int:
        with self._lock:
            hit = [key for key, (r, _) in self._pending.items()
                   if r.session == session and (context is None or r.context == context)]
            dropped = [self._pending.pop(key) for key in hit]
        for request, future in dropped:
            if not future.done():
                future.set_exception(ChunkCancelled(
                    f"chunk {request.chunk_id} of context {request.context!r} was cancelled"))
        self._send([b"cancel", _pack({"session": session, "context": context})])
        return len(dropped)

    def stats(self) -> EngineStats:
        b = self._last
        return EngineStats(_int(b, "queued", 0), _int(b, "running", 0), _int(b, "batches", 0),
                           _int(b, "chunks", 0), _int(b, "cancelled", 0))

    def watch(self, callback: Callable[[bool, str], None]) -> None:
        self._watchers.append(callback)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(min(timeout, 5.0))
        self._wakers.close()
        self._ctx.destroy(linger=0)
        self._fail_all(EngineStopped("the engine client stopped"))

    @property
    def reason(self) -> str:
        return self._reason

    # -- internals -------------------------------------------------------------------------------
    def _send(self, frames: list[bytes]) -> None:
        self._outbox.put(frames)
        if threading.current_thread() is not self._thread:
            _wake(self._wakers, self._local, self._ctx, self._wake_address)

    def _loop(self) -> None:
        dealer = self._ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(self.address)
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        poller.register(self._wake_in, zmq.POLLIN)
        last_beat = time.monotonic()
        next_hello = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_hello:
                    dealer.send(b"hello")
                    next_hello = now + HELLO_S
                events = dict(poller.poll(100))
                if self._wake_in in events:
                    for _ in _waiting(self._wake_in):
                        pass  # a wake-up carries nothing: the outbox has it
                while True:
                    try:
                        dealer.send_multipart(self._outbox.get_nowait())
                    except queue.Empty:
                        break
                if dealer in events:
                    for frames in _waiting_frames(dealer):
                        if frames[0].bytes == b"beat":
                            last_beat = time.monotonic()
                        self._handle(frames)
                if self._up and time.monotonic() - last_beat > self.lost_after_s:
                    self._lost(f"the engine process stopped answering "
                               f"({self.lost_after_s:.0f} s without a beat)")
        finally:
            dealer.close(0)
            self._wake_in.close(0)

    def _handle(self, frames: list[zmq.Frame]) -> None:
        kind = frames[0].bytes
        header = _unpack(frames[1])
        if kind == b"beat":
            self._last = header
            self._reason = str(header.get("reason", ""))
            if header.get("status") == "ready" and not self._up:
                info = header["info"]
                if not isinstance(info, dict):
                    raise TypeError(f"info: expected a map, got {info!r}")
                self.info = ModelInfo.from_wire(info)
                self._up = self._served = True
                self._ready.set()
                log.info("engine process serving: model %s on %s", self.info.name,
                         self.info.device)
                self._tell(True, "serving")
            elif header.get("status") != "ready" and self._up:
                self._lost(f"the engine process restarted: {self._reason}")
            return
        key = (_str(header, "session"), _int(header, "chunk_id"))
        after: Future[ChunkResult] | None = None
        with self._lock:
            entry = self._pending.pop(key, None)
            if entry is not None and kind == b"result" and header.get("more"):
                after = Future()  # the chunk's next piece (windowed decoding) comes to it
                self._pending[key] = (entry[0], after)
        if entry is None:
            return  # cancelled meanwhile
        request, future = entry
        if future.done():
            return
        if kind == b"error":
            cls = _ERRORS.get(_str(header, "error"), RealtimeError)
            future.set_exception(cls(_str(header, "reason")))
            return
        audio = np.frombuffer(frames[2].buffer, dtype=np.float32)
        durations = np.frombuffer(frames[3].buffer, dtype=np.int64)
        future.set_result(ChunkResult(request, audio, durations, _num(header, "queued_s"),
                                      _num(header, "inference_s"), _int(header, "batch_size"),
                                      _int(header, "waited_batches"), after,
                                      _int(header, "offset", 0)))

    def _lost(self, reason: str) -> None:
        self._up = False
        self._reason = reason
        log.error("%s", reason)
        self._fail_all(EngineLost(reason))
        self._tell(False, reason)

    def _fail_all(self, exc: RealtimeError) -> None:
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for _, future in pending:
            if not future.done():
                future.set_exception(exc)

    def _tell(self, up: bool, reason: str) -> None:
        for callback in self._watchers:
            try:
                callback(up, reason)
            except Exception:  # a watcher's bug must not stop the I/O thread
                log.exception("engine watcher failed")



class _Wakers:
    """The PUSH sockets other threads wake an I/O thread with: one per thread, kept here (not
    only in the thread's locals, which die with the thread) so that ``close`` closes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[zmq.Socket[bytes]] = []

    def add(self, sock: zmq.Socket[bytes]) -> None:
        with self._lock:
            self._sockets.append(sock)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close(0)
            self._sockets.clear()


def _wake(wakers: _Wakers, local: threading.local, ctx: zmq.Context[zmq.Socket[bytes]],
          address: str) -> None:
    sock = getattr(local, "wake", None)
    if sock is None:
        sock = local.wake = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(address)
        wakers.add(sock)
    sock.send(b"")
