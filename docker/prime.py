"""Run the server once inside the image build, as the container will run it, so that Python
writes the bytecode of the modules a server imports, and of no others.

The Dockerfile installs everything without bytecode and runs this in the final stage: a start
(the engine's warm-up with its kernel compile), one `/v1/audio/speech` request, one Opus stream,
then SIGTERM, which must drain and exit 0. Whatever fails here fails the build. The image so
carries about half the bytecode of compiling every module, and a container with a read-only
root compiles nothing at start. Modules a server imports later (another codec, the hub
download) are compiled in memory when first used.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request

from realtime.client import RealtimeClient

READY_S = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"prime: the server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"prime: the server was not ready in {READY_S} s")


def _speech(url: str) -> int:
    request = urllib.request.Request(
        url + "/v1/audio/speech", method="POST",
        data=json.dumps({"input": "The image is being built."}).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as resp:
        body = resp.read()
    if not body.startswith(b"RIFF"):
        sys.exit("prime: /v1/audio/speech did not return a WAV")
    return len(body)


async def _stream(url: str) -> int:
    ws = url.replace("http://", "ws://") + "/v1/stream"
    async with await RealtimeClient.connect(ws, codec="opus") as client:
        utterance = await client.speak("And it speaks.", "prime")
    if not utterance.of("done") or not utterance.audio:
        sys.exit("prime: the stream ended without audio")
    return len(utterance.audio)


def main() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    server = subprocess.Popen(["realtime", "serve", "--host", "127.0.0.1", "--port", str(port)])
    try:
        _wait_ready(url, server)
        ready_s = time.monotonic() - start
        wav_bytes = _speech(url)
        packets = asyncio.run(_stream(url))
    finally:
        server.terminate()
        code = server.wait(timeout=120)
    if code != 0:
        sys.exit(f"prime: the server exited with {code} after SIGTERM")
    print(f"prime: ready in {ready_s:.1f} s; speech {wav_bytes} bytes; {packets} Opus packets; "
          "drained and exited 0", flush=True)


if __name__ == "__main__":
    main()
