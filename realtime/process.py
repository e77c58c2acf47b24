"""What every process of ``realtime serve --workers`` does: its logging, its stop signal, and its
own gauges in the shared Prometheus directory. No torch, no server: the engine process and the
session workers both use it."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from prometheus_client import CollectorRegistry, Gauge

from realtime.config import ServerConfig


def child_logging(config: ServerConfig, role: str) -> None:
    """A child's first steps: its own process group (a terminal's Ctrl-C reaches only the
    supervisor, which then stops the children in order), and logs that name it."""
    os.setpgrp()
    logging.basicConfig(level=config.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s %(name)s [{role}] %(message)s")


def stop_event() -> threading.Event:
    """Set by SIGTERM / SIGINT (the engine process stops when the supervisor says so)."""
    event = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: event.set())
    return event


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ProcessGauges:
    """A process's own figures: its CPU time, and for the engine process its queue, batches
    and device memory. ``update`` samples them (the server's processes call it every second)."""

    def __init__(self, role: str, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.role = role
        self.cpu = Gauge("realtime_process_cpu_seconds", "CPU time used by each process",
                         ["role"], registry=r, multiprocess_mode="liveall")
        self.ready = Gauge("realtime_process_ready", "1 while the process serves (a worker: its "
                           "engine answers and its front end is loaded)", ["role"], registry=r,
                           multiprocess_mode="liveall")
        self.engine_queue = Gauge("realtime_engine_process_queue_depth", "chunks queued in "
                                  "the engine process", registry=r, multiprocess_mode="livemax")
        self.engine_running = Gauge("realtime_engine_running", "chunks in the batch running "
                                    "now", registry=r, multiprocess_mode="livemax")
        self.engine_batches = Gauge("realtime_engine_batches", "batches run since the engine "
                                    "started", registry=r, multiprocess_mode="livemax")
        self.gpu_memory = Gauge("realtime_gpu_memory_bytes", "device memory of the engine "
                                "(allocated by tensors, reserved by the allocator)", ["kind"],
                                registry=r, multiprocess_mode="livemax")

    def update(self, ready: bool | None = None) -> None:
        self.cpu.labels(self.role).set(time.process_time())
        if ready is not None:
            self.ready.labels(self.role).set(1 if ready else 0)

    def engine(self, queued: int, running: int, batches: int,
               memory: tuple[int, int] | None = None) -> None:
        """The engine process's figures; ``memory``: its GPU's (allocated, reserved) bytes."""
        self.engine_queue.set(queued)
        self.engine_running.set(running)
        self.engine_batches.set(batches)
        if memory is not None:
            self.gpu_memory.labels("allocated").set(memory[0])
            self.gpu_memory.labels("reserved").set(memory[1])


def process_gauges(role: str) -> ProcessGauges:
    return ProcessGauges(role)
