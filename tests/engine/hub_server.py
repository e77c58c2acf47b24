"""A small Hugging Face hub on 127.0.0.1: one model repository, served as huggingface_hub reads it.

What ``snapshot_download`` asks for (read from huggingface_hub 2.4's source):
- ``GET /api/models/{repo}/revision/{rev}``: ``{"id", "sha", "siblings"}``; ``sha`` pins the commit.
- ``GET /api/models/{repo}/tree/{rev}?recursive=...``: a JSON list of ``{"type": "file" |
  "directory", "path", "oid", "size"}``, files in LFS with ``"lfs": {"oid": sha256, "size",
  "pointerSize"}``. One page (no ``Link`` header).
- ``HEAD /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (the git blob sha1, or for
  LFS files the sha256, also in ``X-Linked-Etag`` with ``X-Linked-Size``), ``Content-Length``,
  ``Accept-Ranges``. No xet headers, so downloads go over plain HTTP.
- ``GET`` of the same URL: the bytes, or ``206`` with ``Content-Range`` for ``Range: bytes=N-[M]``.

It can misbehave on purpose: cut a file's first download after some bytes (the connection is
closed mid-body), refuse ranged requests with ``503``, or serve corrupt bytes of the same size.
Every request is recorded (method, path, Range header, whether a token was sent).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # without the query
    range: str | None
    token: bool


@dataclass(frozen=True, slots=True)
class HubFile:
    data: bytes
    lfs: bool

    @property
    def git_sha1(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data,
                            usedforsecurity=False).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_sha1


@dataclass
class HubState:
    """The repository and the server's (mis)behaviour; tests change it between calls."""

    repo_id: str
    files: dict[str, HubFile]
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes of its next full GET
    refuse_ranges: bool = False
    corrupt: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, req: Request) -> None:
        with self.lock:
            self.requests.append(req)

    def seen(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def downloads(self) -> list[Request]:
        """The file GETs (not metadata) seen so far."""
        return [r for r in self.seen() if r.method == "GET" and "/resolve/" in r.path]


def make_files(files: Mapping[str, bytes], lfs_suffixes: tuple[str, ...] = (".pth", ".pt", ".wav")
               ) -> dict[str, HubFile]:
    return {path: HubFile(data, path.endswith(lfs_suffixes)) for path, data in files.items()}


class _Handler(BaseHTTPRequestHandler):
    server: _HubServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._handle(body=False)

    def do_GET(self) -> None:
        self._handle(body=True)

    def _handle(self, body: bool) -> None:
        state = self.server.state
        path = unquote(urlsplit(self.path).path)
        state.record(Request(self.command, path, self.headers.get("Range"),
                             "authorization" in {k.lower() for k in self.headers}))
        api = f"/api/models/{state.repo_id}/"
        resolve = f"/{state.repo_id}/resolve/"
        if path.startswith(api + "revision/") and body:
            self._json({"id": state.repo_id, "sha": COMMIT,
                        "siblings": [{"rfilename": p} for p in sorted(state.files)]})
        elif path.startswith(api + "tree/") and body:
            self._json(_tree(state.files))
        elif path.startswith(resolve):
            _rev, _, name = path[len(resolve):].partition("/")
            if name in state.files:
                self._file(state, name, body)
            else:
                self._error(404, "EntryNotFound")
        else:
            self._error(404, "RepoNotFound")

    def _file(self, state: HubState, name: str, body: bool) -> None:
        hub_file = state.files[name]
        data = hub_file.data
        if body and name in state.corrupt:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        ranged = _RANGE.match(self.headers.get("Range", "")) if body else None
        if ranged and state.refuse_ranges:
            self._error(503, None)
            return
        start = int(ranged.group(1)) if ranged else 0
        end = int(ranged.group(2)) + 1 if ranged and ranged.group(2) else len(data)
        self.send_response(206 if ranged else 200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hub_file.etag}"')
        if hub_file.lfs:
            self.send_header("X-Linked-Etag", f'"{hub_file.sha256}"')
            self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if not body:
            return
        with state.lock:
            cut = None if ranged else state.cut_after.pop(name, None)
        if cut is None:
            self.wfile.write(data[start:end])
            return
        self.wfile.write(data[:cut])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)  # mid-body: the client sees a short read
        self.close_connection = True

    def _json(self, payload: object) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, code: str | None) -> None:
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _tree(files: Mapping[str, HubFile]) -> list[dict[str, object]]:
    dirs = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
    out: list[dict[str, object]] = [
        {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode(),
                                                            usedforsecurity=False).hexdigest(),
         "size": 0} for d in dirs]
    for path, f in sorted(files.items()):
        entry: dict[str, object] = {"type": "file", "path": path, "oid": f.git_sha1,
                                    "size": len(f.data)}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}
        out.append(entry)
    return out


class _HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: HubState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass(frozen=True, slots=True)
class RunningHub:
    url: str
    state: HubState


@contextmanager
def serve_hub(state: HubState) -> Iterator[RunningHub]:
    """Serve ``state`` on a free port of 127.0.0.1 until the block ends."""
    server = _HubServer(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="hub-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield RunningHub(f"http://{host!s}:{port}", state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A port of 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
