"""``--model kokoro-v1.0`` without ``--model-dir``: the official files from the hub.

Against a real HTTP server on 127.0.0.1 in the hub's layout (``hub_server.py``) serving the tiny
model as a ``hexgrad/Kokoro-82M`` lookalike, plus files the download must skip.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from realtime.errors import ModelDownloadError, ModelFileError
from realtime.weights.checkpoint import VOICES_DIR, WEIGHTS_FILE, write_model_dir
from realtime.weights.hub import HUB_DIR, REPO_ID, ensure_hub_model
from realtime.weights.registry import load_model
from realtime.weights.tiny import build_tiny
from tests.engine.hub_server import (
    COMMIT,
    HubState,
    RunningHub,
    closed_port,
    make_files,
    serve_hub,
)

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = ("README.md", "samples/x.wav")
_ISOLATION = {"HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
              "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
_UNSET = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture(scope="module")
def repo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    model, voices = build_tiny()
    src = tmp_path_factory.mktemp("hub-repo") / "model"
    write_model_dir(src, model, voices.packs)
    files = {p.relative_to(src).as_posix(): p.read_bytes()
             for p in sorted(src.rglob("*")) if p.is_file()}
    files["README.md"] = b"# Kokoro-82M\n"
    files["samples/x.wav"] = b"RIFF" + bytes(4000)
    return files


def _isolate(monkeypatch: pytest.MonkeyPatch, home: Path, endpoint: str) -> None:
    """The machine's HF token, home and offline switch stay out; the endpoint is ours."""
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(home))
    for name, value in _ISOLATION.items():
        monkeypatch.setenv(name, value)
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def hub(repo_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Iterator[RunningHub]:
    with serve_hub(HubState(REPO_ID, make_files(repo_files))) as running:
        _isolate(monkeypatch, tmp_path / "hf-home", running.url)
        yield running


def _official_files(files: dict[str, bytes]) -> set[str]:
    return {p for p in files if p not in SKIPPED}


def _fetched(hub: RunningHub) -> list[str]:
    prefix = f"/{REPO_ID}/resolve/{COMMIT}/"
    return [r.path.removeprefix(prefix) for r in hub.state.downloads()]


def test_downloads_the_official_files_then_loads_and_speaks(
        hub: RunningHub, repo_files: dict[str, bytes], tmp_path: Path) -> None:
    lm = load_model("kokoro-v1.0", cache_dir=tmp_path / "cache", device="cpu")

    snapshot = tmp_path / "cache" / HUB_DIR / "models--hexgrad--Kokoro-82M" / "snapshots" / COMMIT
    assert lm.path == snapshot
    assert sorted(lm.voices.names) == ["jf_alpha", "jm_kumo"]
    assert lm.default_voice == "jf_alpha"  # af_heart is not in this repository
    ids = list(lm.model.config.vocab.values())[:6]
    audio = lm.model(ids, lm.voices.style(lm.default_voice, len(ids))).audio
    assert audio.numel() > 0 and bool(torch.isfinite(audio).all())

    assert sorted(_fetched(hub)) == sorted(_official_files(repo_files))
    assert not [r for r in hub.state.seen() if any(s in r.path for s in SKIPPED)]
    assert not [r for r in hub.state.seen() if r.token]
    for name in _official_files(repo_files):
        assert (snapshot / name).read_bytes() == repo_files[name]
    assert not (snapshot / "README.md").exists()


def test_second_start_downloads_nothing_and_offline_uses_the_cache(
        hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = ensure_hub_model(cache, show_progress=False)
    before = len(hub.state.seen())

    assert ensure_hub_model(cache, show_progress=False) == first
    again = hub.state.seen()[before:]
    assert again and all(r.path.startswith("/api/") for r in again)  # metadata only

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    seen = len(hub.state.seen())
    lm = load_model("kokoro-v1.0", cache_dir=cache, device="cpu")
    assert lm.path == first
    assert len(hub.state.seen()) == seen


@pytest.fixture
def big_hub(repo_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Iterator[RunningHub]:
    """The weights file as large as a real transfer needs to be for a resume to show.

    huggingface_hub writes what it reads in blocks of 10 MiB (``DOWNLOAD_CHUNK_SIZE``): a cut
    inside the first block loses it whole and the retry starts again from byte 0, without a
    Range request. These bytes are never loaded as a model, only downloaded and checked.
    """
    files = {**repo_files, WEIGHTS_FILE: random.Random(7).randbytes(24 << 20)}
    with serve_hub(HubState(REPO_ID, make_files(files))) as running:
        _isolate(monkeypatch, tmp_path / "hf-home", running.url)
        yield running


def _weights_gets(hub: RunningHub) -> list[str | None]:
    return [r.range for r in hub.state.downloads() if r.path.endswith(WEIGHTS_FILE)]


def _resumed_at(ranges: list[str | None]) -> int:
    assert ranges[0] is None and ranges[1] is not None
    match = re.fullmatch(r"bytes=(\d+)-", ranges[1])
    assert match is not None, ranges
    return int(match.group(1))


def test_a_cut_download_resumes_with_a_range_request(big_hub: RunningHub, tmp_path: Path) -> None:
    data = big_hub.state.files[WEIGHTS_FILE].data
    big_hub.state.cut_after[WEIGHTS_FILE] = len(data) // 2

    # huggingface_hub retries a short read within the same call, asking for the rest only.
    folder = ensure_hub_model(tmp_path / "cache", show_progress=False)

    ranges = _weights_gets(big_hub)
    assert len(ranges) == 2
    assert 0 < _resumed_at(ranges) <= len(data) // 2
    assert (folder / WEIGHTS_FILE).read_bytes() == data


def test_a_failed_download_is_one_clear_line_and_the_next_call_completes(
        big_hub: RunningHub, tmp_path: Path) -> None:
    data = big_hub.state.files[WEIGHTS_FILE].data
    big_hub.state.cut_after[WEIGHTS_FILE] = len(data) // 2
    big_hub.state.refuse_ranges = True  # the resume attempt fails: the call gives up

    with pytest.raises(ModelDownloadError, match="--model-dir") as err:
        ensure_hub_model(tmp_path / "cache", show_progress=False)
    assert "\n" not in err.value.reason and "503" in err.value.reason

    big_hub.state.refuse_ranges = False
    folder = ensure_hub_model(tmp_path / "cache", show_progress=False)
    assert (folder / WEIGHTS_FILE).read_bytes() == data
    ranges = _weights_gets(big_hub)
    assert _resumed_at(ranges) > 0
    # What huggingface_hub >= 1.x really does: the partial file of a failed call is private to
    # that call and deleted, so the next call fetches the file from its first byte again.
    assert ranges[2:] == [None]
    assert not list((tmp_path / "cache" / HUB_DIR).rglob("*.incomplete"))


def test_corrupt_bytes_are_caught_named_and_removed(
        hub: RunningHub, repo_files: dict[str, bytes], tmp_path: Path) -> None:
    hub.state.corrupt.add(WEIGHTS_FILE)
    cache = tmp_path / "cache"

    with pytest.raises(ModelFileError, match=r"kokoro-v1_0\.pth is corrupt") as err:
        ensure_hub_model(cache, show_progress=False)
    assert not isinstance(err.value, ModelDownloadError)
    blobs = list((cache / HUB_DIR).rglob("blobs/*"))
    good = {f.read_bytes() for f in blobs}
    assert len(blobs) == len(_official_files(repo_files)) - 1  # every file but the bad one
    assert all(data in repo_files.values() for data in good)

    hub.state.corrupt.clear()
    folder = ensure_hub_model(cache, show_progress=False)
    assert (folder / WEIGHTS_FILE).read_bytes() == repo_files[WEIGHTS_FILE]


def test_a_snapshot_without_the_official_layout_is_refused(
        repo_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = {p: d for p, d in repo_files.items() if not p.startswith(VOICES_DIR)}
    with serve_hub(HubState(REPO_ID, make_files(files))) as running:
        _isolate(monkeypatch, tmp_path / "hf-home", running.url)
        with pytest.raises(ModelFileError, match=r"lacks voices/\*\.pt"):
            ensure_hub_model(tmp_path / "cache", show_progress=False)


def test_no_network_fails_at_once_with_one_line_naming_model_dir(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    _isolate(monkeypatch, tmp_path / "hf-home", endpoint)
    start = time.monotonic()
    with pytest.raises(ModelDownloadError) as err:
        load_model("kokoro-v1.0", cache_dir=tmp_path / "cache", device="cpu")
    assert time.monotonic() - start < 5
    reason = err.value.reason
    assert reason.startswith(f"cannot download {REPO_ID} from the Hugging Face hub ({endpoint}): ")
    assert "ConnectError" in reason and "--model-dir DIR" in reason and "\n" not in reason

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelDownloadError, match=r"offline \(HF_HUB_OFFLINE=1\).*--model-dir"):
        ensure_hub_model(tmp_path / "cache", show_progress=False)


def test_cli_without_network_prints_one_error_line_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env.update(_ISOLATION, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}",
               HF_HOME=str(tmp_path / "hf-home"))
    done = subprocess.run(
        [sys.executable, "-m", "realtime", "voices", "--model", "kokoro-v1.0",
         "--cache-dir", str(tmp_path / "cache")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("realtime: error [model_download]: cannot download ")
    assert "--model-dir" in lines[0]
    assert done.stdout == ""
