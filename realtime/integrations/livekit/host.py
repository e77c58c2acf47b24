"""What the streams use of the ``TTS`` (its options, connections and HTTP session): a base
class of it, so that the streams need not import the module that makes them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import websockets
from livekit.agents import APIConnectionError, APITimeoutError, tts
from livekit.agents.types import APIConnectOptions

from realtime.integrations.common import connect_headers, refusal

from . import deadline
from .errors import from_lost, from_refusal
from .pool import Connection, ConnectionLost, ConnectionPool, Routed


@dataclass(frozen=True, slots=True)
class Options:
    voice: str
    speed: float
    language: str  # ours: auto, en-us, ...
    sample_rate: int


class Host(tts.TTS):
    """The ``TTS``'s state the streams read, and the connections it lends them."""

    _opts: Options
    _url: str
    speech_url: str
    _api_key: str | None
    _pool: ConnectionPool
    _session: aiohttp.ClientSession | None
    _own_session: aiohttp.ClientSession | None
    _model: str

    async def _acquire(self, context_id: str, conn_options: APIConnectOptions
                       ) -> tuple[Connection, asyncio.Queue[Routed], bool, float]:
        """A pooled connection for one more context: (connection, the context's queue,
        reused, seconds waited), or the LiveKit error for why not."""
        began = time.perf_counter()
        try:
            conn, queue, reused = await deadline.within(
                self._pool.acquire(context_id), conn_options.timeout,
                abandon=lambda got: got[0].close(context_id, cancel=False))
        except asyncio.TimeoutError as e:
            raise APITimeoutError(f"realtime: no session from {self._url} in "
                                  f"{conn_options.timeout:g} s") from e
        except ConnectionLost as e:
            raise from_lost(e) from e
        except (OSError, websockets.WebSocketException) as e:
            if (refused := refusal(e)) is not None:
                raise from_refusal(refused) from e
            raise APIConnectionError(f"realtime: cannot connect to {self._url}: {e!r}") from e
        model = conn.client.ready.get("model")
        if isinstance(model, str) and model:
            self._model = model
        return conn, queue, reused, time.perf_counter() - began

    def _headers(self) -> dict[str, str] | None:
        return connect_headers(self._api_key)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._own_session is None:
            self._own_session = aiohttp.ClientSession()
        return self._own_session
