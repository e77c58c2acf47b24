"""The frameworks' own OpenAI TTS clients, unmodified and with their defaults, pointed at our
``/v1``: pipecat's ``OpenAITTSService`` (pcm, voice alloy) in a pipeline run by pipecat's test
runner, and LiveKit's ``openai.TTS`` (mp3 over SSE, voice ash; and pcm). The server is real
(tests/integrations/conftest.py: the tiny model, an API key, alloy and ash mapped to its
voices)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import openai
from livekit.agents import APIStatusError
from livekit.plugins import openai as livekit_openai
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.tests.utils import run_test

from tests.integrations.conftest import API_KEY
from tests.server.conftest import Running

TEXT = "Hello there, this is a test."
RATE = 24000
TIMEOUT_S = 60.0  # every framework call: nothing waits forever
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))


def plausible(seconds: float) -> bool:
    """The tiny model's audio for TEXT (random weights, about 2 s: never empty or runaway)."""
    return 0.3 < seconds < 10.0


def pipecat_frames(server: Running, api_key: str) -> tuple[Sequence[Frame], Sequence[Frame]]:
    async def speak() -> tuple[Sequence[Frame], Sequence[Frame]]:
        # The HTTP client pipecat recommends passing, so that it can be closed: the service
        # never closes the one it would make (its connection would outlive the test's loop).
        http = openai.DefaultAsyncHttpxClient()
        try:
            tts = OpenAITTSService(api_key=api_key, base_url=server.url + "/v1", http_client=http)
            return await run_test(tts, frames_to_send=[TTSSpeakFrame(TEXT)])
        finally:
            await http.aclose()

    return run(speak())


def test_pipecat_openai_tts_speaks_through_our_server(server: Running) -> None:
    down, up = pipecat_frames(server, API_KEY)
    types = [type(f) for f in down]
    assert TTSStartedFrame in types and TTSStoppedFrame in types
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and types.index(TTSStartedFrame) < types.index(TTSAudioRawFrame)
    assert types.index(TTSAudioRawFrame) < len(types) - types[::-1].index(TTSStoppedFrame)
    assert all(f.sample_rate == RATE and f.num_channels == 1 for f in audio)
    total = b"".join(f.audio for f in audio)
    assert len(total) % 2 == 0 and plausible(len(total) / 2 / RATE)
    assert not [f for f in (*down, *up) if isinstance(f, ErrorFrame)]


def test_pipecat_shows_our_error_for_a_wrong_key(server: Running) -> None:
    down, up = pipecat_frames(server, "wrong-key")
    errors = [f for f in (*down, *up) if isinstance(f, ErrorFrame)]
    assert errors and any("missing or wrong API key" in str(f.error) for f in errors)
    assert not [f for f in down if isinstance(f, TTSAudioRawFrame)]


async def livekit_audio(server: Running, api_key: str = API_KEY, **options: Any
                        ) -> tuple[float, int]:
    """Seconds of audio and its rate, from LiveKit's own stream of the synthesis."""
    tts = livekit_openai.TTS(base_url=server.url + "/v1", api_key=api_key, **options)
    try:
        samples, rate = 0, 0
        async with tts.synthesize(TEXT) as stream:
            async for event in stream:
                samples += event.frame.samples_per_channel
                rate = event.frame.sample_rate
        return samples / max(rate, 1), rate
    finally:
        await tts.aclose()


def test_livekit_openai_tts_defaults_mp3_over_sse(server: Running) -> None:
    seconds, rate = run(livekit_audio(server))  # voice ash, mp3, stream_format sse
    assert rate == RATE and plausible(seconds)


def test_livekit_openai_tts_pcm_with_alloy(server: Running) -> None:
    mp3_s, _ = run(livekit_audio(server, voice="alloy"))
    seconds, rate = run(livekit_audio(server, voice="alloy", response_format="pcm"))
    assert rate == RATE and plausible(seconds)
    assert abs(seconds - mp3_s) < 0.1  # the same speech, however it was encoded


def test_livekit_shows_our_error_for_a_wrong_key(server: Running) -> None:
    async def attempt() -> APIStatusError:
        try:
            await livekit_audio(server, api_key="wrong-key")
        except APIStatusError as exc:
            return exc
        raise AssertionError("a wrong key was accepted")

    err = run(attempt())
    assert err.status_code == 401 and "missing or wrong API key" in err.message
