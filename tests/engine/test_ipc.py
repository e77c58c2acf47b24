"""The engine over ZeroMQ, in one process: a real EngineServer and RemoteEngine (tiny model)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from realtime.engine.batch import WholeChunks
from realtime.engine.ipc.channel import EngineServer, RemoteEngine
from realtime.engine.loop import Engine
from realtime.engine.policy import EDFPolicy
from realtime.engine.request import ChunkRequest
from realtime.engine.runner.runner import ModelRunner
from realtime.errors import (
    ChunkCancelled,
    EngineBusy,
    EngineLost,
    EngineStopped,
    InputError,
    VoiceError,
)
from tests.conftest import chunk_pieces
from tests.server.conftest import tiny_kokoro


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Engine, EngineServer, RemoteEngine]]:
    address = f"ipc://{tmp_path}/engine"
    server = EngineServer(address)
    client = RemoteEngine(address, lost_after_s=1.0)
    engine = Engine(ModelRunner(tiny_kokoro()), EDFPolicy(max_batch=4), queue_limit=50)
    engine.start(warm_up=False)
    server.set_status("warming up the engine")
    seen: list[str] = []
    with pytest.raises(EngineStopped, match="warming up"):
        client.connect(seen.append, timeout=0.5)
    assert "engine: warming up the engine" in seen  # /readyz shows what the engine does
    with pytest.raises(EngineStopped) as never_served:
        client.submit(req("early", 0))
    assert type(never_served.value) is EngineStopped  # not lost: it never served yet
    server.serve(engine)
    client.connect(timeout=5)
    yield engine, server, client
    client.stop()
    server.stop()
    engine.stop()


def req(session: str, n: int, phonemes: str = "hɛlo wəld.", voice: str = "jf_alpha",
        context: str = "c") -> ChunkRequest:
    return ChunkRequest(session, context, phonemes, voice, time.monotonic(), chunk_id=n)


def test_round_trip_equals_the_engine_in_process(
        pair: tuple[Engine, EngineServer, RemoteEngine]) -> None:
    engine, _, client = pair
    assert client.info.voices == ("jf_alpha", "jm_kumo") and client.running
    remote = client.submit(req("a", 0)).result(30)
    local = engine.submit(req("b", 0)).result(30)
    assert np.array_equal(remote.audio, local.audio)
    assert np.array_equal(remote.durations, local.durations)
    assert remote.audio.dtype == np.float32 and remote.durations.dtype == np.int64
    assert not remote.audio.flags.owndata  # a view of the received frame: no copy
    assert remote.request.context == "c" and remote.batch_size >= 1


def test_refusals_keep_their_errors(pair: tuple[Engine, EngineServer, RemoteEngine]) -> None:
    engine, _, client = pair
    with pytest.raises(InputError, match="unknown phoneme"):
        client.submit(req("a", 0, phonemes="hɛlo ☃"))  # refused in the worker: never sent
    with pytest.raises(VoiceError, match="unknown voice 'nobody'"):
        client.submit(req("a", 1, voice="nobody"))
    # The engine's own refusal (its queue is full) comes back as the same class.
    futures = [client.submit(req("flood", n, phonemes="hɛlo wəld " * 20)) for n in range(80)]
    errors = [f.exception(60) for f in futures]
    assert any(isinstance(e, EngineBusy) for e in errors)
    assert any(e is None for e in errors)
    assert engine.stats().queued == 0 or engine.stats().queued <= 50


def test_cancel_crosses_the_boundary(pair: tuple[Engine, EngineServer, RemoteEngine]) -> None:
    engine, _, client = pair
    engine.runner = _Stalled(engine.runner, 1.0)  # type: ignore[assignment]
    futures = [client.submit(req("talker", n)) for n in range(12)]
    end = time.monotonic() + 5
    while engine.stats().running == 0:  # one batch runs, the rest waits in the engine's queue
        assert time.monotonic() < end
        time.sleep(0.02)
    assert client.cancel("talker") == 12
    for f in futures:  # every waiter is released at once, with ChunkCancelled
        assert isinstance(f.exception(0), ChunkCancelled)
    while engine.stats().queued or engine.stats().running:  # the engine drops the rest
        assert time.monotonic() < end
        time.sleep(0.02)
    stats = engine.stats()
    assert stats.chunks == 0 and stats.cancelled == 12  # none delivered: not even the running
    engine.runner = engine.runner.inner  # type: ignore[attr-defined]
    assert client.submit(req("other", 0)).result(30).audio.size > 0  # and the engine goes on


def test_a_lost_engine_fails_what_waits_and_comes_back(
        pair: tuple[Engine, EngineServer, RemoteEngine], tmp_path: Path) -> None:
    engine, server, client = pair
    events: list[tuple[bool, str]] = []
    client.watch(lambda up, reason: events.append((up, reason)))
    engine.runner = _Stalled(engine.runner, 3.0)  # type: ignore[assignment]
    waiting = client.submit(req("a", 0))
    server.stop()  # the engine process is gone: no more beats
    assert type(waiting.exception(5)) is EngineLost  # nothing waits forever
    assert not client.running and events and events[-1][0] is False
    with pytest.raises(EngineLost):
        client.submit(req("a", 1))
    engine.runner = engine.runner.inner  # type: ignore[attr-defined]
    again = EngineServer(client.address)  # a restarted engine process, same address
    again.serve(engine)
    end = time.monotonic() + 10
    while not client.running:
        assert time.monotonic() < end
        time.sleep(0.05)
    assert events[-1] == (True, "serving")
    assert client.submit(req("a", 2)).result(30).audio.size > 0
    again.stop()


class _Stalled(WholeChunks):
    """A runner that takes ``seconds`` per batch (a slow or hung device)."""

    def __init__(self, inner: ModelRunner, seconds: float) -> None:
        self.inner = inner
        self.info = inner.info
        self.seconds = seconds

    def prepare(self, request: ChunkRequest) -> None:
        self.inner.prepare(request)

    def run(self, batch: list[ChunkRequest]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        time.sleep(self.seconds)
        yield from self.inner.run(batch)

    def warm_up(self) -> None:
        pass


def test_pieces_cross_the_boundary(tmp_path: Path) -> None:
    """Windowed decoding through the sockets: every piece, in order, as the engine made it."""
    from realtime.engine.plan import WindowPlan

    address = f"ipc://{tmp_path}/engine"
    server = EngineServer(address)
    client = RemoteEngine(address, lost_after_s=1.0)
    plan = WindowPlan(first_s=0.03, later_s=0.06, margin_s=0.01, fade_ms=4.0)
    engine = Engine(ModelRunner(tiny_kokoro(), windows=plan), EDFPolicy(max_batch=1))
    engine.start(warm_up=False)
    server.serve(engine)
    try:
        client.connect(timeout=5)
        text = "ðə kwɪk bɹaʊn fɑks dʒʌmps oʊvɚ ðə leɪzi dɑɡ, ænd ðɛn ɪt ɹʌnz əweɪ."
        remote = chunk_pieces(client.submit(req("a", 0, text)).result(30))
        local = chunk_pieces(engine.submit(req("b", 0, text)).result(30))
        assert len(remote) == len(local) >= 2
        for r, loc in zip(remote, local, strict=True):
            assert np.array_equal(r.audio, loc.audio) and r.offset == loc.offset
            assert np.array_equal(r.durations, loc.durations)
        assert not client._pending  # the last piece let go of the chunk
    finally:
        client.stop()
        server.stop()
        engine.stop()
