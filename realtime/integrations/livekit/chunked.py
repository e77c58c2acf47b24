"""``ChunkedStream``: ``TTS.synthesize(text)`` over ``POST /v1/audio/speech`` (PCM, streamed).

The endpoint answers PCM at the model's 24 kHz only. At another ``sample_rate`` the audio is
resampled here (LiveKit's own SoX resampler) rather than refused: the TTS promises one rate to
the pipeline for both ``stream()`` and ``synthesize()``, and a developer who asked for 16 kHz
expects both to work; resampling a few seconds of speech costs little next to synthesis.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from livekit import rtc
from livekit.agents import APIConnectionError, APITimeoutError, tts, utils
from livekit.agents.types import APIConnectOptions

from realtime.integrations.common import ServerError
from realtime.kokoro import SAMPLE_RATE
from realtime.text.languages import AUTO

from . import deadline
from .errors import from_http
from .host import Host
from .stream import FRAME_SIZE_MS, GAP_S


class ChunkedStream(tts.ChunkedStream):
    """One ``synthesize()`` request; LiveKit iterates it for ``SynthesizedAudio``."""

    def __init__(self, *, tts: Host, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: Host = tts
        self._opts = tts._opts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        opts = self._opts
        output_emitter.initialize(request_id=utils.shortuuid(), sample_rate=opts.sample_rate,
                                  num_channels=1, mime_type="audio/pcm",
                                  frame_size_ms=FRAME_SIZE_MS)
        body: dict[str, Any] = {"input": self._input_text, "voice": opts.voice,
                                "speed": opts.speed, "response_format": "pcm", "stream": True}
        if opts.language != AUTO:
            body["language"] = opts.language
        timeout = self._conn_options.timeout
        pcm = _Pcm(opts.sample_rate)
        request = self._tts._http().post(
            self._tts.speech_url, json=body, headers=self._tts._headers() or {},
            timeout=aiohttp.ClientTimeout(sock_connect=timeout, sock_read=GAP_S))
        try:
            # the deadline covers the first audio too: the server answers once it has some
            resp = await deadline.within(request, timeout, abandon=lambda r: r.release())
            async with resp:
                if resp.status >= 400:
                    raise from_http(await _http_error(resp))
                async for data in resp.content.iter_any():
                    for piece in pcm.push(data):
                        output_emitter.push(piece)
            for piece in pcm.flush():
                output_emitter.push(piece)
        except asyncio.TimeoutError as e:
            raise APITimeoutError(f"realtime: no audio from {self._tts.speech_url} in time") from e
        except aiohttp.ClientError as e:
            raise APIConnectionError(f"realtime: {self._tts.speech_url}: {e}") from e


async def _http_error(resp: aiohttp.ClientResponse) -> ServerError:
    """The server's OpenAI-shaped ``{"error": {"message", "type", "code"}}``, or the text."""
    text = await resp.text()
    try:
        error = json.loads(text)["error"]
        return ServerError(str(error["code"]), str(error["message"]), close_code=resp.status)
    except (ValueError, KeyError, TypeError):
        return ServerError(f"http_{resp.status}", text.strip() or resp.reason or "",
                           close_code=resp.status)


class _Pcm:
    """PCM16 bytes from 24 kHz to the TTS's rate, whole samples only."""

    def __init__(self, rate: int) -> None:
        self._odd = b""
        self._resampler = (None if rate == SAMPLE_RATE else
                           rtc.AudioResampler(SAMPLE_RATE, rate, num_channels=1))

    def push(self, data: bytes) -> list[bytes]:
        if self._resampler is None:
            return [data]  # the emitter keeps a partial sample for the next push
        data, self._odd = self._odd + data, b""
        if len(data) % 2:
            data, self._odd = data[:-1], data[-1:]
        if not data:
            return []
        return [f.data.tobytes() for f in self._resampler.push(bytearray(data))]

    def flush(self) -> list[bytes]:
        if self._resampler is None:
            return []
        return [f.data.tobytes() for f in self._resampler.flush()]
