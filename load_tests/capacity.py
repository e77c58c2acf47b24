"""Capacity search: the highest concurrency at which every session succeeds, the client's p95
time to first audio stays under a threshold and no playback buffer runs dry.

Levels double from 1 while the criteria hold (or come from ``--levels``), then the gap between
the last pass and the first failure is bisected. One server serves all levels (loading the real
model takes longer than a level), and each level is a fresh ``run_load``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .load import run_load
from .report import _fmt, machine, plot, summarise, write_json
from .target import load_config, target


def verdict(rep: dict[str, Any], ttfa_p95_ms: float) -> list[str]:
    """Why a level fails the criteria (empty: it passes)."""
    s = rep["sessions"]
    why = []
    if s["started"] == 0 or s["completed"] + s["barged_in"] != s["started"]:
        why.append(f"{s['failed']} failed, {s['refused']} refused of {s['started']}")
    p95 = rep["ttfa_client_ms"]["p95"]
    if p95 is None or p95 >= ttfa_p95_ms:
        why.append(f"ttfa p95 {p95} ms >= {ttfa_p95_ms:.0f}")
    if rep["underruns"]["count"]:
        why.append(f"{rep['underruns']['count']} underruns")
    return why


def next_level(tried: dict[int, bool], max_n: int, bisect_left: int) -> int | None:
    """Doubling while every level passed, then bisection between the best pass and the lowest
    failure above it."""
    passed = [n for n, ok in tried.items() if ok]
    failed = [n for n, ok in tried.items() if not ok]
    best = max(passed, default=0)
    if not failed:
        n = 1 if not tried else 2 * best
        return n if n <= max_n else (max_n if best < max_n else None)
    low_fail = min((n for n in failed if n > best), default=None)
    if low_fail is None or bisect_left <= 0 or low_fail - best <= 1:
        return None
    return (best + low_fail) // 2 if best else None


def cmd_capacity(args: argparse.Namespace) -> dict[str, Any]:

    levels = [int(x) for x in args.levels.split(",")] if args.levels else None
    max_n = max(levels) if levels else args.max_concurrency
    args.out.mkdir(parents=True, exist_ok=True)
    reports: dict[int, dict[str, Any]] = {}
    tried: dict[int, bool] = {}
    with target(args, 2 * max_n + 16, args.out / "server.log") as (url, pid, sargs):
        bisect_left = args.bisect_steps
        queue = list(levels) if levels else []
        while True:
            n = queue.pop(0) if levels is not None else next_level(tried, max_n, bisect_left)
            if n is None or n in tried:
                break
            if levels is None and any(not ok for ok in tried.values()):
                bisect_left -= 1
            cfg = load_config(args, n)
            rep = summarise(asyncio.run(run_load(url, cfg, pid)), model=args.model)
            rep["fails"] = verdict(rep, args.ttfa_p95_ms)
            reports[n], tried[n] = rep, not rep["fails"]
            print(f"level {n}: {'pass' if tried[n] else 'FAIL: ' + '; '.join(rep['fails'])} "
                  f"(ttfa p95 {rep['ttfa_client_ms']['p95']} ms, underruns "
                  f"{rep['underruns']['count']}, server cpu {rep['server']['cpu_percent_mean']}%)",
                  flush=True)
            if levels is not None and not queue:
                break
    passing = [n for n, ok in tried.items() if ok]
    capacity = max(passing, default=0)
    out = {"kind": "capacity", "model": args.model, "server_args": sargs,
           "machine": machine(), "criteria": {"ttfa_client_p95_ms_below": args.ttfa_p95_ms,
                                              "success_rate": 1.0, "underruns": 0},
           "capacity": capacity,
           # The lowest failing level above the capacity (None: none failed).
           "first_failure": min((n for n, ok in tried.items() if not ok and n > capacity),
                                default=None),
           "levels": [{**reports[n], "level": n, "passed": tried[n]} for n in sorted(tried)]}
    write_json(out, args.out / "report.json")
    (args.out / "report.md").write_text(capacity_markdown(out), encoding="utf-8")
    plot(rows(out), args.out / "report.png",
         f"capacity search, {args.model}: capacity {capacity}", "concurrent sessions")
    return out


def rows(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"concurrency": lv["level"], "ttfa_client_p50": lv["ttfa_client_ms"]["p50"],
             "ttfa_client_p95": lv["ttfa_client_ms"]["p95"],
             "ttfa_client_p99": lv["ttfa_client_ms"]["p99"],
             "ttfa_server_p95": lv["ttfa_server_ms"]["p95"],
             "underruns": lv["underruns"]["count"],
             "failed": lv["sessions"]["failed"] + lv["sessions"]["refused"]}
            for lv in out["levels"]]


def capacity_markdown(out: dict[str, Any]) -> str:
    m, c = out["machine"], out["criteria"]
    lines = [
        f"# Capacity: {out['model']}: **{out['capacity']}** concurrent sessions", "",
        f"Criteria: every session succeeds, client time to first audio p95 < "
        f"{c['ttfa_client_p95_ms_below']:.0f} ms, no underrun. Machine: {m['cpu']}, "
        f"{m['cores']} cores, torch {m['torch']}. Server: `realtime serve "
        f"{' '.join(out['server_args'])}`.", "",
        "| sessions at once | started | ok | failed+refused | TTFA client p50 / p95 / p99 ms "
        "| after text p95 ms | server TTFA p95 ms | gap p99 ms | underruns | server CPU % | "
        "server RSS MB | LG CPU % | verdict |",
        "| " + " | ".join(["---"] * 13) + " |",
    ]
    for lv in out["levels"]:
        s, t = lv["sessions"], lv["ttfa_client_ms"]
        lines.append(
            f"| {lv['level']} (mean {lv['concurrency']['mean']}) | {s['started']} | "
            f"{s['completed'] + s['barged_in']} | {s['failed'] + s['refused']} | "
            f"{_fmt(t['p50'])} / {_fmt(t['p95'])} / {_fmt(t['p99'])} | "
            f"{_fmt(lv['ttfa_after_text_ms']['p95'])} | {_fmt(lv['ttfa_server_ms']['p95'])} | "
            f"{_fmt(lv['gap_ms']['p99'])} | {lv['underruns']['count']} | "
            f"{_fmt(lv['server']['cpu_percent_mean'])} | {_fmt(lv['server']['rss_mb_max'])} | "
            f"{_fmt(lv['load_generator']['cpu_percent_mean'])} | "
            f"{'pass' if lv['passed'] else '; '.join(lv['fails'])} |")
    return "\n".join(lines) + "\n"
