"""An async client for ``/v1/stream`` (protocol v1): websockets + msgpack, no torch.

```python
async with await RealtimeClient.connect("ws://127.0.0.1:8000/v1/stream") as c:
    await c.text("Hello there! ", context_id="a")
    await c.end("a")
    async for msg in c.messages():
        if msg["type"] == "audio": play(msg["data"])
        if msg["type"] == "done": break
```
Messages come back as dicts with the wire fields; ``data`` is always ``bytes`` (decoded from
base64 in JSON framing).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import msgpack
import websockets
from websockets.asyncio.client import ClientConnection

Framing = Literal["msgpack", "json"]


@dataclass
class Utterance:
    """What ``speak`` collected for one context: audio frames and the other messages."""

    audio: list[bytes] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


class RealtimeClient:
    def __init__(self, ws: ClientConnection, framing: Framing, ready: dict[str, Any]) -> None:
        self.ws = ws
        self.framing = framing
        self.ready = ready

    @classmethod
    async def connect(cls, url: str, *, token: str | None = None, framing: Framing = "msgpack",
                      headers: dict[str, str] | None = None, **query: Any
                      ) -> RealtimeClient:
        """Connect, and wait for ``ready``. ``query``: session defaults (voice, codec, ...)."""
        params = {k: str(v) for k, v in query.items() if v is not None}
        if token is not None:
            params["token"] = token
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        ws = await websockets.connect(url, additional_headers=headers, max_size=None)
        client = cls(ws, framing, {})
        first = await client.recv()
        if first.get("type") != "ready":
            raise ConnectionError(f"expected ready, got {first!r}")
        client.ready = first
        return client

    async def __aenter__(self) -> RealtimeClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- sending -------------------------------------------------------------------------------
    async def send(self, message: dict[str, Any]) -> None:
        if self.framing == "msgpack":
            await self.ws.send(msgpack.packb(message, use_bin_type=True))
        else:
            await self.ws.send(json.dumps(message))

    async def start(self, context_id: str = "default", **settings: Any) -> None:
        await self.send({"type": "start", "context_id": context_id, **settings})

    async def text(self, text: str, context_id: str = "default") -> None:
        await self.send({"type": "text", "context_id": context_id, "text": text})

    async def phonemes(self, phonemes: str, context_id: str = "default") -> None:
        await self.send({"type": "phonemes", "context_id": context_id, "phonemes": phonemes})

    async def flush(self, context_id: str = "default", flush_id: str | None = None) -> None:
        msg: dict[str, Any] = {"type": "flush", "context_id": context_id}
        if flush_id is not None:
            msg["flush_id"] = flush_id
        await self.send(msg)

    async def update(self, context_id: str = "default", **settings: Any) -> None:
        await self.send({"type": "update", "context_id": context_id, **settings})

    async def cancel(self, context_id: str = "default", played_ms: float | None = None) -> None:
        msg: dict[str, Any] = {"type": "cancel", "context_id": context_id}
        if played_ms is not None:
            msg["played_ms"] = played_ms
        await self.send(msg)

    async def end(self, context_id: str = "default") -> None:
        await self.send({"type": "end", "context_id": context_id})

    async def ping(self, id: str | int | None = None) -> None:
        await self.send({"type": "ping", "id": id})

    # -- receiving -----------------------------------------------------------------------------
    async def recv(self) -> dict[str, Any]:
        """The next server message (raises websockets' ConnectionClosed when it is closed)."""
        frame = await self.ws.recv()
        if isinstance(frame, bytes):
            msg = msgpack.unpackb(frame, raw=False)
        else:
            msg = json.loads(frame)
            if isinstance(msg.get("data"), str):
                msg["data"] = base64.b64decode(msg["data"])
        if not isinstance(msg, dict):
            raise ValueError(f"server sent a non-map message: {msg!r}")
        return msg

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Every server message until the connection closes."""
        while True:
            try:
                yield await self.recv()
            except websockets.ConnectionClosed:
                return

    async def speak(self, text: str, context_id: str = "default",
                    **settings: Any) -> Utterance:
        """Open a context, send ``text`` and ``end``, collect until its ``done``."""
        if settings:
            await self.start(context_id, **settings)
        await self.text(text, context_id)
        await self.end(context_id)
        return await self.collect(context_id)

    async def collect(self, context_id: str = "default", until: str = "done") -> Utterance:
        """Collect one context's messages until one of type ``until`` (or an error) for it."""
        out = Utterance()
        while True:
            msg = await self.recv()
            if msg.get("context_id", context_id) != context_id:
                continue
            out.messages.append(msg)
            if msg["type"] == "audio":
                out.audio.append(msg["data"])
            if msg["type"] in (until, "error"):
                return out

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    async def close(self) -> None:
        await self.ws.close()
