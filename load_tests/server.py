"""The server under test: ``python -m realtime serve`` as a subprocess on a free loopback port
(so its CPU and memory can be sampled apart from the load generator's), or one already running
(``--url``: not sampled)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1).rstrip("/") + "/v1/stream"


def wait_ready(http_url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
               ) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        with (contextlib.suppress(OSError, urllib.error.URLError),
              urllib.request.urlopen(http_url + "/readyz", timeout=2) as resp):
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{http_url} was not ready within {timeout_s:.0f} s")


@dataclass(slots=True)
class Usage:
    """CPU (percent of one core, the process and its children) and RSS samples."""

    cpu: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        busy = self.cpu[1:] or self.cpu  # the first sample has no interval behind it
        return {"cpu_percent_mean": round(sum(busy) / len(busy), 1) if busy else None,
                "cpu_percent_max": round(max(busy), 1) if busy else None,
                "rss_mb_max": round(max(self.rss_mb), 1) if self.rss_mb else None}


async def sample_usage(pid: int, usage: Usage, stop: asyncio.Event, every_s: float = 0.5,
                       children: bool = True) -> None:
    """Sample ``pid`` (and its children) until ``stop`` is set."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs: dict[int, psutil.Process] = {}
    while not stop.is_set():
        cpu = rss = 0.0
        try:
            for p in [root, *(root.children(recursive=True) if children else [])]:
                p = procs.setdefault(p.pid, p)
                with p.oneshot():
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss
        except psutil.Error:
            return
        usage.cpu.append(cpu)
        usage.rss_mb.append(rss / 2**20)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


SETTING = re.compile(r"REALTIME_[A-Z0-9_]+=")  # a server setting given as a variable


class ServerProcess:
    """``python -m realtime serve ARGS`` on a free port; a context manager that waits for
    /readyz and stops it with SIGTERM (then SIGKILL). An argument ``REALTIME_NAME=VALUE`` is
    a setting for the server's environment instead (those without a flag:
    docs/configuration.md)."""

    def __init__(self, args: list[str], log_path: Path | None = None,
                 ready_timeout_s: float = 180.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(a.split("=", 1) for a in args if SETTING.match(a))
        self.args = [sys.executable, "-m", "realtime", "serve", "--host", "127.0.0.1",
                     "--port", str(self.port), "--log-level", "warning",
                     *(a for a in args if not SETTING.match(a))]
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        self._log = open(self.log_path, "wb") if self.log_path else None
        self.proc = subprocess.Popen(self.args, stdout=self._log or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        try:
            wait_ready(self.url, self.ready_timeout_s, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> int | None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode if proc is not None else None
