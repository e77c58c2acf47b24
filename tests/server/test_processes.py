"""``realtime serve --workers``: a supervisor, an engine process and session workers, for real
(tiny-random model): faults, restarts, drain, one /metrics, and nothing leaked."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import websockets

from realtime.client import RealtimeClient
from tests.server.conftest import Running, start_processes, stop_server, tiny_config_for_tests

pytestmark = pytest.mark.e2e  # spawns the supervisor, engine and worker processes

LONG = " ".join(f"This is sentence number {i}, and it goes on for a little while."
               for i in range(4))  # about 12 s of audio, sent at real time (max_lead_s)


def ws_url(server: Running) -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


def roles(server: Running) -> dict[str, int]:
    """role -> pid of every live process, from the one /metrics."""
    status, body = server.get("/metrics")
    assert status == 200
    found = re.findall(r'realtime_process_cpu_seconds\{pid="(\d+)",role="([\w-]+)"\}',
                       body.decode())
    return {role: int(pid) for pid, role in found}


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.1)


def children(server: Running) -> list[psutil.Process]:
    assert server.process is not None and server.process.pid is not None
    return psutil.Process(server.process.pid).children()


@pytest.fixture
def processes() -> Iterator[Running]:
    server = start_processes(tiny_config_for_tests(drain_timeout_s=20.0, engine_lost_s=1.5),
                             workers=2)
    server.wait_ready(60)
    wait_for(lambda: {"engine", "worker-0", "worker-1"} <= set(roles(server)), 20,
             "every process in /metrics")
    yield server
    stop_server(server)


async def speak(url: str, text: str) -> tuple[str, int | None]:
    """One utterance: ("done", None); ("closed", close code) when the session closed, whether
    or not an error for a chunk that was waiting came first; ("error", None) when an error
    came and no close followed within 5 s."""
    client = await RealtimeClient.connect(url)
    try:
        await client.start("a", codec="pcm16")
        await client.text(text, "a")
        await client.end("a")
        got = await client.collect("a", until="done")
        if got.messages[-1]["type"] == "done":
            return ("done", None)
        while True:  # an error: a lost engine closes the session next
            await asyncio.wait_for(client.recv(), 5)
    except websockets.ConnectionClosed as closed:
        return ("closed", closed.rcvd.code if closed.rcvd else None)
    except asyncio.TimeoutError:
        return ("error", None)
    finally:
        await client.close()


def test_the_shape(processes: Running) -> None:
    procs = children(processes)
    assert len(procs) == 3  # the engine and two workers
    pids = roles(processes)
    assert {p.pid for p in procs} == {pids["engine"], pids["worker-0"], pids["worker-1"]}
    outcome = run(speak(ws_url(processes), "Hello there. How are you today?"))
    assert outcome == ("done", None)
    for worker in ("worker-0", "worker-1"):  # not even after serving (it took 2.5 s to load)
        maps = " ".join(m.path for m in psutil.Process(pids[worker]).memory_maps())
        assert "libtorch" not in maps, f"{worker} loaded torch"


def test_killed_engine_is_restarted_and_sessions_are_told(processes: Running) -> None:
    before = roles(processes)
    supervisor = psutil.Process(processes.process.pid)  # type: ignore[union-attr]
    fds = supervisor.num_fds()

    async def main() -> None:
        talking = [asyncio.create_task(speak(ws_url(processes), LONG)) for _ in range(4)]
        await asyncio.sleep(1.0)  # mid-stream
        os.kill(before["engine"], signal.SIGKILL)
        outcomes = await asyncio.gather(*talking)
        # The chunks they waited for failed (one engine_lost error per context; whether a
        # session was waiting at the kill depends on the machine's speed), then every session
        # closed with 1011.
        assert all(o == ("closed", 1011) for o in outcomes), outcomes

    run(main())
    assert processes.get("/readyz")[0] == 503  # until the new engine serves
    with pytest.raises(websockets.ConnectionClosed) as refused:
        run(speak(ws_url(processes), "Anyone there?"))
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 1013
    wait_for(lambda: processes.get("/readyz")[0] == 200, 60, "the restarted engine")
    after = roles(processes)
    assert after["engine"] != before["engine"]
    assert after["worker-0"] == before["worker-0"]  # the workers stayed
    assert run(speak(ws_url(processes), "Back again.")) == ("done", None)
    assert len(children(processes)) == 3
    assert supervisor.num_fds() <= fds + 2  # nothing leaked across the restart


@pytest.fixture
def unpaced() -> Iterator[Running]:
    """One worker, no lead bound: a context's chunks all go to the engine at once."""
    server = start_processes(tiny_config_for_tests(engine_lost_s=1.5, max_lead_s=0.0),
                             workers=1)
    server.wait_ready(60)
    yield server
    stop_server(server)


def test_a_killed_engine_is_one_engine_lost_error_per_context(unpaced: Running) -> None:
    """Every chunk a context waits for fails when the engine dies: the client hears it once
    (``engine_lost``, not one ``overloaded`` per chunk), then the close 1011."""
    engine = roles(unpaced)["engine"]

    async def main() -> tuple[list[dict[str, Any]], int | None]:
        client = await RealtimeClient.connect(ws_url(unpaced))
        try:
            await client.start("a", codec="pcm16")
            os.kill(engine, signal.SIGSTOP)  # frozen: no chunk comes back before the kill
            try:
                await client.text(LONG, "a")  # 4 chunks: all submitted (no lead bound)
                await client.end("a")
                await asyncio.sleep(0.3)  # cut and submitted by the worker
            finally:
                os.kill(engine, signal.SIGKILL)
            return [m async for m in client.messages()], client.close_code
        finally:
            await client.close()

    got, close_code = run(main())
    errors = [(m["code"], m.get("context_id")) for m in got if m["type"] == "error"]
    assert errors == [("engine_lost", "a")], got
    assert not any(m["type"] in ("alignment", "metrics") for m in got)  # all was pending
    assert close_code == 1011


def test_sigterm_drains_every_process(processes: Running) -> None:
    """An utterance still arriving (text streamed over 3 s) when SIGTERM comes is finished,
    then its session closes with 1001; then every process exits."""
    pids = [p.pid for p in children(processes)]

    async def main() -> tuple[str, int | None]:
        client = await RealtimeClient.connect(ws_url(processes))
        await client.start("a", codec="pcm16")
        for n, word in enumerate(LONG.split()[:40]):
            await client.text(word + " ", "a")
            await asyncio.sleep(0.075)
            if n == 10:
                processes.process.terminate()  # type: ignore[union-attr]
        await client.end("a")
        got = await client.collect("a", until="done")
        try:
            await client.recv()
        except websockets.ConnectionClosed as closed:
            return got.messages[-1]["type"], closed.rcvd.code if closed.rcvd else None
        return got.messages[-1]["type"], None

    assert run(main()) == ("done", 1001)
    assert processes.process is not None
    processes.process.join(60)
    assert processes.process.exitcode == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() !=
                   psutil.STATUS_ZOMBIE for pid in pids)


def test_a_killed_worker_takes_only_its_own_sessions(processes: Running) -> None:
    before = roles(processes)
    supervisor = psutil.Process(processes.process.pid)  # type: ignore[union-attr]
    fds = supervisor.num_fds()

    async def session() -> tuple[str, websockets.ClientConnection]:
        ws = await websockets.connect(ws_url(processes) + "?codec=pcm16&framing=json")
        await ws.recv()  # ready
        return ws.response.headers["x-realtime-worker"], ws

    async def utterance(ws: websockets.ClientConnection) -> str:
        await ws.send(json.dumps({"type": "text", "text": LONG}))
        await ws.send(json.dumps({"type": "end"}))
        try:
            while json.loads(await ws.recv())["type"] != "done":
                pass
            return "done"
        except websockets.ConnectionClosed:
            return "closed"

    async def main() -> None:
        sessions: list[tuple[str, websockets.ClientConnection]] = []
        for _ in range(40):  # until each worker holds some
            sessions.append(await session())
            held = {w for w, _ in sessions}
            if len(sessions) >= 4 and held == {"worker-0", "worker-1"}:
                break
        assert {w for w, _ in sessions} == {"worker-0", "worker-1"}
        talking = [asyncio.create_task(utterance(ws)) for _, ws in sessions]
        await asyncio.sleep(0.5)
        os.kill(before["worker-0"], signal.SIGKILL)
        outcomes = await asyncio.gather(*talking)
        for (worker, ws), outcome in zip(sessions, outcomes, strict=True):
            assert outcome == ("closed" if worker == "worker-0" else "done"), (worker, outcome)
            await ws.close()

    run(main())
    wait_for(lambda: roles(processes).get("worker-0") not in (None, before["worker-0"]), 30,
             "worker-0 restarted")
    after = roles(processes)
    assert after["engine"] == before["engine"] and after["worker-1"] == before["worker-1"]
    assert len(children(processes)) == 3
    assert supervisor.num_fds() <= fds + 2
    assert run(speak(ws_url(processes), "Still here.")) == ("done", None)
