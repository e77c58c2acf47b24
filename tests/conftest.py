"""Shared fixtures: a tiny random-weight KModel for fast tests, the real model for a few."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from realtime.engine.request import ChunkResult
from realtime.model import KModel, KModelConfig
from realtime.weights.registry import LoadedModel
from realtime.weights.tiny import tiny_config as _tiny_config

# The suite starts many engine processes (`realtime serve` subprocesses, worker and restart
# tests), each of which would compile the CPU's fused norms at warm-up (4-7 s on 2 cores):
# they run eagerly unless a test asks (tests/engine/test_fused.py, the real server's test).
os.environ.setdefault("REALTIME_CPU_FUSED_NORMS", "0")

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of the real model (marker ``real``) is end to end too (marker ``e2e``)."""
    for item in items:
        if item.get_closest_marker("real") is not None:
            item.add_marker(pytest.mark.e2e)


# A small symbol set: enough for tests to write phoneme strings.
TINY_VOCAB = {c: i + 1 for i, c in enumerate(" .,!?abdefhiklmnoprstuvwzæðŋɑɔəɛɪʊʌˈˌː")}


def tiny_config(**overrides: object) -> KModelConfig:
    return _tiny_config(TINY_VOCAB, **overrides)


def tiny_model(seed: int = 0) -> KModel:
    torch.manual_seed(seed)
    # Random weights: the sigmoid sum over max_dur = 8 bins gives about 4 frames per token,
    # so the audio stays short and the tests fast.
    return KModel(tiny_config()).eval()


@pytest.fixture
def tiny() -> KModel:
    return tiny_model()


def quiet_tiny_model(seed: int) -> KModel:
    """A tiny model with a quiet output layer: random weights make exp(magnitude) explode, so
    the last convolution is scaled down until the audio has a speech-like amplitude and audio
    comparisons mean what they mean for real audio."""
    model = tiny_model(seed)
    with torch.no_grad():
        model.decoder.generator.conv_post.weight_g.mul_(0.05)
    return model


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """Wrap ``owner.name`` (for the test) so that every call appends to the list returned."""
    calls: list[int] = []
    real = getattr(owner, name)

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def chunk_pieces(first: ChunkResult, timeout: float = 30) -> list[ChunkResult]:
    """A chunk's results from its first on, following ``next`` (windowed decoding's pieces)."""
    out = [first]
    while out[-1].next is not None:
        out.append(out[-1].next.result(timeout))
    return out


def tiny_loaded() -> LoadedModel:
    """A tiny model (seed 4, a quiet output layer) with two random voices, "a" and "b"."""
    from realtime.weights.voices import VoiceLibrary

    model = quiet_tiny_model(seed=4)
    g = torch.Generator().manual_seed(0)
    voices = VoiceLibrary({"a": torch.randn(510, 1, 32, generator=g),
                           "b": torch.randn(510, 1, 32, generator=g)}, style_width=32)
    return LoadedModel("tiny", Path("."), model, voices, "a")


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir holding the embedded import, made once per test session.

    Set REALTIME_TEST_CACHE to reuse an import across runs (it is checked all the same).
    """
    from realtime.weights.embedded import ensure_embedded_model

    env = os.environ.get("REALTIME_TEST_CACHE")
    root = Path(env) if env else tmp_path_factory.mktemp("realtime-cache")
    ensure_embedded_model(root, show_progress=False)
    return root


@pytest.fixture(scope="session")
def real(real_cache: Path):  # type: ignore[no-untyped-def]
    from realtime.weights.registry import load_model

    torch.set_num_threads(2)
    return load_model("kokoro-v1.0-int8", cache_dir=real_cache, device="cpu")
