"""``realtime serve --workers N``: one engine process, N session workers, one supervisor.

The supervisor (the process ``realtime serve`` started) binds the port once, then spawns:

- the **engine process**, which owns the model, the batching loop and the device, and serves
  chunk requests over ZeroMQ (``realtime.engine.ipc.channel``);
- N **session workers**, each the whole Starlette app (WebSocket protocol, text front end,
  codecs, HTTP routes) on the shared listening socket, with a ``RemoteEngine`` for an engine.
  Workers never import torch.

It then watches them: a worker that dies is restarted (only its own sessions saw their socket
close); an engine that dies, or whose heartbeat stops, or whose batch runs longer than
``engine_hang_s``, is killed and restarted, while the workers turn ``/readyz`` 503, fail and
close (1011) their sessions and refuse new ones (1013) until it serves again. Restarts back off
(1 s, doubling to 30 s) when a process keeps dying young.

SIGTERM or SIGINT drains: every worker drains its sessions as a single process does (up to
``drain_timeout_s``), then the engine stops; a second signal kills everything at once.
Prometheus metrics live in a directory shared by all processes (multiprocess mode), so any
worker's ``/metrics`` shows the whole server.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from realtime.config import ServerConfig
from realtime.process import child_logging

log = logging.getLogger("realtime.server")

RESTART_MIN_S, RESTART_MAX_S = 1.0, 30.0
YOUNG_S = 10.0  # a process that dies younger than this restarts after a growing delay
ENGINE_MAIN = "realtime.engine.ipc.main:engine_main"  # started by name: see start_named
BEAT_STALE_S = 5.0  # no engine heartbeat this long: the engine is hung


def default_workers() -> int:
    """Session workers by default: the CPU cores, less one for the engine (at least 1)."""
    return max(1, (os.cpu_count() or 2) - 1)



def start_named(target: str, *args: Any) -> None:
    """Run ``module:function`` in this (spawned) child: the supervisor names the engine's entry
    instead of importing it, and so never imports torch."""
    module, _, name = target.partition(":")
    getattr(importlib.import_module(module), name)(*args)


def worker_main(config: ServerConfig, sock: socket.socket, address: str, index: int) -> None:
    """A session worker: the app on the shared socket, the engine over IPC."""
    child_logging(config, f"worker-{index}")
    from realtime.server.app import remote_engine, serve_on

    serve_on(config, sock, remote_engine(address, config.engine_lost_s), f"worker-{index}")


@dataclass
class _Child:
    role: str  # "engine" or "worker-N"
    start: Any  # () -> a started process
    process: BaseProcess | None = None
    started_at: float = 0.0
    delay: float = RESTART_MIN_S
    restart_at: float | None = None
    restarts: int = 0


@dataclass
class Supervisor:
    """Starts, watches, restarts and stops the processes (see the module doc)."""

    config: ServerConfig
    workers: int
    children: list[_Child] = field(default_factory=list)
    stopping: int = 0  # signals received

    def run(self) -> int:
        ctx = multiprocessing.get_context("spawn")
        run_dir = Path(tempfile.mkdtemp(prefix="realtime-"))
        metrics_dir = run_dir / "metrics"
        metrics_dir.mkdir()
        # Children inherit it: their metrics go to files any worker's /metrics aggregates.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        address = f"ipc://{run_dir}/engine"
        sock = _bind(self.config)
        beat = ctx.Array("d", 2)
        self.beat = beat
        engine = _Child("engine", lambda: ctx.Process(
            target=start_named,
            args=(ENGINE_MAIN, self.config, address, beat), name="realtime-engine"))
        self.children = [engine] + [
            _Child(f"worker-{i}", lambda i=i: ctx.Process(
                target=worker_main, args=(self.config, sock, address, i),
                name=f"realtime-worker-{i}"))
            for i in range(self.workers)]
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        log.info("serving on http://%s:%d: an engine process and %d session workers",
                 self.config.host, sock.getsockname()[1], self.workers)
        try:
            for child in self.children:
                self._start(child)
            self._watch(engine)
            return 0
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
            sock.close()
            shutil.rmtree(run_dir, ignore_errors=True)

    # -- watching ----------------------------------------------------------------------------
    def _watch(self, engine: _Child) -> None:
        while not self.stopping:
            live = [c.process.sentinel for c in self.children if c.process is not None]
            wait(live, timeout=0.25)
            now = time.monotonic()
            for child in self.children:
                proc = child.process
                if proc is not None and not proc.is_alive():
                    self._died(child, now)
                elif proc is None and child.restart_at is not None and now >= child.restart_at:
                    self._start(child)
            self._check_engine(engine, now)

    def _check_engine(self, engine: _Child, now: float) -> None:
        proc = engine.process
        if proc is None or not proc.is_alive() or now - engine.started_at < BEAT_STALE_S:
            return
        last, busy = self.beat[0], self.beat[1]
        hang = self.config.engine_hang_s
        if last and now - last > BEAT_STALE_S:
            reason = f"no heartbeat for {now - last:.1f} s"
        elif busy and now - busy > hang:
            reason = f"one batch has run for {now - busy:.0f} s (engine_hang_s {hang:.0f})"
        else:
            return
        log.error("engine process %d is hung (%s): killing it", proc.pid, reason)
        proc.kill()

    def _died(self, child: _Child, now: float) -> None:
        assert child.process is not None
        code = child.process.exitcode
        pid = child.process.pid
        child.process.join(0)
        child.process = None
        _mark_dead(pid)
        if self.stopping:
            return
        young = now - child.started_at < YOUNG_S
        child.delay = min(child.delay * 2, RESTART_MAX_S) if young else RESTART_MIN_S
        child.restart_at = now + (child.delay if young else 0.0)
        log.error("%s (pid %s) exited with %s: restarting it%s", child.role, pid, code,
                  f" in {child.delay:.0f} s" if young else "")
        if child.role == "engine":
            self.beat[0] = self.beat[1] = 0.0

    def _start(self, child: _Child) -> None:
        proc = child.start()
        proc.start()
        child.process = proc
        child.started_at = time.monotonic()
        child.restart_at = None
        child.restarts += 1
        log.info("%s started (pid %s)", child.role, proc.pid)

    # -- stopping ------------------------------------------------------------------------------
    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.stopping += 1
        if self.stopping > 1:
            log.warning("second signal: killing every process now")
            for child in self.children:
                if child.process is not None and child.process.is_alive():
                    child.process.kill()

    def _stop_all(self) -> None:
        """Workers drain first (SIGTERM), then the engine stops; what will not, is killed."""
        workers = [c for c in self.children if c.role != "engine" and c.process is not None]
        for child in workers:
            assert child.process is not None
            child.process.terminate()  # SIGTERM: drain
        deadline = time.monotonic() + self.config.drain_timeout_s + 10.0
        for child in workers:
            assert child.process is not None
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                log.warning("%s did not stop in time: killing it", child.role)
                child.process.kill()
                child.process.join(5)
        for child in self.children:
            if child.role == "engine" and child.process is not None:
                child.process.terminate()
                child.process.join(10)
                if child.process.is_alive():
                    child.process.kill()
                    child.process.join(5)
        log.info("all processes stopped")


def serve_workers(config: ServerConfig, workers: int) -> int:
    return Supervisor(config, workers).run()


def _bind(config: ServerConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _mark_dead(pid: int | None) -> None:
    """Its live gauges leave /metrics; its counters and histograms keep counting."""
    if pid is None or "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


