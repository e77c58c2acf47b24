"""The web client end to end with the real weights: `realtime serve` as a subprocess, Debian's
Chromium plays a streamed answer through WebCodecs Opus, and Whisper transcribes what the page
decoded (downloaded with the page's Save audio)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import soxr
from playwright.sync_api import Browser

from load_tests.server import ServerProcess
from realtime.model import SAMPLE_RATE
from tests.real.conftest import Transcriber, word_error_rate
from tests.web.pages import ARTIFACTS, check_played_through, chromium, open_page, save_audio

pytestmark = pytest.mark.real

TEXT = "Your table for four is booked for Friday evening, and we look forward to seeing you."


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def test_page_streams_real_speech_that_whisper_understands(
        browser: Browser, real_cache: Path, transcribe: Transcriber, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALTIME_CACHE_DIR", str(real_cache))
    with ServerProcess(["--threads", "2"]) as server:
        run = open_page(browser, server.url)
        run.page.wait_for_selector("#speak:enabled", timeout=60_000)
        run.page.fill("#text", TEXT)
        run.page.fill("#rate", "30")  # a fast LLM
        run.page.click("#stream")
        figures = check_played_through(run, TEXT)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        run.page.screenshot(path=str(ARTIFACTS / "web-client-real.png"), full_page=True)
        audio = save_audio(run, tmp_path)
        assert run.errors == []
    heard = transcribe(soxr.resample(audio, 48000, SAMPLE_RATE), tmp_path)
    wer = word_error_rate([TEXT], [heard])
    print(f"page first audio {figures['ttfa']:.0f} ms, audio {figures['sent']:.0f} ms; "
          f"Whisper heard {heard!r} (WER {wer:.0%})")
    assert wer <= 0.25, heard
