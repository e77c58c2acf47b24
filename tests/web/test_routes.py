"""The server's web client routes: the page at /, its modules, and turning it off."""

from __future__ import annotations

import json
from pathlib import Path

from realtime.server.app import DEFAULT_WEB_DIR
from tests.server.conftest import (
    Running,
    start_server,
    stop_server,
    tiny_config_for_tests,
    tiny_kokoro,
)


def serve(**overrides: object) -> Running:
    lm = tiny_kokoro()
    running = start_server(tiny_config_for_tests(**overrides), lambda cfg: lm)
    running.wait_ready()
    return running


def test_the_page_and_its_modules_are_served(tiny_server: Running) -> None:
    status, body = tiny_server.get("/")
    assert status == 200 and b'<script type="module" src="js/main.js">' in body
    assert body == (DEFAULT_WEB_DIR / "index.html").read_bytes()
    for module in ("main.js", "connection.js", "player.js", "playback-worklet.js",
                   "timeline.js", "voices.js"):
        status, body = tiny_server.get(f"/js/{module}")
        assert status == 200 and body == (DEFAULT_WEB_DIR / "js" / module).read_bytes()
    status, _ = tiny_server.get("/nothing-here.js")
    assert status == 404
    status, _ = tiny_server.get("/healthz")  # the API routes still win over the files
    assert status == 200


def test_module_content_type_is_javascript(tiny_server: Running) -> None:
    import urllib.request

    with urllib.request.urlopen(tiny_server.url + "/js/main.js", timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/javascript")


def test_web_client_off() -> None:
    running = serve(web_client=False)
    try:
        status, _ = running.get("/")
        assert status == 404
    finally:
        stop_server(running)


def test_missing_web_dir_says_so(tmp_path: Path) -> None:
    running = serve(web_dir=tmp_path / "nowhere")
    try:
        status, body = running.get("/")
        assert status == 404
        error = json.loads(body)["error"]
        assert "nowhere" in error["message"] and "REALTIME_WEB_DIR" in error["message"]
    finally:
        stop_server(running)


def test_web_dir_serves_another_page(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>our own page</p>")
    running = serve(web_dir=tmp_path)
    try:
        assert running.get("/") == (200, b"<p>our own page</p>")
    finally:
        stop_server(running)
