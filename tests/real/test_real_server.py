"""`realtime serve` as users run it: a subprocess on a free port with the real weights, a real
client speaking to it over /v1/stream (Opus, decoded again with libopus), then SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import opuslib
import pytest

from realtime.client import RealtimeClient
from tests.server.conftest import free_port

pytestmark = pytest.mark.real


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_serve_stream_and_drain(real_cache: Path, tmp_path: Path) -> None:
    port = free_port()
    # As users run it: the CPU's fused norms on (the suite's default turns them off).
    env = {**os.environ, "REALTIME_CACHE_DIR": str(real_cache), "REALTIME_THREADS": "2",
           "REALTIME_CPU_FUSED_NORMS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 180
        while not _ready(url):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < end, "the server did not become ready"
            time.sleep(0.5)

        async def talk() -> tuple[list[bytes], list[dict[str, object]]]:
            async with await RealtimeClient.connect(url.replace("http", "ws") + "/v1/stream",
                                                    codec="opus", sample_rate=48000) as c:
                for piece in ["Sure! Your order of $4", ".50 shipped on 3/14. ",
                              "It should arrive by Friday."]:
                    await c.text(piece, "a")
                await c.end("a")
                u = await c.collect("a")
                return u.audio, u.messages

        audio, messages = asyncio.run(asyncio.wait_for(talk(), 180))
        kinds = [m["type"] for m in messages]
        assert kinds[-1] == "done" and "alignment" in kinds and "metrics" in kinds
        first = next(m for m in messages if m["type"] == "metrics")
        assert isinstance(first["first_audio_ms"], float | int)
        decoder = opuslib.Decoder(48000, 1)
        pcm = b"".join(decoder.decode(packet, 960) for packet in audio)
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
        done = messages[-1]
        assert abs(len(samples) / 48 - float(done["audio_ms"])) < 80  # type: ignore[arg-type]
        assert float(np.sqrt(np.mean(samples ** 2))) > 0.01  # speech, not silence
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit -15).
        assert proc.returncode in (0, -signal.SIGTERM)
        assert b"Finished server process" in out
        assert b"fused kernels" in out  # the norm-and-Snake pairs ran compiled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
