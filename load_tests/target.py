"""The server a command loads: the one at ``--url``, or one it starts (and stops) itself."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

from .load import LoadConfig
from .server import ServerProcess, ws_url


def load_config(args: argparse.Namespace, concurrency: int) -> LoadConfig:
    return LoadConfig(
        concurrency=concurrency, duration_s=args.duration_s, max_sessions=args.max_sessions,
        timeout_s=args.timeout_s, ramp_s=args.ramp_s, turns=args.turns,
        sentences=args.sentences, tokens_per_s=args.tokens_per_s, jitter_ms=args.jitter_ms,
        think_s=args.think_s, gap_s=args.gap_s, barge_in=args.barge_in, codec=args.codec,
        seed=args.seed)


def server_args(args: argparse.Namespace, max_sessions: int) -> list[str]:
    out = ["--model", args.model, "--max-sessions", str(max_sessions), "--drain-timeout", "5"]
    if args.threads:
        out += ["--threads", str(args.threads)]
    if getattr(args, "stall_timeout", None):
        out += [f"REALTIME_STALL_TIMEOUT_S={args.stall_timeout}"]
    return out + list(args.server_arg)


@contextlib.contextmanager
def target(args: argparse.Namespace, max_sessions: int, log: Path
           ) -> Iterator[tuple[str, int | None, list[str]]]:
    """(ws url, server pid or None, server args) of the server under test."""
    if args.url:
        yield ws_url(args.url), None, []
        return
    sargs = server_args(args, max_sessions)
    with ServerProcess(sargs, log) as server:
        yield ws_url(server.url), server.pid, sargs
