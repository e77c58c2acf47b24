"""The voice and language menus (``web_client/js/voices.js``) in headless Chromium, against a
real server whose tiny random-weight model has voices of several families and one custom name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from playwright.sync_api import Browser, BrowserContext, WebSocketRoute

from realtime.weights.registry import LoadedModel
from realtime.weights.tiny import build_tiny
from realtime.weights.voices import VoiceLibrary
from tests.server.conftest import Running
from tests.web.pages import PageRun, open_page

pytestmark = pytest.mark.e2e  # a real Chromium

NAMES = ("af_heart", "am_adam", "bf_emma", "ef_dora", "jf_alpha", "narrator")
DEFAULT = "bf_emma"  # not the first family alphabetically: its family must still come first
FAMILIES = [
    ["British English", [["bf_emma", "bf_emma (female)"]]],
    ["American English", [["af_heart", "af_heart (female)"], ["am_adam", "am_adam (male)"]]],
    ["Japanese", [["jf_alpha", "jf_alpha (female)"]]],
    ["Spanish", [["ef_dora", "ef_dora (female)"]]],
    ["Other", [["narrator", "narrator"]]],
]
GROUPS = """select => [...document.querySelectorAll(`${select} optgroup`)].map(
    g => [g.label, [...g.children].map(o => [o.value, o.textContent])])"""


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    weights, tiny = build_tiny(real_rate=True)
    g = torch.Generator().manual_seed(1)
    width = tiny.style_width
    voices = VoiceLibrary({name: torch.randn(510, 1, width, generator=g) for name in NAMES},
                          style_width=width)
    return LoadedModel("tiny-families", Path("."), weights, voices, DEFAULT)


def speak(run: PageRun, text: str) -> None:
    """Speak ``text`` and wait for the utterance to end one way or another."""
    before = len(run.sent_of("start"))
    run.page.fill("#text", text)
    run.page.click("#speak")
    run.page.wait_for_function(
        f"document.querySelectorAll(\"#events li[data-type='done'], "
        f"#events li[data-type='error']\").length > {before}", timeout=30_000)


def hint(run: PageRun) -> tuple[str | None, str]:
    return (run.page.get_attribute("#language-hint", "data-language"),
            run.page.inner_text("#language-hint"))


def test_voices_are_grouped_by_family_with_the_default_chosen(page: PageRun) -> None:
    assert page.page.evaluate(GROUPS, "#voice") == FAMILIES
    assert page.page.input_value("#voice") == DEFAULT
    # The blend's second voice: "none" first (and chosen), then the same groups.
    assert page.page.evaluate(GROUPS, "#voice2") == FAMILIES
    assert page.page.evaluate("document.querySelector('#voice2').options[0].textContent") == "none"
    assert page.page.input_value("#voice2") == ""
    assert page.errors == []


def test_languages_are_offered_by_name_with_auto_first(page: PageRun) -> None:
    options = page.page.evaluate(
        "[...document.querySelectorAll('#language option')].map(o => [o.value, o.textContent])")
    assert options == [
        ["auto", "auto (voice's language)"], ["en-us", "English (US) · en-us"],
        ["en-gb", "English (UK) · en-gb"], ["es", "Spanish · es"], ["fr-fr", "French · fr-fr"],
        ["hi", "Hindi · hi"], ["it", "Italian · it"], ["pt-br", "Portuguese (Brazil) · pt-br"]]
    assert page.page.input_value("#language") == "auto"  # ready.defaults.language


def test_the_chosen_language_goes_in_start_and_the_server_takes_it(page: PageRun) -> None:
    page.page.select_option("#voice", "af_heart")
    page.page.select_option("#language", "es")
    speak(page, "Hola, ¿qué tal?")
    page.page.select_option("#language", "auto")
    speak(page, "Hello there.")
    assert [(s["voice"], s["language"]) for s in page.sent_of("start")] == [
        ("af_heart", "es"), ("af_heart", "auto")]
    assert len(page.events("done")) == 2 and page.events("error") == []
    # A language the server does not know (not one the page offers): the server refuses the
    # page's value, so what the select holds is what the server reads.
    page.page.evaluate("""() => {
        const select = document.getElementById('language');
        select.add(new Option('xx', 'xx'));
        select.value = 'xx';
    }""")
    speak(page, "Not a language.")
    assert page.sent_of("start")[-1]["language"] == "xx"
    # the refused start's error, and (its context not opened) the refusals of what followed
    errors = page.events("error")
    refused = [e for e in errors if "context_refused" in e]
    (error,) = [e for e in errors if e not in refused]
    assert "bad_value" in error and "language" in error
    assert refused and all("bad_value: language" in e for e in refused)
    assert page.state() == "failed"


def test_the_hint_says_which_language_auto_reads_in(page: PageRun) -> None:
    assert hint(page) == ("en-gb", "auto reads this voice as English (UK)")
    page.page.select_option("#voice", "ef_dora")
    assert hint(page) == ("es", "auto reads this voice as Spanish")
    page.page.select_option("#voice", "jf_alpha")  # Japanese voices read English
    assert hint(page) == ("en-us", "auto reads this voice as English (US)")
    page.page.select_option("#voice", "narrator")  # a name outside Kokoro's scheme
    assert hint(page)[0] == "en-us"
    # A blend reads in its heaviest voice's language, the first voice's on a tie.
    page.page.select_option("#voice2", "ef_dora")
    page.page.fill("#mix", "60")
    assert hint(page)[0] == "es"
    page.page.fill("#mix", "50")
    assert hint(page)[0] == "en-us"
    page.page.select_option("#language", "fr-fr")  # the hint still says what auto would do
    assert hint(page)[0] == "en-us"
    assert page.errors == []


def as_older_server(sent: list[dict[str, Any]]) -> Any:
    """A context setup that strips what an older server's `ready` lacks, and keeps what the
    page sends in ``sent``."""

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            msg = json.loads(message)
            if msg["type"] == "ready":
                del msg["voice_info"], msg["languages"]
                msg["defaults"]["language"] = "en-us"
            ws.send(json.dumps(msg))

        def to_server(message: str | bytes) -> None:
            sent.append(json.loads(message))
            server.send(message)

        server.on_message(to_page)
        ws.on_message(to_server)

    def setup(context: BrowserContext) -> None:
        context.route_web_socket(re.compile(r"/v1/stream"), route)

    return setup


def test_an_older_server_gets_a_flat_list_and_no_language(browser: Browser,
                                                          server: Running) -> None:
    sent: list[dict[str, Any]] = []
    run = open_page(browser, server.url, setup=as_older_server(sent))
    run.page.wait_for_selector("#speak:enabled", timeout=30_000)
    assert run.page.locator("#voice optgroup, #voice2 optgroup").count() == 0
    options = run.page.evaluate("[...document.querySelectorAll('#voice option')].map(o => o.value)")
    assert options == list(NAMES)
    assert run.page.input_value("#voice") == DEFAULT
    assert run.page.is_hidden("#language-row")
    assert hint(run) == ("", "")
    run.page.fill("#text", "Hello.")
    run.page.click("#speak")
    run.page.wait_for_selector("#events li[data-type='done']", timeout=30_000)
    (start,) = [m for m in sent if m["type"] == "start"]
    assert "language" not in start and start["voice"] == DEFAULT
    assert run.errors == []
    run.page.context.close()
