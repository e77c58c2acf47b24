"""Aggregate a run into the report (JSON), a Markdown summary and PNG plots (latency and
underruns against concurrency)."""

from __future__ import annotations

import json
import math
import os
import platform
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from .load import RunResult


def percentiles(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, mean, p50, p95, p99, max (linear interpolation between ranks); None when empty."""
    xs = sorted(values)
    if not xs:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}

    def q(p: float) -> float:
        k = (len(xs) - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return round(xs[lo] + (xs[hi] - xs[lo]) * (k - lo), 1)

    return {"n": len(xs), "mean": round(sum(xs) / len(xs), 1), "p50": q(0.5), "p95": q(0.95),
            "p99": q(0.99), "max": round(xs[-1], 1)}


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = None
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch, "system": platform.platform()}


def summarise(run: RunResult, **context: Any) -> dict[str, Any]:
    """The report of one run: every figure the issue asks for, as plain JSON values."""
    cfg = run.config
    outcomes = Counter(s.outcome for s in run.sessions)
    codes = Counter(str(s.close_code) for s in run.sessions if s.close_code is not None)
    errors = Counter(s.error for s in run.sessions if s.error)
    turns = [t for s in run.sessions for t in s.turns]
    started = len(run.sessions)
    ok = outcomes["completed"] + outcomes["barged_in"]
    audio_s = sum(t.audio_ms for t in turns) / 1000.0
    # The steady window: after the first arrivals, before sessions stop starting.
    steady = [n for t, n in run.active if cfg.ramp_s <= t <= cfg.duration_s] or [
        n for _, n in run.active]
    return {
        "kind": "run", **context,
        "config": {**asdict(cfg), "hard_timeout_s": cfg.hard_timeout_s},
        "machine": machine(),
        "wall_s": round(run.wall_s, 2),
        "sessions": {
            "started": started, "completed": outcomes["completed"],
            "barged_in": outcomes["barged_in"], "failed": outcomes["failed"],
            "refused": outcomes["refused"], "cut_by_timeout": run.cut,
            "success_rate": round(ok / started, 4) if started else None,
            "close_codes": dict(codes), "errors": dict(errors.most_common(10)),
        },
        "turns": {"total": len(turns), "done": sum(t.outcome == "done" for t in turns),
                  "cancelled": sum(t.outcome == "cancelled" for t in turns)},
        "concurrency": {"target": cfg.concurrency, "peak": run.peak_active,
                        "mean": round(sum(steady) / len(steady), 2) if steady else 0.0},
        "ttfa_client_ms": percentiles(t.ttfa_client_ms for t in turns
                                      if t.ttfa_client_ms is not None),
        "ttfa_server_ms": percentiles(t.ttfa_server_ms for t in turns
                                      if t.ttfa_server_ms is not None),
        "ttfa_after_text_ms": percentiles(t.ttfa_after_text_ms for t in turns
                                          if t.ttfa_after_text_ms is not None),
        "gap_ms": percentiles(g for t in turns for g in t.gaps_ms),
        "underruns": {"count": sum(t.underruns for t in turns),
                      "ms": round(sum(t.underrun_ms for t in turns), 1),
                      "turns_with_underrun": sum(t.underruns > 0 for t in turns)},
        "rtf": percentiles(r for t in turns for r in t.rtf),
        "audio": {"total_s": round(audio_s, 1),
                  "per_wall_s": round(audio_s / run.wall_s, 2) if run.wall_s else None},
        "server": run.server.summary(),
        "load_generator": run.client.summary(),
        "by_concurrency": _by_concurrency(run),
    }


def _by_concurrency(run: RunResult) -> list[dict[str, Any]]:
    """Turns grouped by the sessions active when they began (for the run's plots)."""
    groups: dict[int, list[Any]] = defaultdict(list)
    for s in run.sessions:
        for t in s.turns:
            groups[t.active].append(t)
    rows = []
    for active in sorted(groups):
        ts = groups[active]
        ttfa = percentiles(t.ttfa_client_ms for t in ts if t.ttfa_client_ms is not None)
        server = percentiles(t.ttfa_server_ms for t in ts if t.ttfa_server_ms is not None)
        rows.append({"concurrency": active, "turns": len(ts), "ttfa_client_p50": ttfa["p50"],
                     "ttfa_client_p95": ttfa["p95"], "ttfa_client_p99": ttfa["p99"],
                     "ttfa_server_p95": server["p95"],
                     "underruns": sum(t.underruns for t in ts)})
    return rows


def plot(rows: Sequence[dict[str, Any]], path: Path, title: str, xlabel: str) -> None:
    """Two panels against concurrency: time to first audio (p50/p95/p99 client, p95 server),
    and underruns (and failed sessions, where the rows have them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["concurrency"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label, style in (("ttfa_client_p50", "client p50", "o-"),
                              ("ttfa_client_p95", "client p95", "s-"),
                              ("ttfa_client_p99", "client p99", "^-"),
                              ("ttfa_server_p95", "server p95", "x--")):
        pts = [(x, r[key]) for x, r in zip(xs, rows, strict=True) if r.get(key) is not None]
        if pts:
            ax1.plot(*zip(*pts, strict=True), style, label=label)
    ax1.set(xlabel=xlabel, ylabel="time to first audio (ms)", title="latency")
    ax1.grid(alpha=0.3)
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend()
    ax2.plot(xs, [r["underruns"] for r in rows], "o-", color="C3", label="underruns")
    if rows and "failed" in rows[0]:
        ax2.plot(xs, [r["failed"] for r in rows], "x--", color="k", label="failed sessions")
    ax2.set(xlabel=xlabel, ylabel="count", title="underruns")
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(v: object) -> str:
    return "-" if v is None else str(v)


def run_markdown(rep: dict[str, Any]) -> str:
    s, c = rep["sessions"], rep["config"]
    lines = [
        f"# Load run: {c['concurrency']} concurrent sessions, {c['duration_s']} s "
        f"({rep.get('model', '?')})", "",
        f"Machine: {rep['machine']['cpu']}, {rep['machine']['cores']} cores, "
        f"torch {rep['machine']['torch']}. Wall time {rep['wall_s']} s.", "",
        "| figure | value |", "| --- | --- |",
        f"| sessions started / completed / barged in / failed / refused | {s['started']} / "
        f"{s['completed']} / {s['barged_in']} / {s['failed']} / {s['refused']} |",
        f"| close codes (server-closed sessions) | {_fmt(s['close_codes'] or None)} |",
        f"| concurrency mean / peak | {rep['concurrency']['mean']} / "
        f"{rep['concurrency']['peak']} |",
    ]
    for key, label in (("ttfa_client_ms", "time to first audio, client (ms)"),
                       ("ttfa_server_ms", "time to first audio, server-reported (ms)"),
                       ("ttfa_after_text_ms", "first audio after the first chunk's text "
                                              "was sent (ms)")):
        p = rep[key]
        lines.append(f"| {label} p50 / p95 / p99 | {_fmt(p['p50'])} / {_fmt(p['p95'])} / "
                     f"{_fmt(p['p99'])} |")
    u = rep["underruns"]
    lines += [
        f"| inter-frame gap p50 / p99 / max (ms) | {_fmt(rep['gap_ms']['p50'])} / "
        f"{_fmt(rep['gap_ms']['p99'])} / {_fmt(rep['gap_ms']['max'])} |",
        f"| underruns (turns with one) / stalled ms | {u['count']} ({u['turns_with_underrun']})"
        f" / {u['ms']} |",
        f"| real-time factor per chunk mean / p95 | {_fmt(rep['rtf']['mean'])} / "
        f"{_fmt(rep['rtf']['p95'])} |",
        f"| audio received (s) / per wall second | {rep['audio']['total_s']} / "
        f"{_fmt(rep['audio']['per_wall_s'])} |",
        f"| server CPU % mean / max (100 = one core) | {_fmt(rep['server']['cpu_percent_mean'])}"
        f" / {_fmt(rep['server']['cpu_percent_max'])} |",
        f"| server RSS max (MB) | {_fmt(rep['server']['rss_mb_max'])} |",
        f"| load generator CPU % mean | {_fmt(rep['load_generator']['cpu_percent_mean'])} |",
    ]
    if s["errors"]:
        lines += ["", "Errors: " + "; ".join(f"{k} (x{v})" for k, v in s["errors"].items())]
    return "\n".join(lines) + "\n"


def write_json(rep: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(rep, indent=2) + "\n", encoding="utf-8")


def write_run(rep: dict[str, Any], out: Path) -> list[Path]:
    """``out``/report.json, report.md, report.png."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md", out / "report.png"]
    write_json(rep, paths[0])
    paths[1].write_text(run_markdown(rep), encoding="utf-8")
    plot(rep["by_concurrency"], paths[2], f"{rep.get('model', '')}: turns by sessions active "
         "when they began", "sessions active")
    return paths
