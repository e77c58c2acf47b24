"""``TTS``: the plugin's entry point (options, the pool, the streams it made)."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import websockets
from livekit.agents import tts
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import is_given

from realtime.client.failover import Reconnect
from realtime.integrations.common import PCM16_RATES, connect_headers, server_language
from realtime.kokoro import MAX_SPEED, MIN_SPEED

from . import deadline
from .chunked import ChunkedStream
from .host import Host, Options
from .pool import ConnectionPool
from .stream import SynthesizeStream

log = logging.getLogger("realtime.integrations.livekit")

DEFAULT_URL = "ws://127.0.0.1:8000/v1/stream"
API_KEY_ENV = "REALTIME_API_KEY"
PCM_RATES = PCM16_RATES


class TTS(Host):
    """Streaming TTS from a ``realtime`` server, with word-aligned transcripts.

    Args:
        url: the server's ``/v1/stream`` WebSocket URL; ``synthesize()`` posts to the
            ``/v1/audio/speech`` next to it (ws -> http, wss -> https).
        voice: a voice the server has (``ready.voices``) or a blend ``af_heart(2)+am_adam(1)``.
        api_key: sent as ``Authorization: Bearer``; default: ``$REALTIME_API_KEY``.
        sample_rate: one of 8000, 16000, 22050, 24000, 44100, 48000 (our ``pcm16`` rates).
        http_session: an ``aiohttp.ClientSession`` for ``synthesize()``; without one the TTS
            opens its own and ``aclose()`` closes it.
        speed: 0.5 to 2.0.
        language: a LiveKit / BCP-47 code (``en``, ``en-GB``, ``es``, ``fr``, ``hi``, ``it``,
            ``pt-BR``, ...); None: each voice's own.
        reconnect: the backoff between connection attempts after a failure or a lost session
            (its delays only: LiveKit's ``conn_options.max_retry`` decides how often to retry).

    ``stream()`` contexts share pooled WebSocket sessions (one per ``max_contexts`` open
    streams); ``prewarm()`` opens one ahead of the first stream.
    """

    def __init__(self, *, url: str = DEFAULT_URL, voice: str = "af_heart",
                 api_key: str | None = None, sample_rate: int = 24000,
                 http_session: aiohttp.ClientSession | None = None, speed: float = 1.0,
                 language: str | None = None, reconnect: Reconnect | None = None) -> None:
        if sample_rate not in PCM_RATES:
            raise ValueError(f"sample_rate {sample_rate} is not one of the server's pcm16 rates: "
                             f"{', '.join(map(str, PCM_RATES))}")
        super().__init__(capabilities=tts.TTSCapabilities(streaming=True,
                                                          aligned_transcript=True),
                         sample_rate=sample_rate, num_channels=1)
        self._opts = Options(voice, _speed(speed), server_language(language), sample_rate)
        self._url = url
        self.speech_url = speech_url(url)
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._pool = ConnectionPool(url, connect_headers(self._api_key), reconnect=reconnect)
        self._session = http_session
        self._own_session: aiohttp.ClientSession | None = None
        self._streams: weakref.WeakSet[SynthesizeStream] = weakref.WeakSet()
        self._prewarming: asyncio.Task[None] | None = None
        self._model = "kokoro"

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "realtime"

    @property
    def pool(self) -> ConnectionPool:
        """The WebSocket sessions the streams share."""
        return self._pool

    def update_options(self, *, voice: NotGivenOr[str] = NOT_GIVEN,
                       speed: NotGivenOr[float] = NOT_GIVEN,
                       language: NotGivenOr[str | None] = NOT_GIVEN) -> None:
        """New options for the streams and requests from now on. Voice and speed also reach
        the streams already open (our ``update``: text not yet synthesised takes them); the
        language does not, as a context's language is fixed when it opens."""
        new_voice = voice if is_given(voice) else None
        new_speed = _speed(speed) if is_given(speed) else None
        self._opts = Options(new_voice or self._opts.voice,
                             self._opts.speed if new_speed is None else new_speed,
                             server_language(language) if is_given(language)
                             else self._opts.language, self._opts.sample_rate)
        if new_voice is not None or new_speed is not None:
            for stream in list(self._streams):
                stream._update(new_voice, new_speed)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
               ) -> SynthesizeStream:
        stream = SynthesizeStream(tts=self, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
                   ) -> ChunkedStream:
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def prewarm(self) -> None:
        """Open a pooled connection in the background (failures are only logged: the first
        stream reports them)."""
        if self._prewarming is None or self._prewarming.done():
            self._prewarming = asyncio.create_task(self._prewarm())

    async def _prewarm(self) -> None:
        try:
            await deadline.within(self._pool.prewarm(), DEFAULT_API_CONNECT_OPTIONS.timeout)
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
            log.warning("realtime: prewarm of %s failed: %r", self._url, e)

    async def __aenter__(self) -> TTS:  # this class, not LiveKit's base, for type checkers
        return self

    async def aclose(self) -> None:
        if self._prewarming is not None:
            self._prewarming.cancel()
        await self._pool.aclose()
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None


def speech_url(url: str) -> str:
    """The HTTP speech endpoint next to a ``/v1/stream`` URL."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1/stream") + "/v1/audio/speech"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _speed(speed: float) -> float:
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed {speed} is outside {MIN_SPEED}..{MAX_SPEED}")
    return float(speed)
