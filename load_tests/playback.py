"""A simulated playback buffer: audio plays in real time from the first frame (after a jitter
buffer); a frame that arrives after the buffer ran dry is an underrun (a stutter)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Playback:
    """Times are seconds on one monotonic clock; durations are milliseconds of audio.

    Playback starts ``jitter_ms`` after the first frame arrives. Each frame plays right after
    the previous one; if it arrives later than that (the buffer ran dry mid-utterance), that is
    one underrun of ``arrival - dry`` and playback resumes at once on its arrival (no
    re-buffering: the lenient count of stutters).
    """

    jitter_ms: float = 80.0
    received_ms: float = 0.0
    end: float | None = None  # when the audio received so far will have finished playing
    first_arrival: float | None = None
    last_arrival: float | None = None
    underruns: int = 0
    underrun_ms: float = 0.0
    gaps_ms: list[float] = field(default_factory=list)  # between consecutive frame arrivals

    def frame(self, now: float, duration_ms: float) -> None:
        if self.end is None or self.first_arrival is None:
            self.first_arrival = now
            self.end = now + (self.jitter_ms + duration_ms) / 1000.0
        else:
            if self.last_arrival is not None:
                self.gaps_ms.append((now - self.last_arrival) * 1000.0)
            if now > self.end:
                self.underruns += 1
                self.underrun_ms += (now - self.end) * 1000.0
                self.end = now
            self.end += duration_ms / 1000.0
        self.last_arrival = now
        self.received_ms += duration_ms

    def played_ms(self, now: float) -> float:
        """Audio played by ``now``: what was received less what is still buffered."""
        if self.end is None:
            return 0.0
        return max(0.0, self.received_ms - max(0.0, self.end - now) * 1000.0)

    def time_at(self, played_ms: float) -> float | None:
        """When playback reaches ``played_ms`` if nothing else goes wrong (None: not started);
        beyond what was received, as if the rest came in time."""
        if self.end is None:
            return None
        return self.end - (self.received_ms - played_ms) / 1000.0

    def finished_at(self) -> float | None:
        """When the audio received so far has played out."""
        return self.end
