"""The short load test: a few sessions for a few seconds against ``realtime serve --model
tiny-random`` started by the load generator, and a short abuse run; the report's fields, no
session lost, abusers closed with their codes while the normal sessions all complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from load_tests.__main__ import main
from load_tests.playback import Playback

SHORT = ["--model", "tiny-random", "--threads", "1", "--duration-s", "2", "--ramp-s", "1",
         "--turns", "1-1", "--sentences", "1-1", "--think-s", "0.2", "--gap-s", "0.2",
         "--timeout-s", "60"]


def test_playback_counts_an_underrun_when_the_buffer_runs_dry() -> None:
    p = Playback(jitter_ms=80)
    p.frame(0.0, 20)  # plays from 0.08 to 0.10
    p.frame(0.05, 20)  # in time: to 0.12
    assert p.underruns == 0
    p.frame(0.20, 20)  # 80 ms late
    assert (p.underruns, round(p.underrun_ms)) == (1, 80)
    assert round(p.played_ms(0.21)) == 50


@pytest.mark.e2e  # starts `realtime serve` as a subprocess
def test_short_run_reports_every_session(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", "-n", "3", "--barge-in", "0.5", "--out", str(out), *SHORT]) == 0
    rep = json.loads((out / "report.json").read_text())
    s = rep["sessions"]
    assert s["started"] >= 3
    assert s["started"] == s["completed"] + s["barged_in"]  # no session lost
    assert s["failed"] == s["refused"] == s["cut_by_timeout"] == 0
    for key in ("ttfa_client_ms", "ttfa_server_ms", "ttfa_after_text_ms", "gap_ms", "rtf"):
        assert set(rep[key]) == {"n", "mean", "p50", "p95", "p99", "max"}
    ttfa = rep["ttfa_client_ms"]
    assert ttfa["n"] >= 3 and 0 < ttfa["p50"] <= ttfa["p95"] <= ttfa["p99"] < 10_000
    # The client waits for the first audio longer than the server takes to send it.
    assert rep["ttfa_server_ms"]["p50"] <= ttfa["p50"]
    assert rep["underruns"]["count"] >= 0 and rep["audio"]["total_s"] > 0
    assert rep["server"]["cpu_percent_mean"] is not None and rep["server"]["rss_mb_max"] > 0
    assert rep["concurrency"]["peak"] >= 1 and rep["by_concurrency"]
    assert rep["turns"]["total"] >= s["started"]
    assert (out / "report.png").stat().st_size > 1000
    assert "time to first audio" in (out / "report.md").read_text()


@pytest.mark.e2e  # starts `realtime serve` as a subprocess
def test_short_abuse_run_leaves_normal_sessions_whole(tmp_path: Path) -> None:
    out = tmp_path / "abuse"
    # The slow and stopped readers take tens of seconds each: the full abuse run has them.
    kinds = "oversized,malformed_msgpack,disconnect_mid_chunk,malformed_json,oversized_huge"
    assert main(["abuse", "-n", "2", "--abusers", "3", "--kinds", kinds, "--barge-in", "0",
                 "--out", str(out), *SHORT]) == 0
    rep = json.loads((out / "report.json").read_text())
    for run in (rep["baseline"], rep["with_abuse"]):
        s = run["sessions"]
        assert s["started"] >= 2 and s["completed"] == s["started"]
    kinds = rep["abusers"]["by_kind"]
    for kind in ("oversized", "malformed_msgpack", "malformed_json", "oversized_huge"):
        assert kinds[kind]["runs"] >= 1 and kinds[kind]["as_expected"] == kinds[kind]["runs"]
    assert kinds["disconnect_mid_chunk"]["runs"] >= 1
    assert rep["difference"]["ttfa_client_ms.p95"]["delta"] is not None
    assert (out / "report.png").exists() and (out / "report.md").exists()
