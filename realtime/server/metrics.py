"""Prometheus metrics, in a registry of the app's own (no process-wide default registry).

With several processes (``realtime serve --workers``), prometheus_client's multiprocess mode:
every process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by the
supervisor before it starts them), and any worker's ``/metrics`` adds them up: counters and
histograms summed, gauges as each one says (sessions summed over the live workers, the engine's
queue as the engine process sees it, each process's own CPU time by pid).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from realtime.process import ProcessGauges, multiprocess

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
