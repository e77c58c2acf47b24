"""Prometheus metrics, in a registry of the app's own (no process-wide default registry).

With several processes (``realtime serve --workers``), prometheus_client's multiprocess mode:
every process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by the
supervisor before it starts them), and any worker's ``/metrics`` adds them up: counters and
histograms summed, gauges as each one says (sessions summed over the live workers, the engine's
queue as the engine process sees it, each process's own CPU time by pid).
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.5, 2.5, 4.0, 8.0)


class ServerMetrics:
    def __init__(self, role: str = "server") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions = Gauge("realtime_sessions", "open WebSocket sessions", registry=r,
                              multiprocess_mode="livesum")
        self.contexts = Gauge("realtime_contexts", "open contexts", registry=r,
                              multiprocess_mode="livesum")
        self.queue_depth = Gauge("realtime_engine_queue_depth", "chunks queued in the engine",
                                 registry=r, multiprocess_mode="livemax")
        self.batch_size = Histogram("realtime_batch_size", "chunks per engine batch",
                                    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32), registry=r)
        self.first_audio = Histogram("realtime_first_audio_seconds",
                                     "first text (or request) to first audio",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("realtime_inference_seconds", "engine batch time per chunk",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.queued = Histogram("realtime_queued_seconds", "time a chunk waited in the queue",
                                buckets=LATENCY_BUCKETS, registry=r)
        self.plan_rtf = Gauge("realtime_plan_rtf", "real-time factor new contexts plan their "
                              "chunk sizes for (0: no cap)", registry=r,
                              multiprocess_mode="livemax")
        self.audio_seconds = Counter("realtime_audio_seconds", "audio synthesised", registry=r)
        self.underrun_risk = Counter(
            "realtime_underrun_risk", "chunks finished after their deadline (the client's "
            "audio would have run out)", registry=r)
        self.requests = Counter("realtime_http_speech_requests", "speech requests by outcome",
                                ["outcome"], registry=r)
        self.process = ProcessGauges(role, r)

    def render(self) -> bytes:
        if not multiprocess():
            self.process.update()
            return generate_latest(self.registry)
        from prometheus_client import multiprocess as mp

        merged = CollectorRegistry()
        mp.MultiProcessCollector(merged)
        return generate_latest(merged)


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

    def update(self, engine: Any = None, ready: bool | None = None) -> None:
        self.cpu.labels(self.role).set(time.process_time())
        if ready is not None:
            self.ready.labels(self.role).set(1 if ready else 0)
        if engine is None:
            return
        stats = engine.stats()
        self.engine_queue.set(stats.queued)
        self.engine_running.set(stats.running)
        self.engine_batches.set(stats.batches)
        device = engine.info.device
        if device.startswith("cuda"):
            import torch

            self.gpu_memory.labels("allocated").set(torch.cuda.memory_allocated(device))
            self.gpu_memory.labels("reserved").set(torch.cuda.memory_reserved(device))


def process_gauges(role: str) -> ProcessGauges:
    return ProcessGauges(role)
