"""The real-time factor new contexts plan their chunks for (``chunk_plan_rtf``)."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.config import ServerConfig
from realtime.engine.request import ChunkRequest, ChunkResult
from realtime.errors import ConfigError
from realtime.server.pace import CPU_START, MARGIN, MOST, ChunkPace


def result(audio_s: float, queued_s: float, inference_s: float) -> ChunkResult:
    request = ChunkRequest(session="s", context="c", phonemes="hˈɛlO", voice="v", deadline=0.0)
    audio = np.zeros(round(audio_s * 24000), dtype=np.float32)
    return ChunkResult(request, audio, np.ones(7, dtype=np.int64), queued_s, inference_s, 1, 0)


def test_settings() -> None:
    assert ChunkPace("off").plan_rtf() is None
    assert ChunkPace("0.5").plan_rtf() == 0.5
    assert ChunkPace("auto", "cpu").plan_rtf() == CPU_START  # before anything was measured
    assert ChunkPace("auto", "cuda").plan_rtf() is None


def test_auto_follows_the_measured_factor_with_a_margin() -> None:
    pace = ChunkPace("auto", "cpu")
    for _ in range(40):
        pace.observe(result(2.0, 0.2, 0.8))  # (0.2 + 0.8) / 2 = 0.5
    assert pace.plan_rtf() == pytest.approx(0.5 * MARGIN)
    for _ in range(40):
        pace.observe(result(1.0, 2.0, 1.0))  # overloaded: 3
    assert pace.plan_rtf() == MOST
    pace.observe(result(0.0, 1.0, 1.0))  # no audio: ignored
    assert pace.plan_rtf() == MOST
    fast = ChunkPace("auto", "cpu")  # e.g. the tiny model, or a GPU: no plan needed
    fast.observe(result(3.0, 0.0, 0.03))
    assert fast.plan_rtf() is None


@pytest.mark.parametrize("bad", ["fast", "0", "1", "1.5", "-0.2"])
def test_bad_setting_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="chunk_plan_rtf"):
        ServerConfig(chunk_plan_rtf=bad)
