"""deploy/haproxy/haproxy.cfg for real: Debian's HAProxy, running the shipped file (its
placeholders are environment variables), in front of two ``realtime serve`` replicas (tiny
model, one process each) on free loopback ports, with ``realtime.client``'s failover.

- sessions spread by connection count; each replica's /metrics through the admin frontend;
- SIGTERM to one replica while sessions stream: its sessions finish their utterances and close
  1001, HAProxy takes it out within about a second (/readyz 503), new sessions go to the
  other, whose sessions are undisturbed;
- ``kill -9`` of one replica: its sessions see the close, reconnect through HAProxy to the
  survivor within 2 s and say what was lost; the others are undisturbed;
- ``scripts/haproxy-trial`` starts the same and stops it all on Ctrl-C.

Replicas are told apart by the header HAProxy adds to the handshake's 101
(``x-realtime-replica``: the server's name); ``x-realtime-worker`` names a process inside one.
Everything started is stopped in the fixtures' ``finally``, also on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from load_tests.server import free_port, wait_ready
from realtime.client import RealtimeClient, Reconnect, Reconnected, SessionLost

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
TRIAL = ROOT / "scripts" / "haproxy-trial"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NAMES = ("replica-1", "replica-2")
REPLICA_ARGS = ["--model", "tiny-random", "--workers", "0", "--threads", "1",
                "--drain-timeout", "20", "--log-level", "warning"]
# Audio is paced at real time per context: an utterance lasts as long as its audio (~3 s a
# sentence here), so the texts stay short.
ONE = "Hello there, nice to meet you."
TWO = "The weather today is sunny with a light breeze. Tomorrow brings rain after lunch."
THREE = TWO + " Take an umbrella if you go out."
POLICY = Reconnect(first_delay_s=0.1, max_delay_s=0.5, attempts=30, give_up_s=15.0)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                       reason="haproxy is not installed (apt-get install haproxy; "
                              "`make install` does)"),
    pytest.mark.timeout(180),
]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:  # not listening (yet)
        return 0, str(err)


@dataclass
class Cluster:
    replicas: dict[str, subprocess.Popen[bytes]]
    haproxy: subprocess.Popen[bytes]
    lb_port: int
    admin_port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.lb_port}/v1/stream"

    def admin(self, path: str) -> tuple[int, str]:
        return get(f"http://127.0.0.1:{self.admin_port}{path}")

    def states(self) -> dict[str, str]:
        """Each replica's state in HAProxy's backend `replicas` (UP, DOWN, `UP 1/2`...)."""
        status, body = self.admin("/stats;csv")
        assert status == 200, body
        rows = csv.DictReader(body.removeprefix("# ").splitlines())
        return {r["svname"]: r["status"] for r in rows
                if r.get("pxname") == "replicas" and r.get("svname") in NAMES}

    def wait_states(self, want: dict[str, str], timeout: float) -> float:
        """Seconds until every replica in ``want`` has that state."""
        start = time.monotonic()
        while True:
            now = self.states()
            if all(now.get(k) == v for k, v in want.items()):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"HAProxy states {now}, waited for {want}")
            time.sleep(0.02)


def haproxy_env(lb_port: int, admin_port: int, replicas: dict[str, int]) -> dict[str, str]:
    return {**os.environ, "REALTIME_LB_BIND": f"127.0.0.1:{lb_port}",
            "REALTIME_LB_ADMIN_BIND": f"127.0.0.1:{admin_port}",
            "REALTIME_REPLICA_1": f"127.0.0.1:{replicas['replica-1']}",
            "REALTIME_REPLICA_2": f"127.0.0.1:{replicas['replica-2']}"}


@contextlib.contextmanager
def running_cluster(tmp_path: Path) -> Iterator[Cluster]:
    procs: list[subprocess.Popen[bytes]] = []
    logs = contextlib.ExitStack()

    def log(name: str) -> IO[bytes]:
        return logs.enter_context(open(tmp_path / f"{name}.log", "wb"))

    try:
        ports = {name: free_port() for name in NAMES}
        replicas = {}
        for name, port in ports.items():
            replicas[name] = subprocess.Popen(
                [sys.executable, "-m", "realtime", "serve", "--host", "127.0.0.1", "--port",
                 str(port), *REPLICA_ARGS], stdout=log(name), stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            procs.append(replicas[name])
        lb_port, admin_port = free_port(), free_port()
        haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)],
                                   env=haproxy_env(lb_port, admin_port, ports),
                                   stdout=log("haproxy"), stderr=subprocess.STDOUT)
        procs.append(haproxy)
        cluster = Cluster(replicas, haproxy, lb_port, admin_port)
        for name, port in ports.items():
            wait_ready(f"http://127.0.0.1:{port}", 120, replicas[name])
        cluster.wait_states(dict.fromkeys(NAMES, "UP"), 20)
        yield cluster
    finally:
        # HAProxy first (a hard stop closes every session), then the replicas, which then
        # have nothing to drain; what does not stop is killed.
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        logs.close()
        for path in sorted(tmp_path.glob("*.log")):  # shown when a test fails
            print(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as running:
        yield running


# -- sessions ------------------------------------------------------------------------------------
@dataclass
class Session:
    """One client through the balancer, and what one utterance brought."""

    client: RealtimeClient
    frames: list[tuple[float, int, float, float]] = field(default_factory=list)
    done: dict[str, Any] | None = None
    lost: SessionLost | None = None
    back: Reconnected | None = None
    first_audio: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def replica(self) -> str:
        return self.client.response_headers["x-realtime-replica"]

    def check_whole(self) -> None:
        """Every frame, in order, up to a `done` that counts them all."""
        assert self.done is not None and self.lost is None
        assert [seq for _, seq, _, _ in self.frames] == list(range(len(self.frames)))
        assert abs(sum(d for *_, d in self.frames) - self.done["audio_ms"]) < 1.0

    def lateness_s(self) -> float:
        """The worst frame's arrival after its playback time (played from the first frame
        on, no jitter buffer): above 0, a listener would have heard a gap."""
        t0 = self.frames[0][0]
        return max(arrival - (t0 + offset / 1000.0) for arrival, _, offset, _ in self.frames)


async def join(cluster: Cluster, opened: list[Session]) -> Session:
    client = await RealtimeClient.connect(cluster.ws_url, reconnect=POLICY, codec="pcm16",
                                          sample_rate=16000)
    opened.append(Session(client))
    return opened[-1]


async def close_all(opened: list[Session]) -> None:
    for s in opened:
        await s.client.close()


def run(scenario: Any, cluster: Cluster) -> dict[str, Any]:
    """``scenario(cluster, opened)``, closing every client it opened, also on failure."""
    async def main() -> dict[str, Any]:
        opened: list[Session] = []
        try:
            result: dict[str, Any] = await asyncio.wait_for(scenario(cluster, opened), 120)
            return result
        finally:
            await close_all(opened)

    return asyncio.run(main())


async def talk(s: Session, text: str, stream: bool, context_id: str = "a",
               recover: bool = False) -> None:
    """Send ``text`` (at once, or word by word at about 30 tokens/s as an LLM would) and
    ``end``; receive until its ``done``. A loss is kept in ``s.lost``; with ``recover``, the
    session reconnects at once (``s.back``) and says what was lost and what was never sent."""

    async def send() -> None:
        if stream:
            for word in text.split(" "):
                await s.client.text(word + " ", context_id)
                await asyncio.sleep(0.03)
        else:
            await s.client.text(text, context_id)
        await s.client.end(context_id)

    async def receive() -> None:
        while True:
            msg = await s.client.recv()
            if msg.get("context_id") != context_id:
                continue
            assert msg["type"] != "error", msg
            if msg["type"] == "audio":
                s.frames.append((time.monotonic(), msg["seq"], msg["offset_ms"],
                                 msg["duration_ms"]))
                s.first_audio.set()
            elif msg["type"] == "done":
                s.done = msg
                return

    sender = asyncio.create_task(send())
    try:
        await receive()
        await sender
    except SessionLost as lost:
        s.lost = lost
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, SessionLost):
            await sender
        if not recover:
            return
        s.back = await s.client.reconnect(lost)
        (ctx,) = s.back.lost
        meant = text + " " if stream else text  # all the text deltas would have made
        rest = ctx.text_unspoken + meant[len(ctx.text):]
        again = Session(s.client)
        await talk(again, rest.strip(), stream=False, context_id=context_id)
        s.done = again.done


async def still_open(s: Session) -> None:
    await s.client.ping(7)
    while (msg := await asyncio.wait_for(s.client.recv(), 5))["type"] != "pong":
        pass
    assert msg["id"] == 7


# -- the tests -----------------------------------------------------------------------------------
def test_the_config_is_valid() -> None:
    out = subprocess.run([HAPROXY, "-c", "-f", str(CONFIG)], capture_output=True, text=True,
                         env=haproxy_env(free_port(), free_port(),
                                         {"replica-1": 8001, "replica-2": 8002}))
    assert out.returncode == 0, out.stderr + out.stdout
    assert "WARNING" not in out.stderr + out.stdout


def test_drain_finishes_every_session_and_moves_new_ones(cluster: Cluster) -> None:
    print("drain:", run(drain, cluster))


async def drain(cluster: Cluster, opened: list[Session]) -> dict[str, Any]:
    sessions = [await join(cluster, opened) for _ in range(6)]
    # leastconn: sessions opened one after another alternate between the replicas
    assert Counter(s.replica for s in sessions) == dict.fromkeys(NAMES, 3)
    for name in NAMES:  # each replica's own /metrics, through the admin frontend
        status, body = await asyncio.to_thread(cluster.admin, f"/replica/{name}/metrics")
        assert status == 200 and re.search(r"^realtime_sessions 3\.0$", body, re.M), body
    assert (await asyncio.to_thread(cluster.admin, "/replica/nope/metrics"))[0] == 404
    talks = [asyncio.create_task(talk(s, TWO, stream=i % 2 == 1))
             for i, s in enumerate(sessions)]
    await asyncio.wait_for(asyncio.gather(*(s.first_audio.wait() for s in sessions)), 30)

    t_term = time.monotonic()
    cluster.replicas["replica-1"].send_signal(signal.SIGTERM)
    down = asyncio.create_task(asyncio.to_thread(cluster.wait_states, {"replica-1": "DOWN"},
                                                 10))
    # New sessions at once: while HAProxy still sends some to the draining replica, that
    # refuses them (1013) and the client tries again.
    newcomers = list(await asyncio.gather(*(join(cluster, opened) for _ in range(4))))
    down_after_s = await down
    assert down_after_s < 3.0  # inter 1 s, fastinter 250 ms, fall 2: about 1.25 s at most
    late = [await join(cluster, opened) for _ in range(2)]  # after HAProxy took it out
    assert all(n.replica == "replica-2" for n in newcomers + late)
    assert all(n.client.attempts == 1 for n in late)
    await asyncio.gather(*(talk(n, ONE, stream=False) for n in newcomers + late))
    for n in newcomers + late:
        n.check_whole()

    await asyncio.gather(*talks)
    draining = [s for s in sessions if s.replica == "replica-1"]
    staying = [s for s in sessions if s.replica == "replica-2"]
    for s in sessions:  # every utterance finished: 100%
        s.check_whole()
    for s in draining:  # then the draining replica closed the session, with nothing lost
        with pytest.raises(SessionLost) as closed:
            await asyncio.wait_for(s.client.recv(), 10)
        assert closed.value.code == 1001 and closed.value.contexts == ()
    for s in staying:
        await still_open(s)
    # It exits once drained (uvicorn re-raises the SIGTERM it caught as it exits: 143).
    exit_code = await asyncio.to_thread(cluster.replicas["replica-1"].wait, 25)
    assert exit_code in (0, -signal.SIGTERM)
    exited_after_s = time.monotonic() - t_term
    return {"finished_on_draining_replica": f"{len(draining)}/{len(draining)}",
            "marked_down_after_s": round(down_after_s, 2),
            "newcomer_attempts": [n.client.attempts for n in newcomers],
            "replica_exited_after_s": round(exited_after_s, 2),
            "worst_lateness_s_staying": round(max(s.lateness_s() for s in staying), 3),
            "worst_lateness_s_draining": round(max(s.lateness_s() for s in draining), 3)}


def test_crash_reconnects_through_the_balancer(cluster: Cluster) -> None:
    print("crash:", run(crash, cluster))


async def crash(cluster: Cluster, opened: list[Session]) -> dict[str, Any]:
    sessions = [await join(cluster, opened) for _ in range(6)]
    assert Counter(s.replica for s in sessions) == dict.fromkeys(NAMES, 3)
    victims = [s for s in sessions if s.replica == "replica-1"]
    talks = [asyncio.create_task(talk(s, THREE, stream=i % 2 == 1, recover=True))
             for i, s in enumerate(sessions)]
    await asyncio.wait_for(asyncio.gather(*(s.first_audio.wait() for s in sessions)), 30)
    await asyncio.sleep(0.5)
    t_kill = time.monotonic()
    os.kill(cluster.replicas["replica-1"].pid, signal.SIGKILL)
    await asyncio.gather(*talks)

    for s in victims:
        assert s.lost is not None and s.lost.code == 1006  # no close frame from a dead one
        assert s.back is not None and s.replica == "replica-2"
        (ctx,) = s.back.lost
        assert ctx.context_id == "a" and ctx.text_unspoken
        assert ctx.text_spoken + ctx.text_unspoken == ctx.text
        assert THREE.startswith(ctx.text.strip())
        assert s.done is not None  # the rest, said again on the survivor
        # reconnected through HAProxy within 2 s of the close
        assert s.back.downtime_s < 2.0, s.back
    for s in sessions:
        if s not in victims:
            s.check_whole()
            await still_open(s)
    assert cluster.states()["replica-1"].startswith("DOWN")
    return {
        "close_seen_after_kill_s": [round(s.back.closed_at - t_kill, 3)
                                    for s in victims if s.back],
        "reconnect_s": [round(s.back.downtime_s, 3) for s in victims if s.back],
        "reconnect_attempts": [s.back.attempts for s in victims if s.back],
        "unspoken_chars": [len(s.back.lost[0].text_unspoken) for s in victims if s.back],
        "worst_lateness_s_others": round(max(s.lateness_s() for s in sessions
                                             if s not in victims), 3)}


def test_the_trial_script_starts_and_stops_everything(tmp_path: Path) -> None:
    lb_port, admin_port = free_port(), free_port()
    with open(tmp_path / "trial.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(TRIAL), "--lb-port", str(lb_port), "--admin-port",
             str(admin_port), "--python", sys.executable, *REPLICA_ARGS],
            stdout=log, stderr=subprocess.STDOUT)
        kids: list[psutil.Process] = []
        try:
            cluster = Cluster({}, proc, lb_port, admin_port)
            end = time.monotonic() + 120
            while get(f"http://127.0.0.1:{lb_port}/lb/healthz")[0] != 200 \
                    or set(cluster.states().values()) != {"UP"}:
                assert proc.poll() is None, (tmp_path / "trial.log").read_text()
                assert time.monotonic() < end, "the trial did not come up"
                time.sleep(0.2)
            kids = psutil.Process(proc.pid).children(recursive=True)
            assert len(kids) == 3  # two replicas and HAProxy

            async def hello(cluster: Cluster, opened: list[Session]) -> dict[str, Any]:
                s = await join(cluster, opened)
                await talk(s, ONE, stream=False)
                s.check_whole()
                return {"replica": s.replica}

            assert run(hello, cluster)["replica"] in NAMES
            status, body = cluster.admin("/metrics")
            assert status == 200 and "haproxy_server_current_sessions" in body
            status, body = cluster.admin("/replica/replica-2/metrics")
            assert status == 200 and "realtime_sessions" in body
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            assert proc.wait(60) == 0
            assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
        finally:
            for p in [*kids, psutil.Process(proc.pid) if proc.poll() is None else None]:
                if p is not None:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
