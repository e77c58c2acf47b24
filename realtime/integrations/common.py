"""What the integrations share, with no framework imported: the server's errors as exceptions,
what a refused connection says, and the mapping from a framework's language codes to ours."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import websockets

from realtime.text.languages import AUTO, language_codes

__all__ = ["PCM16_RATES", "RateBucket", "ServerError", "connect_headers", "refusal",
           "server_language", "word_times"]

# The rates the server's pcm16 codec offers (realtime.codecs.config.SAMPLE_RATES, which a test
# holds this to): written out here because importing the codecs loads libopus and soxr, which an
# agent's machine need not have.
PCM16_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
# Messages kept back from text so that flush, end, cancel and ping always find a token in the
# server's bucket (text is the only message that waits).
RATE_RESERVE = 0.25


class ServerError(Exception):
    """An ``error`` message from the server (``code``: ``unknown_voice``, ``bad_value``,
    ``engine_lost``, ...; ``message``: its text; ``context_id`` when it named one), or a
    connection the server refused or closed (``code``: ``close_<N>`` or ``http_<N>``,
    ``close_code``: the WebSocket close code or HTTP status)."""

    def __init__(self, code: str, message: str, context_id: str | None = None,
                 close_code: int | None = None) -> None:
        super().__init__(f"realtime {code}: {message}")
        self.code = code
        self.message = message
        self.context_id = context_id
        self.close_code = close_code

    @classmethod
    def from_message(cls, msg: Mapping[str, Any]) -> ServerError:
        cid = msg.get("context_id")
        return cls(str(msg.get("code", "internal")), str(msg.get("message", "")),
                   cid if isinstance(cid, str) else None)


def closed_error(closed: websockets.ConnectionClosed) -> ServerError:
    """A closed session as a ``ServerError``: ``close_<code>`` with the server's reason, or
    ``close_1006`` when no close frame came (the connection was lost)."""
    if closed.rcvd is None:
        return ServerError("close_1006", "connection lost", close_code=1006)
    code = closed.rcvd.code
    return ServerError(f"close_{code}", closed.rcvd.reason or "connection closed",
                       close_code=code)


def refusal(exc: BaseException) -> ServerError | None:
    """What a failed connect says, as a ``ServerError``: a close after the handshake (1008 wrong
    API key, 1013 full or not serving) or an HTTP refusal of the handshake (401, 503). None for
    anything else (no server there, a timeout)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, websockets.ConnectionClosed) and cause.rcvd is not None:
            return closed_error(cause)
        if isinstance(cause, websockets.InvalidStatus):
            status = cause.response.status_code
            body = cause.response.body.decode(errors="replace") if cause.response.body else ""
            return ServerError(f"http_{status}", body.strip() or f"HTTP {status}",
                               close_code=status)
        cause = cause.__cause__
    return None


def connect_headers(api_key: str | None) -> dict[str, str] | None:
    """The handshake's headers: the API key as a bearer token (not in the URL, so not in logs)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else None


def server_language(code: str | None) -> str:
    """A framework's language code (``en``, ``en-US``, ``es-MX``, ``pt_BR``, ...) as ours
    (``en-us``, ``es``, ``pt-br``, ...); None or ``auto``: each voice's own. Raises
    ``ValueError`` naming what we speak for a language we do not."""
    if code is None or str(code).strip() == "" or str(code).lower() == AUTO:
        return AUTO
    norm = str(getattr(code, "value", code)).strip().lower().replace("_", "-")
    ours = language_codes()
    if norm in ours:
        return norm
    base, _, region = norm.partition("-")
    if base == "en":
        return "en-gb" if region in ("gb", "uk") else "en-us"
    for lang in ours:
        if lang.split("-")[0] == base:
            return lang
    raise ValueError(f"realtime speaks {', '.join(ours)} (or auto: the voice's own); "
                     f"language {code!r} is not one of them")


def word_times(words: list[Mapping[str, Any]], offset_s: float = 0.0
               ) -> list[tuple[str, float, float]]:
    """An ``alignment`` message's words as (word, start, end) in seconds on the context's
    timeline, shifted by ``offset_s``."""
    return [(str(w["word"]), offset_s + float(w["start_ms"]) / 1000.0,
             offset_s + float(w["end_ms"]) / 1000.0) for w in words]


class RateBucket:
    """A copy of the server's message-rate bucket (``ready.limits``: ``rate_messages_per_s``,
    ``rate_burst``). The server drops messages over the rate and closes a session that keeps
    sending them (1008), so a client whose text deltas come faster than that (a fast LLM's
    tokens) waits for ``wait_s`` and sends what piled up as one ``text``."""

    def __init__(self, limits: Mapping[str, Any]) -> None:
        self.rate = float(limits.get("rate_messages_per_s") or 100.0)
        self.burst = float(limits.get("rate_burst") or 200)
        self.tokens, self.at = self.burst, time.monotonic()

    def take(self) -> None:
        """One message sent."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate) - 1.0
        self.at = now

    def wait_s(self) -> float:
        """Seconds until a ``text`` may go without eating into the reserve kept for control
        messages."""
        tokens = min(self.burst, self.tokens + (time.monotonic() - self.at) * self.rate)
        return max(0.0, (1.0 + RATE_RESERVE * self.burst - tokens) / self.rate)
