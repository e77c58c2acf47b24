"""How fast chunks come back, for planning chunk sizes (``chunk_plan_rtf``).

A context's chunks must each be synthesised while the audio before it plays. The scheduler caps
chunk sizes for a given real-time factor (``SchedulerConfig.plan_rtf``); this module supplies
that factor for each new context: a fixed number, nothing (``off``), or, by default, the
factor measured on this server: an exponential average of ``(queued + inference) / audio`` over
recent chunks, so that it includes waiting behind other sessions. With a margin; below
``NO_PLAN_BELOW`` (a GPU, the tiny model) there is no plan at all, since whole sentences are
ready long before they are due and a capped first chunk would only cost prosody; above
``MOST`` (an overloaded CPU) smaller chunks cannot help and would only add Kokoro's per-chunk
pauses, so the plan stays there.
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime.engine.request import ChunkResult

MARGIN = 1.15  # plan for a little slower than measured
NO_PLAN_BELOW = 0.2
MOST = 0.8
CPU_START = 0.7  # before any chunk is measured: the embedded model's factor on a small CPU
WEIGHT = 0.2  # of each new chunk in the average


@dataclass(slots=True)
class ChunkPace:
    setting: str = "auto"  # ServerConfig.chunk_plan_rtf
    device_type: str = "cpu"
    measured: float | None = None  # average (queued + inference) / audio

    def observe(self, res: ChunkResult) -> None:
        if res.next is not None:
            return  # a chunk in pieces counts once, whole, at its last piece
        audio = res.chunk_audio_s
        if audio <= 0:
            return
        x = (res.queued_s + res.inference_s) / audio
        self.measured = x if self.measured is None else (1 - WEIGHT) * self.measured + WEIGHT * x

    def plan_rtf(self) -> float | None:
        """The factor to plan a new context for (None: no cap)."""
        if self.setting == "off":
            return None
        if self.setting != "auto":
            return float(self.setting)
        if self.measured is None:
            return CPU_START if self.device_type == "cpu" else None
        planned = self.measured * MARGIN
        return None if planned < NO_PLAN_BELOW else min(MOST, planned)
