"""The engine loop: one thread owns the model; the event loop submits, awaits and cancels.

Between batches the loop drops cancelled chunks and asks the policy for the next batch; a
chunk cancelled while its batch runs has its result dropped. With windowed decoding a batch
runs one window of each of its chunks, and a chunk waits in the queue between its windows, due
when its audio sent runs out (so a batch may hold one chunk's first window and another's
third).
Every wait is bounded: the queue has a limit (``EngineBusy`` beyond it), and stopping fails
whatever is still queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from realtime.engine.batch import Runner
from realtime.engine.info import EngineStats, ModelInfo
from realtime.engine.pace import GeneratorPace, fit_windows
from realtime.engine.policy import Policy
from realtime.engine.request import ChunkRequest, ChunkResult, Pending, joined
from realtime.errors import ChunkCancelled, EngineBusy, EngineStopped, RealtimeError

log = logging.getLogger("realtime.engine")

_NO_DURATIONS = np.zeros(0, dtype=np.int64)  # a later piece's: the first one had them


class Engine:
    """Serves chunk requests from any number of sessions through one runner.

    ``clock``: seconds, monotonic; deadlines in requests are on this clock.
    """

    def __init__(self, runner: Runner, policy: Policy, queue_limit: int = 1024,
                 clock: Callable[[], float] = time.monotonic,
                 info: ModelInfo | None = None) -> None:
        self.runner = runner
        # The model as sessions see it (an EngineClient has one): the runner's, or given.
        found = info or getattr(runner, "info", None)
        self.info: ModelInfo = found if found is not None else ModelInfo(
            "unknown", (), "", frozenset())
        self.policy = policy
        self.queue_limit = queue_limit
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: list[Pending] = []
        self._running: list[Pending] = []
        self._batch_started: float | None = None  # when the running batch began (clock)
        self._seq = 0
        self._batches = 0
        self._chunks = 0
        self._cancelled = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pace = GeneratorPace()  # the generator's speed over windows (an adaptive window plan)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, warm_up: bool = True) -> None:
        if self._thread is not None:
            raise RuntimeError("engine already started")
        if warm_up:
            self.runner.warm_up()
        self._thread = threading.Thread(target=self._loop, name="realtime-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Fail what is queued (EngineStopped), let the running batch finish, join the thread."""
        with self._cond:
            self._stopping = True
            for p in self._queue:
                self._fail(p, EngineStopped("the engine is stopping"))
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def stats(self) -> EngineStats:
        with self._cond:
            return EngineStats(len(self._queue), len(self._running), self._batches, self._chunks,
                               self._cancelled)

    # -- the async face ----------------------------------------------------------------------
    async def synthesize(self, request: ChunkRequest) -> ChunkResult:
        """Queue a chunk and wait for its audio. Raises ChunkCancelled if it is cancelled."""
        future = self.submit(request)
        # If the awaiting task is cancelled, wrap_future cancels ``future`` too, and the loop
        # skips it (or drops its result). A chunk decoded in windows comes back joined.
        return await joined(await asyncio.wrap_future(future))

    def submit(self, request: ChunkRequest) -> Future[ChunkResult]:
        """Queue a chunk (thread-safe); validation errors are raised here, at once."""
        self.runner.prepare(request)
        with self._cond:
            if self._stopping or self._thread is None:
                raise EngineStopped("the engine is not running")
            if len(self._queue) >= self.queue_limit:
                raise EngineBusy(f"the engine queue is full ({self.queue_limit} chunks)")
            # Batches finished before it came (a running one counts as waited for).
            started = self._batches - (1 if self._running else 0)
            pending = Pending(request, self.clock(), self._seq, started)
            self._seq += 1
            self._queue.append(pending)
            self._cond.notify()
        return pending.future

    def cancel(self, session: str, context: str | None = None) -> int:
        """Drop a session's (or one context's) chunks: queued ones never run, running ones'
        results are dropped. Their futures fail now with ChunkCancelled. Returns how many."""
        def mine(p: Pending) -> bool:
            r = p.request
            return r.session == session and (context is None or r.context == context)

        with self._cond:
            hit = [p for p in self._queue if mine(p)] + [p for p in self._running if mine(p)]
            self._queue = [p for p in self._queue if not mine(p)]
            for p in hit:
                self._fail(p, ChunkCancelled(f"chunk {p.request.chunk_id} of context "
                                             f"{p.request.context!r} was cancelled"))
            self._cancelled += len(hit)
        return len(hit)

    # -- the loop (engine thread) ------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queue:
                    self._cond.wait()
                if self._stopping:
                    return
                live = [p for p in self._queue if not p.current.done()]
                self._cancelled += len(self._queue) - len(live)
                self._queue = live
                if not live:
                    continue
                batch = self.policy.select(live, self.clock())
                chosen = set(map(id, batch))
                self._queue = [p for p in live if id(p) not in chosen]
                self._running = batch
                self._batches += 1
                number = self._batches
            self._run(batch, number)

    def busy_since(self) -> float | None:
        """When the batch running now began (``clock``), or None: a watchdog's view."""
        return self._batch_started

    def watch(self, callback: Callable[[bool, str], None]) -> None:
        """An engine in this process is never lost and found again: nothing to report."""

    def _run(self, batch: list[Pending], number: int) -> None:
        """One window of every chunk in the batch, as one padded batch (a chunk decoded whole
        is one window): new chunks are started (the work before the generator, together), then
        each chunk's next window decoded beside the others' and delivered as a piece as soon as
        the runner yields it. Until its last, a chunk goes back to the queue due when the audio
        sent so far runs out, so that another context's first window (due now) can run before
        its next one, or beside it."""
        start = self.clock()
        self._batch_started = start
        try:
            self._step(batch, number, start)
        except Exception as exc:  # the batch's owners get the error; the loop carries on
            log.exception("batch %d of %d chunks failed", number, len(batch))
            err = exc if isinstance(exc, RealtimeError) else RealtimeError(
                f"synthesis failed: {exc}")
            with self._cond:
                for p in batch:
                    self._fail(p, err)
        finally:
            with self._cond:
                self._running = []
                self._batch_started = None

    def _step(self, batch: list[Pending], number: int, start: float) -> None:
        runner = self.runner
        new = [p for p in batch if p.cursor is None]
        if new:
            cursors = runner.start([p.request for p in new])
            for p, cursor in zip(new, cursors, strict=True):
                p.cursor, p.started = cursor, start
        started = [(p, p.cursor) for p in batch if p.cursor is not None]
        if len(started) != len(batch):
            raise RuntimeError(f"the runner started {len(new)} of {len(batch)} chunks")
        adaptive = runner.adaptive
        if adaptive:  # later windows cut to what the measured pace makes in time
            now = self.clock()
            later = [(p, c) for p, c in started if c.index > 0]
            if later:
                fit_windows([c for _, c in later], [p.played_until() - now for p, _ in later],
                            self._pace, len(batch))
            width = max(hi - lo for lo, hi in (c.bounds() for _, c in started))
        began = self.clock()
        made: float | None = None  # when the first piece was ready: the windows' time
        delivered = 0
        for index, piece in runner.step([c for _, c in started]):
            if made is None:
                made = self.clock()
            p = batch[index]
            durations = piece.durations if piece.durations is not None else _NO_DURATIONS
            self._deliver(p, piece.audio, durations, piece.last, number, len(batch),
                          p.started or start)
            delivered += 1
            if piece.last:
                continue
            with self._cond:
                if p.current.done() or self._stopping:  # cancelled meanwhile: no more windows
                    if self._stopping:
                        self._fail(p, EngineStopped("the engine is stopping"))
                    continue
                p.resume_by = p.played_until()
                self._queue.append(p)
        if adaptive and made is not None:
            self._pace.observe(made - began, len(batch) * width, first=len(later) < len(batch))
        if delivered != len(batch):
            raise RuntimeError(f"the runner gave {delivered} pieces for {len(batch)} chunks")

    def _deliver(self, p: Pending, audio: np.ndarray, durations: np.ndarray, last: bool,
                 number: int, size: int, start: float) -> None:
        now = self.clock()
        with self._cond:
            target = p.current
            if target.done():  # cancelled while it ran: the result is dropped
                return
            after: Future[ChunkResult] | None = None if last else Future()
            target.set_result(ChunkResult(
                p.request, audio, durations, queued_s=(p.started or start) - p.submitted,
                inference_s=now - start, batch_size=size,
                waited_batches=number - 1 - p.started_before, next=after, offset=p.sent))
            if p.first_out is None:
                p.first_out = now
            p.sent += len(audio)
            p.tail = after
            self._chunks += last

    @staticmethod
    def _fail(p: Pending, exc: BaseException) -> None:
        if not p.current.done():
            p.current.set_exception(exc)
