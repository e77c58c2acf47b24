"""Our server's failures as LiveKit's API errors, chosen so that LiveKit's retry logic does the
right thing: a stream that has pushed no audio yet is retried when ``retryable``.

- an ``error`` message for the stream's context: ``APIStatusError``, 400 and not retryable for
  ``bad_message``, ``unknown_type``, ``bad_value``, ``unknown_voice``, ``too_long``,
  ``context_refused``; 429 retryable for ``rate_limited``, ``too_many_contexts``; 503 retryable
  for ``overloaded``, ``engine_lost``; 500 retryable for ``internal`` and codes we do not know;
- a connection refused with close 1008 (API key, origin): ``APIStatusError`` 401, not
  retryable; with 1013 (full, not serving) or another lost-session code: 503, retryable; a
  handshake (or ``/v1/audio/speech``) refused with an HTTP status: that status;
- a session lost under the stream (1001 drain, 1006, 1011, 1012, 1013): ``APIConnectionError``,
  retryable; no server, a network error: ``APIConnectionError``;
- a wait past its deadline: ``APITimeoutError``.

An ``APIStatusError``'s message is ``realtime <code>: <message>`` and its ``body``
``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import APIConnectionError, APIStatusError

from realtime.client.failover import RECONNECT_CODES, RETRY_STATUSES
from realtime.integrations.common import ServerError

from .pool import ConnectionLost

CLOSE_POLICY = 1008
_STATUS: dict[str, tuple[int, bool]] = {
    **dict.fromkeys(("bad_message", "unknown_type", "bad_value", "unknown_voice", "too_long",
                     "context_refused"), (400, False)),
    **dict.fromkeys(("rate_limited", "too_many_contexts"), (429, True)),
    **dict.fromkeys(("overloaded", "engine_lost"), (503, True)),
}


def status_error(err: ServerError, status: int, retryable: bool) -> APIStatusError:
    return APIStatusError(str(err), status_code=status, retryable=retryable,
                          body={"code": err.code, "message": err.message})


def from_message(msg: dict[str, Any]) -> APIStatusError:
    """A server ``error`` message for a stream's context."""
    err = ServerError.from_message(msg)
    status, retryable = _STATUS.get(err.code, (500, True))
    return status_error(err, status, retryable)


def from_http(err: ServerError) -> APIStatusError:
    """An HTTP refusal (``close_code``: its status), kept as it is."""
    status = err.close_code or 500
    return status_error(err, status, status in RETRY_STATUSES or status >= 500)


def from_refusal(err: ServerError) -> APIStatusError:
    """A connection the server refused (``common.refusal``)."""
    code = err.close_code or 0
    if err.code.startswith("http_"):
        return from_http(err)
    if code == CLOSE_POLICY:
        return status_error(err, 401, False)
    if code in RECONNECT_CODES:
        return status_error(err, 503, True)
    return status_error(err, 400, False)


def from_lost(lost: ConnectionLost) -> APIConnectionError:
    return APIConnectionError(str(lost), retryable=lost.retryable)
