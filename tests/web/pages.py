"""Helpers for driving the web client in Debian's Chromium with Playwright."""

from __future__ import annotations

import json
import os
import re
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = Path(os.environ.get("REALTIME_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("REALTIME_TEST_ARTIFACTS", "test-artifacts"))
FRAME_MS = 20


def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless (a generator for module-scoped fixtures)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make install` installs Debian's chromium"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                               args=["--no-sandbox"])
        yield b
        b.close()


class PageRun:
    """One page with its console errors and the messages it sent on the WebSocket."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.sent: list[dict[str, Any]] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("websocket", lambda ws: ws.on("framesent", self._sent))

    def _sent(self, payload: str | bytes) -> None:
        self.sent.append(json.loads(payload))

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == kind]

    def value(self, figure: str) -> float:
        raw = self.page.get_attribute(f"#{figure}", "data-value")
        assert raw is not None, f"figure {figure} not shown"
        return float(raw)

    def state(self) -> str | None:
        return self.page.get_attribute("#utterance-state", "data-state")

    def wait_state(self, *states: str, timeout_s: float = 60) -> None:
        self.page.wait_for_function(
            "states => states.includes(document.getElementById('utterance-state').dataset.state)",
            arg=list(states), timeout=timeout_s * 1000)

    def events(self, kind: str) -> list[str]:
        return self.page.locator(f"#events li[data-type='{kind}']").all_inner_texts()


def open_page(browser: Browser, url: str, width: int = 1100, init_script: str | None = None,
              setup: Callable[[BrowserContext], None] | None = None) -> PageRun:
    """The page in a new context; ``setup`` runs on the context first (to route, say)."""
    context = browser.new_context(viewport={"width": width, "height": 1000},
                                  is_mobile=width < 500)
    if init_script:
        context.add_init_script(init_script)
    if setup:
        setup(context)
    run = PageRun(context.new_page())
    run.page.goto(url + "/")
    return run


def save_audio(run: PageRun, tmp_path: Path) -> np.ndarray:
    """Press Save audio; the downloaded WAV's samples (48 kHz mono float)."""
    with run.page.expect_download() as download:
        run.page.click("#save")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (48000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def done_audio_ms(run: PageRun) -> float:
    (text,) = [t for t in run.events("done")]
    match = re.search(r"(\d+) ms of audio", text)
    assert match, text
    return float(match.group(1))


def heard_words(run: PageRun) -> tuple[int, int]:
    words = run.page.locator("#transcript .word")
    return run.page.locator("#transcript .word.heard").count(), words.count()


def check_played_through(run: PageRun, text: str) -> dict[str, Any]:
    run.wait_state("played")
    sent = done_audio_ms(run)
    decoded, played = run.value("decoded"), run.value("played")
    # Every Opus packet decoded and played: the page's count matches the server's frames.
    assert sent > 500
    assert abs(decoded - sent) <= 2 * FRAME_MS, (decoded, sent)
    assert abs(played - decoded) <= 2 * FRAME_MS, (played, decoded)
    ttfa, server_ttfa = run.value("ttfa-page"), run.value("ttfa-server")
    assert 0 < server_ttfa < ttfa < 10_000  # the page's wait includes the network and decoding
    heard, total = heard_words(run)
    assert total >= len(text.split()) - 1 and heard == total  # every word lit as it was heard
    assert run.page.locator("#track .word").count() == total  # and placed on the timeline
    assert run.page.locator("#chunks tr").count() >= 1
    assert run.value("batch") >= 1 and run.value("rtf") > 0
    assert run.page.inner_text("#transcript") == text
    return {"sent": sent, "decoded": decoded, "ttfa": ttfa}
