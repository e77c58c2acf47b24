"""The web client in a real headless Chromium (Debian's, driven by Playwright) against a real
server on a free port serving a tiny random-weight model at the real model's audio rate (75 ms
a phoneme), so the page decodes and plays seconds of real Opus in real time.

Screenshots go to ``test-artifacts/`` (``REALTIME_TEST_ARTIFACTS`` to change it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser

from realtime.weights.registry import LoadedModel
from realtime.weights.tiny import build_tiny
from tests.server.conftest import Running, start_server, stop_server, tiny_config_for_tests
from tests.web.pages import (
    ARTIFACTS,
    PageRun,
    check_played_through,
    open_page,
    save_audio,
)

pytestmark = pytest.mark.e2e  # a real Chromium


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    weights, voices = build_tiny(real_rate=True)
    return LoadedModel("tiny-random", Path("."), weights, voices, "jf_alpha")


def test_speak_plays_every_frame_and_lights_every_word(page: PageRun, tmp_path: Path) -> None:
    text = "Your table for four is booked at seven."
    page.page.fill("#text", text)
    page.page.click("#speak")
    figures = check_played_through(page, text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / "web-client.png"), full_page=True)
    audio = save_audio(page, tmp_path)
    assert len(audio) == round(figures["decoded"] * 48)  # every decoded sample, at 48 kHz
    assert 0.01 < float(np.abs(audio).max()) <= 1.0
    assert page.errors == []


def test_stream_like_an_llm_sends_tokens_and_plays_them(page: PageRun) -> None:
    text = "Sure, the total comes to $86.50 today."
    # The page's tokenizer: deltas that join back to the text, several per word.
    tokens = page.page.evaluate(
        "async t => (await import('/js/connection.js')).tokenize(t)", text)
    assert "".join(tokens) == text and len(tokens) >= len(text.split())
    page.page.fill("#text", text)
    page.page.fill("#rate", "40")
    page.page.click("#stream")
    check_played_through(page, text)
    assert page.errors == []


def test_a_slow_stream_runs_the_buffer_dry_and_the_page_counts_it(page: PageRun) -> None:
    # Two tokens a second cannot keep up with speech: the buffer runs dry between chunks.
    text = "One, two, three, four, five."
    page.page.fill("#text", text)
    page.page.fill("#rate", "2")
    page.page.click("#stream")
    page.wait_state("played", timeout_s=90)
    assert page.value("underruns") >= 1
    assert page.errors == []


LONG = ("This is a long answer that the user will not wait for, because people cut voice agents "
        "off all the time, and the agent has to stop at once.")


def interrupt_after(run: PageRun, played_ms: float) -> tuple[str, str]:
    """Click Interrupt once the page has played ``played_ms``; the ``cancelled`` text split."""
    run.page.wait_for_function(
        f"Number(document.getElementById('played').dataset.value || 0) > {played_ms}",
        timeout=60_000)
    run.page.click("#interrupt")
    assert run.state() == "interrupted"
    run.page.wait_for_selector("#events li[data-type='cancelled']", timeout=10_000)
    (cancelled,) = run.events("cancelled")
    split = re.search(r"spoken “(.*?)”, unspoken “(.*?)”", cancelled, re.S)
    assert split, cancelled
    stopped_at = run.value("played")
    run.page.wait_for_timeout(500)
    assert run.value("played") == stopped_at  # silence at once: nothing more was played
    return split.group(1), split.group(2)


def test_interrupt_mid_stream_stops_tokens_and_audio(page: PageRun) -> None:
    page.page.fill("#text", LONG)
    page.page.fill("#rate", "8")
    page.page.click("#stream")
    spoken, unspoken = interrupt_after(page, 600)
    sent = spoken + unspoken  # all the server received: a prefix, the token stream stopped
    assert LONG.startswith(sent) and len(sent) < len(LONG)
    assert spoken.strip() and LONG.startswith(spoken)
    page.page.wait_for_timeout(500)
    assert page.events("done") == []  # the context was dropped: no more audio, no done
    assert page.errors == []


def test_interrupt_after_the_server_finished_splits_at_what_was_played(page: PageRun) -> None:
    # The server synthesises far faster than real time here, so it has sent everything (and
    # `done`) long before the page has played it: the split still follows playback.
    page.page.fill("#text", LONG)
    page.page.click("#speak")
    spoken, unspoken = interrupt_after(page, 600)
    assert spoken + unspoken == LONG
    assert spoken.strip() and len(unspoken) > len(LONG) // 2
    assert page.errors == []


def test_settings_reach_the_server(page: PageRun) -> None:
    text = "Blend two voices."
    page.page.fill("#text", text)
    page.page.select_option("#voice2", "jm_kumo")
    page.page.fill("#mix", "30")  # range inputs take fill()
    page.page.fill("#speed", "1.5")
    page.page.click("#speak")
    check_played_through(page, text)
    (start,) = page.sent_of("start")
    assert start["voice"] == "jf_alpha(70)+jm_kumo(30)"
    assert start["speed"] == 1.5 and start["codec"] == "opus"
    assert [m["text"] for m in page.sent_of("text")] == [text]
    assert page.sent_of("end")[0]["context_id"] == start["context_id"]
    assert page.errors == []


def test_cancel_carries_what_the_page_played(page: PageRun) -> None:
    page.page.fill("#text", LONG)
    page.page.click("#speak")
    interrupt_after(page, 600)
    (cancel,) = page.sent_of("cancel")
    assert 600 < cancel["played_ms"] <= page.value("played") + 1


def test_without_webcodecs_the_page_falls_back_to_pcm(browser: Browser, server: Running) -> None:
    run = open_page(browser, server.url, init_script="delete window.AudioDecoder;")
    run.page.wait_for_selector("#speak:enabled", timeout=30_000)
    assert run.page.input_value("#codec") == "pcm16"
    assert run.page.is_disabled("#codec option[value='opus']")
    text = "Plain samples work everywhere."
    run.page.fill("#text", text)
    run.page.click("#speak")
    check_played_through(run, text)
    assert run.sent_of("start")[0]["codec"] == "pcm16"
    assert run.errors == []
    run.page.context.close()


def test_token_field_for_a_server_that_wants_one(browser: Browser,
                                                 model: LoadedModel) -> None:
    running = start_server(tiny_config_for_tests(api_keys=("s3cret",)), lambda cfg: model)
    try:
        running.wait_ready()
        run = open_page(browser, running.url)
        run.page.wait_for_function(
            "document.getElementById('status').textContent.includes('1008')", timeout=30_000)
        assert run.page.is_disabled("#speak")
        run.page.fill("#token", "s3cret")
        run.page.click("#connect")
        run.page.wait_for_selector("#speak:enabled", timeout=30_000)
        assert "connected" in run.page.inner_text("#status")
        assert run.errors == []
        run.page.context.close()
    finally:
        stop_server(running)


def test_phone_width_has_no_horizontal_scroll(browser: Browser, server: Running) -> None:
    run = open_page(browser, server.url, width=390)
    run.page.wait_for_selector("#speak:enabled", timeout=30_000)
    width = run.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run.page.screenshot(path=str(ARTIFACTS / "web-client-phone.png"), full_page=True)
    assert run.errors == []
    run.page.context.close()
