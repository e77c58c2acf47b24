from __future__ import annotations

import numpy as np
import pytest

from realtime.codecs.bench import encode_cost_ms, main, ogg_cost_ms, speech_like


def test_speech_like_signal() -> None:
    x = speech_like(0.5, seed=1)
    assert x.dtype == np.float32 and len(x) == 12000
    assert np.isclose(np.max(np.abs(x)), 0.5)
    np.testing.assert_array_equal(x, speech_like(0.5, seed=1))


@pytest.mark.parametrize(("codec", "rate"), [("opus", 48000), ("mulaw", 8000)])
def test_costs_are_positive_and_finite(codec: str, rate: int) -> None:
    cost = encode_cost_ms(codec, rate, seconds=0.2)
    assert 0 <= cost < 1000
    assert 0 <= ogg_cost_ms(seconds=0.2) < 1000


def test_main_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--seconds", "0.1", "--repeat", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "codec" and len(lines) == 1 + 13
