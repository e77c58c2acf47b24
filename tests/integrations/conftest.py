"""The integrations' tests run the frameworks against our real server on 127.0.0.1 (the tiny
model, in this process), never a fake WebSocket handler. The server requires an API key, and maps
the OpenAI voice names the frameworks' OpenAI clients send by default to the tiny model's
voices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from realtime.weights.registry import LoadedModel
from realtime.weights.tiny import build_tiny
from tests.server.conftest import Running, start_server, stop_server, tiny_config_for_tests

API_KEY = "test-key"
# the frameworks' OpenAI clients default to alloy (pipecat) and ash (LiveKit)
OPENAI_VOICES = ("alloy=jf_alpha", "ash=jm_kumo")


def serve(port: int | None = None, **overrides: object) -> Running:
    """A tiny-model server with the API key and the OpenAI voice names (``overrides``: more
    ServerConfig fields), ready. The tiny model makes audio at Kokoro's rate (24 kHz, 25 ms a
    duration frame), so word times, pacing and interruptions behave as with the real one."""
    model, voices = build_tiny(real_rate=True)
    lm = LoadedModel("tiny", Path("."), model, voices, "jf_alpha")
    config = tiny_config_for_tests(**{"api_keys": (API_KEY,), "openai_voices": OPENAI_VOICES,
                                      **overrides})
    running = start_server(config, lambda cfg: lm, port=port)
    running.wait_ready()
    return running


def ws_url(running: Running) -> str:
    return running.url.replace("http://", "ws://") + "/v1/stream"


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    running = serve()
    yield running
    stop_server(running)
