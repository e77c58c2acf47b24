"""Abusive clients beside the measured load: slow and stopped readers, abrupt disconnects
mid-chunk, oversized and malformed messages. ``abuse`` runs the normal load alone, then with
abusers beside it, and reports the difference in the normal sessions' figures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import ClientConnection

from .load import run_load
from .report import _fmt, machine, summarise, write_json
from .target import load_config, target

TEXT = ("Thanks for waiting; I have the results of your request right here. The quickest "
        "route avoids the highway and takes about twenty-five minutes. ")
# What each kind expects the server to do: a close code, or None (the client ends it).
EXPECTED: dict[str, int | None] = {
    "oversized": 1009, "slow_reader": None, "malformed_msgpack": 1007,
    "disconnect_mid_chunk": None, "stopped_reader": 1008, "malformed_json": 1007,
    "oversized_huge": 1009,
}
KINDS = tuple(EXPECTED)


async def _connect(url: str, rcvbuf: int | None = None) -> ClientConnection:
    sock = None
    if rcvbuf is not None:  # a small receive window, so that not reading backs up the server
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    try:
        ws = await websockets.connect(url + "?codec=pcm16", max_size=None, max_queue=1,
                                      sock=sock)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    await ws.recv()  # ready
    return ws


async def _close_code(ws: ClientConnection, timeout: float) -> int | None:
    """Read until the server closes; its code (None: not within ``timeout``)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    except TimeoutError:
        return None


async def _speak(ws: ClientConnection, text: str) -> None:
    await ws.send(msgpack.packb({"type": "text", "context_id": "x", "text": text}))
    await ws.send(msgpack.packb({"type": "end", "context_id": "x"}))


async def abuse_once(url: str, kind: str, max_bytes: int, stall_s: float) -> dict[str, Any]:
    """One abusive client of ``kind``; what the server did to it."""
    t = time.monotonic()
    code: int | None = None
    ws = await _connect(url, rcvbuf=4096 if kind == "stopped_reader" else None)
    try:
        if kind in ("oversized", "oversized_huge"):
            pad = max_bytes + 100 if kind == "oversized" else 4 * max_bytes
            await ws.send(json.dumps({"type": "text", "context_id": "x", "text": "a" * pad}))
            code = await _close_code(ws, 10)
        elif kind == "malformed_msgpack":
            await ws.send(b"\xc1\x92\xff")  # 0xc1 is never used in msgpack
            code = await _close_code(ws, 10)
        elif kind == "malformed_json":
            await ws.send('{"type": "text", "text": ')
            code = await _close_code(ws, 10)
        elif kind == "slow_reader":  # takes a frame every 100 ms: 5x slower than real time
            await _speak(ws, TEXT)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(15):
                    while True:
                        msg = await ws.recv()
                        if isinstance(msg, bytes) and msgpack.unpackb(msg).get("type") == "done":
                            break
                        await asyncio.sleep(0.1)
        elif kind == "stopped_reader":  # asks for minutes of audio and never reads
            await _speak(ws, TEXT * 30)  # more than the socket buffers and the egress queue
            await asyncio.sleep(stall_s + 10)
            code = await _close_code(ws, 30)
        elif kind == "disconnect_mid_chunk":
            await _speak(ws, TEXT)
            while True:
                msg = await ws.recv()
                if isinstance(msg, bytes) and msgpack.unpackb(msg).get("type") == "audio":
                    break
            ws.transport.abort()  # no close frame: the TCP connection just goes
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
    finally:
        if kind != "disconnect_mid_chunk":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        ws.transport.abort()  # a close handshake that timed out leaves the socket open
        await asyncio.sleep(0.01)  # for connection_lost to release it
    return {"kind": kind, "close_code": code, "expected": EXPECTED[kind],
            "as_expected": code == EXPECTED[kind], "seconds": round(time.monotonic() - t, 2)}


def abusers(url: str, n: int, max_bytes: int, stall_s: float, kinds: tuple[str, ...] = KINDS
            ) -> Callable[[float, asyncio.Event], Coroutine[Any, Any, list[dict[str, Any]]]]:
    """``n`` abusive clients at a time, each cycling through the kinds until stopped."""
    async def run(t0: float, stop: asyncio.Event) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []

        async def slot(k: int) -> None:
            i = k
            while not stop.is_set():
                kind = kinds[i % len(kinds)]
                i += 1
                try:
                    results.append(await abuse_once(url, kind, max_bytes, stall_s))
                except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                    results.append({"kind": kind, "close_code": None, "as_expected": False,
                                    "expected": EXPECTED[kind], "error": repr(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)

        await asyncio.gather(*(slot(k) for k in range(n)))
        return results
    return run


def abuse_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        rs = [r for r in results if r["kind"] == kind]
        if not rs:
            continue
        out[kind] = {"runs": len(rs), "expected_code": EXPECTED[kind],
                     "as_expected": sum(r["as_expected"] for r in rs),
                     "close_codes": dict(Counter(str(r["close_code"]) for r in rs))}
    return out


FIGURES = (("ttfa_client_ms", "p50"), ("ttfa_client_ms", "p95"), ("ttfa_client_ms", "p99"),
           ("ttfa_after_text_ms", "p95"), ("ttfa_server_ms", "p95"), ("gap_ms", "p99"))


def difference(base: dict[str, Any], abused: dict[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for key, q in FIGURES:
        a, b = base[key][q], abused[key][q]
        diff[f"{key}.{q}"] = {"baseline": a, "with_abuse": b,
                              "delta": None if a is None or b is None else round(b - a, 1)}
    for key in ("success_rate", "failed"):
        diff[f"sessions.{key}"] = {"baseline": base["sessions"][key],
                                   "with_abuse": abused["sessions"][key]}
    diff["underruns"] = {"baseline": base["underruns"]["count"],
                         "with_abuse": abused["underruns"]["count"]}
    return diff


def cmd_abuse(args: argparse.Namespace) -> dict[str, Any]:

    cfg = load_config(args, args.concurrency)
    args.out.mkdir(parents=True, exist_ok=True)
    with target(args, 2 * (args.concurrency + args.abusers) + 16,
                args.out / "server.log") as (url, pid, sargs):
        base = summarise(asyncio.run(run_load(url, cfg, pid)), model=args.model)
        kinds = tuple(args.kinds.split(",")) if args.kinds else KINDS
        if unknown := set(kinds) - set(KINDS):
            raise SystemExit(f"unknown abuse kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        bg = abusers(url, args.abusers, 65536, args.stall_timeout, kinds)
        run = asyncio.run(run_load(url, cfg, pid, bg))
        abused = summarise(run, model=args.model)
    results = run.extra.get("background") or []
    assert isinstance(results, list)
    out = {"kind": "abuse", "model": args.model, "server_args": sargs, "machine": machine(),
           "abusers": {"at_once": args.abusers, "by_kind": abuse_summary(results)},
           "difference": difference(base, abused), "baseline": base, "with_abuse": abused}
    write_json(out, args.out / "report.json")
    (args.out / "report.md").write_text(abuse_markdown(out), encoding="utf-8")
    plot_abuse(out, args.out / "report.png")
    return out


def abuse_markdown(out: dict[str, Any]) -> str:
    lines = [f"# Abuse beside the load: {out['model']}", "",
             f"{out['baseline']['config']['concurrency']} normal session slots, alone and then "
             f"beside {out['abusers']['at_once']} abusive clients at a time.", "",
             "| normal sessions' figure | alone | beside abusers | difference |",
             "| --- | --- | --- | --- |"]
    for name, d in out["difference"].items():
        lines.append(f"| {name} | {_fmt(d['baseline'])} | {_fmt(d['with_abuse'])} | "
                     f"{_fmt(d.get('delta'))} |")
    lines += ["", "| abuse | runs | expected close | as expected | close codes seen |",
              "| --- | --- | --- | --- | --- |"]
    for kind, k in out["abusers"]["by_kind"].items():
        lines.append(f"| {kind} | {k['runs']} | {_fmt(k['expected_code'])} | "
                     f"{k['as_expected']} | {k['close_codes']} |")
    return "\n".join(lines) + "\n"


def plot_abuse(out: dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in out["difference"] if n.startswith(("ttfa", "gap"))]
    base = [out["difference"][n]["baseline"] or 0 for n in names]
    abused = [out["difference"][n]["with_abuse"] or 0 for n in names]
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], base, 0.4, label="alone")
    ax.bar([x + 0.2 for x in xs], abused, 0.4, label="beside abusers")
    ax.set_xticks(list(xs), [n.replace("_ms", "") for n in names], rotation=20, fontsize=8)
    ax.set(ylabel="ms", title="normal sessions, alone and beside abusive clients")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
