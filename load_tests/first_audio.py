"""``python -m load_tests first-audio``: one streamed sentence at a time, time to first audio.

Each of ``sentences`` corpus sentences goes to a fresh WebSocket session as LLM-like token
deltas spread over ``spread_s`` (0.2 s: the whole sentence is in within it), then ``end``; the
figure is the time from the first delta sent to the first audio frame received. Sessions run
one after another (no load), after one warm-up sentence that is not counted. With several
variants (``--variant NAME=ARGS``) each gets its own server, started in turn on this machine,
the same sentences in the same order: the side-by-side figure of docs/performance.md.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from realtime.client import RealtimeClient

from .corpus import SENTENCES, tokens
from .server import ServerProcess, ws_url


@dataclass(slots=True)
class Heard:
    sentence: str
    first_audio_ms: float | None = None  # first delta sent -> first audio frame received
    done_ms: float | None = None  # first delta sent -> done
    audio_ms: float = 0.0
    chunks: int = 0
    error: str | None = None


@dataclass(slots=True)
class Variant:
    name: str
    server_args: list[str]
    heard: list[Heard] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        firsts = [h.first_audio_ms for h in self.heard if h.first_audio_ms is not None]
        return {"variant": self.name, "server_args": self.server_args,
                "sentences": len(self.heard), "failed": sum(h.error is not None
                                                              for h in self.heard),
                "first_audio_median_ms": statistics.median(firsts) if firsts else None,
                "first_audio_max_ms": max(firsts, default=None),
                "chunks_per_sentence": statistics.mean(h.chunks for h in self.heard)
                if self.heard else None}


async def speak_one(url: str, sentence: str, spread_s: float, codec: str,
                    rng: random.Random, timeout_s: float = 60.0) -> Heard:
    heard = Heard(sentence)
    client = await RealtimeClient.connect(url, codec=codec)
    try:
        deltas = tokens(sentence, rng)
        start = time.monotonic()
        for i, delta in enumerate(deltas):
            await client.text(delta, "c")
            if i + 1 < len(deltas):
                await asyncio.sleep(spread_s / max(1, len(deltas) - 1))
        await client.end("c")
        deadline = start + timeout_s
        while True:
            msg = await asyncio.wait_for(client.recv(), max(0.1, deadline - time.monotonic()))
            kind = msg.get("type")
            now = time.monotonic()
            if kind == "audio":
                if heard.first_audio_ms is None:
                    heard.first_audio_ms = (now - start) * 1000.0
                heard.audio_ms += float(msg["duration_ms"])
            elif kind == "metrics":
                heard.chunks += 1
            elif kind == "error":
                heard.error = str(msg.get("message"))
            elif kind == "done":
                heard.done_ms = (now - start) * 1000.0
                return heard
    except (TimeoutError, OSError) as exc:
        heard.error = f"{type(exc).__name__}: {exc}"
        return heard
    finally:
        await client.close()


async def measure(url: str, sentences: list[str], spread_s: float, codec: str,
                  seed: int) -> list[Heard]:
    rng = random.Random(seed)
    await speak_one(url, "Hello, this warms the server up.", spread_s, codec, rng)
    out = []
    for sentence in sentences:
        heard = await speak_one(url, sentence, spread_s, codec, rng)
        print(f"  {heard.first_audio_ms or float('nan'):7.0f} ms first audio, "
              f"{heard.chunks} chunk(s): {sentence}", flush=True)
        out.append(heard)
    return out


def run_first_audio(variants: list[Variant], url: str | None, count: int, spread_s: float,
                    codec: str, seed: int, out: Path, base_args: list[str]) -> dict[str, Any]:
    sentences = list(SENTENCES[:count])
    out.mkdir(parents=True, exist_ok=True)
    for v in variants:
        print(f"variant {v.name}: {' '.join(v.server_args) or '(defaults)'}", flush=True)
        if url is not None:
            v.heard = asyncio.run(measure(ws_url(url), sentences, spread_s, codec, seed))
            continue
        with ServerProcess([*base_args, *v.server_args], out / f"server-{v.name}.log") as s:
            v.heard = asyncio.run(measure(ws_url(s.url), sentences, spread_s, codec, seed))
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "spread_s": spread_s, "codec": codec,
              "summary": [v.summary() for v in variants],
              "runs": {v.name: [asdict(h) for h in v.heard] for v in variants}}
    (out / "first-audio.json").write_text(json.dumps(report, indent=2))
    for s in report["summary"]:
        print(f"{s['variant']}: first audio median {s['first_audio_median_ms']:.0f} ms, max "
              f"{s['first_audio_max_ms']:.0f} ms, {s['chunks_per_sentence']:.2f} chunks a "
              f"sentence, {s['failed']} failed")
    return report
