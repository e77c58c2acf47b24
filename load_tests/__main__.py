"""``python -m load_tests run|capacity|abuse|first-audio``: load a realtime server on loopback
and report.

Without ``--url`` each command starts ``python -m realtime serve`` itself (as a subprocess, so
its CPU and memory are sampled) and stops it at the end. Every command is bounded in sessions
and seconds and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import shlex
import sys
from pathlib import Path
from typing import Any

from .load import run_load
from .report import summarise, write_run
from .server import ServerProcess, ws_url
from .target import load_config, target


def _pair(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None,
                   help="an already running server (http://HOST:PORT); default: start one")
    p.add_argument("--model", default="kokoro-v1.0-int8",
                   help="model of the started server: kokoro-v1.0-int8 (default), tiny-random")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the started server (default: torch's choice)")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for `realtime serve` (repeat), e.g. "
                        "--server-arg=--eager; a REALTIME_NAME=VALUE argument goes to its "
                        "environment: --server-arg=REALTIME_CODEC=pcm16")
    p.add_argument("--out", type=Path, default=Path("load-report"),
                   help="directory for report.json/.md/.png (default load-report)")
    p.add_argument("--duration-s", type=float, default=30.0,
                   help="seconds during which sessions start (default 30)")
    p.add_argument("--max-sessions", type=int, default=1000,
                   help="sessions started at most, per run (default 1000)")
    p.add_argument("--timeout-s", type=float, default=None,
                   help="hard limit per run (default duration + 90)")
    p.add_argument("--ramp-s", type=float, default=5.0,
                   help="the first arrivals spread over this, Poisson (default 5)")
    p.add_argument("--turns", type=_pair, default=(1, 3), help="turns per session (1-3)")
    p.add_argument("--sentences", type=_pair, default=(1, 2), help="sentences per turn (1-2)")
    p.add_argument("--tokens-per-s", type=float, default=30.0, help="LLM token rate (30)")
    p.add_argument("--jitter-ms", type=float, default=80.0, help="playback jitter buffer (80)")
    p.add_argument("--think-s", type=float, default=1.0, help="mean pause between turns (1)")
    p.add_argument("--gap-s", type=float, default=0.5, help="mean pause between sessions (0.5)")
    p.add_argument("--barge-in", type=float, default=0.2,
                   help="share of sessions that barge in on one turn (0.2)")
    p.add_argument("--codec", default="opus", help="opus (default), pcm16, mulaw, alaw")
    p.add_argument("--seed", type=int, default=0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m load_tests", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one run at a given concurrency")
    run.add_argument("-n", "--concurrency", type=int, default=4, help="sessions at once (4)")
    _common(run)
    cap = sub.add_parser("capacity", help="the highest concurrency that meets the criteria")
    cap.add_argument("--levels", default=None,
                     help="comma-separated concurrencies to try (default: 1, 2, 4, ... "
                          "doubling while the criteria hold, then bisect)")
    cap.add_argument("--max-concurrency", type=int, default=1024,
                     help="stop the search here (1024)")
    cap.add_argument("--ttfa-p95-ms", type=float, default=1000.0,
                     help="criterion: client time to first audio p95 below this (1000)")
    cap.add_argument("--bisect-steps", type=int, default=3,
                     help="bisection runs after the doubling stops (3)")
    _common(cap)
    abuse = sub.add_parser("abuse", help="normal sessions alone, then beside abusive clients; "
                                         "reports the difference")
    abuse.add_argument("-n", "--concurrency", type=int, default=4, help="normal sessions (4)")
    abuse.add_argument("--abusers", type=int, default=5,
                       help="abusive clients at once, cycling through the kinds (5)")
    abuse.add_argument("--stall-timeout", type=float, default=5.0,
                       help="the started server's stall timeout, seconds (5)")
    abuse.add_argument("--kinds", default=None,
                       help="comma-separated abuse kinds (default all: oversized, slow_reader, "
                            "malformed_msgpack, disconnect_mid_chunk, stopped_reader, "
                            "malformed_json, oversized_huge)")
    _common(abuse)
    first = sub.add_parser("first-audio", help="one streamed sentence at a time: time to first "
                                               "audio, per server variant, side by side")
    first.add_argument("--url", default=None,
                       help="an already running server (http://HOST:PORT); default: start one "
                            "per variant")
    first.add_argument("--model", default="kokoro-v1.0-int8")
    first.add_argument("--threads", type=int, default=None)
    first.add_argument("--sentences", type=int, default=8, help="corpus sentences (8)")
    first.add_argument("--spread-s", type=float, default=0.2,
                       help="each sentence's deltas are sent within this (0.2 s)")
    first.add_argument("--codec", default="opus")
    first.add_argument("--seed", type=int, default=0)
    first.add_argument("--variant", action="append", default=[], metavar="NAME=ARGS",
                       help="a server variant: a name and `realtime serve` arguments, e.g. "
                            "'whole=--windows off' (repeat; default one: defaults)")
    first.add_argument("--out", type=Path, default=Path("load-report"),
                       help="directory for first-audio.json and the servers' logs")
    agents = sub.add_parser("agents", help="the pipecat and LiveKit integrations against the "
                                           "bare client, interruptions, pipecat agents at once")
    agents.add_argument("--url", default=None,
                        help="an already running server (http://HOST:PORT); default: start one")
    agents.add_argument("--model", default="kokoro-v1.0-int8")
    agents.add_argument("--threads", type=int, default=None)
    agents.add_argument("--voice", default="af_heart")
    agents.add_argument("--rounds", type=int, default=10,
                        help="sentences through each path, in turns (10)")
    agents.add_argument("--interrupts", type=int, default=3, help="interrupted answers (3)")
    agents.add_argument("--agents", type=int, default=4, help="pipecat agents at once (4)")
    agents.add_argument("--turns", type=int, default=3, help="turns per agent (3)")
    agents.add_argument("--seed", type=int, default=0)
    agents.add_argument("--out", type=Path, default=Path("load-report"),
                        help="directory for agents.json and the server's log")
    return parser


def raise_fd_limit() -> None:
    """Hundreds of sessions need more descriptors than some shells allow by default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def cmd_run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args, args.concurrency)
    args.out.mkdir(parents=True, exist_ok=True)
    with target(args, max(64, 2 * cfg.concurrency), args.out / "server.log") as (url, pid, sa):
        result = asyncio.run(run_load(url, cfg, pid))
    rep = summarise(result, model=args.model if not args.url else args.url, server_args=sa)
    write_run(rep, args.out)
    return rep


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    raise_fd_limit()
    if args.command == "run":
        rep = cmd_run(args)
        ok = rep["sessions"]["failed"] == 0
    elif args.command == "capacity":
        from .capacity import cmd_capacity

        rep = cmd_capacity(args)
        ok = True
    elif args.command == "first-audio":
        from .first_audio import Variant, run_first_audio

        variants = [Variant(name, shlex.split(rest)) for name, _, rest in
                    (v.partition("=") for v in args.variant)] or [Variant("defaults", [])]
        base = ["--model", args.model]
        base += ["--threads", str(args.threads)] if args.threads else []
        first = run_first_audio(variants, args.url, args.sentences, args.spread_s, args.codec,
                                args.seed, args.out, base)
        print(f"wrote {args.out}/first-audio.json", file=sys.stderr)
        return 0 if all(s["failed"] == 0 for s in first["summary"]) else 1
    elif args.command == "agents":
        from .agents import run_agents, write

        base = ["--model", args.model, "--drain-timeout", "5"]
        base += ["--threads", str(args.threads)] if args.threads else []
        with contextlib.ExitStack() as stack:
            if args.url:
                url = ws_url(args.url)
            else:
                args.out.mkdir(parents=True, exist_ok=True)
                server = stack.enter_context(ServerProcess(base, args.out / "server.log"))
                url = ws_url(server.url)
            rep = asyncio.run(run_agents(url, args.voice, args.rounds, args.interrupts,
                                         args.agents, args.turns, args.seed))
        rep["server_args"] = [] if args.url else base
        print(json.dumps({k: rep[k] for k in ("overhead", "interruptions", "agents_at_once")},
                         indent=2))
        print(f"wrote {write(rep, args.out)}", file=sys.stderr)
        return 0
    else:
        from .abuse import cmd_abuse

        rep = cmd_abuse(args)
        ok = True
    print((args.out / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out}/report.json, report.md, report.png", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
