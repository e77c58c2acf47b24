"""Fixtures of the web client's tests: the server tests' tiny server; one headless Chromium for
the whole package; a server over the test module's ``model`` fixture, and a page on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from realtime.weights.registry import LoadedModel
from tests.server.conftest import (  # noqa: F401  (tiny_server: a fixture, used by name)
    Running,
    start_server,
    stop_server,
    tiny_config_for_tests,
    tiny_server,
)
from tests.web.pages import PageRun, chromium, open_page


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def server(model: LoadedModel) -> Iterator[Running]:
    running = start_server(tiny_config_for_tests(), lambda cfg: model)
    running.wait_ready()
    yield running
    stop_server(running)


@pytest.fixture
def page(browser: Browser, server: Running) -> Iterator[PageRun]:
    run = open_page(browser, server.url)
    run.page.wait_for_selector("#speak:enabled", timeout=30_000)
    yield run
    run.page.context.close()
