"""A LiveKit Agents TTS plugin for a ``realtime`` server (``pip install 'realtime[livekit]'``).

```python
from livekit.agents import AgentSession
from realtime.integrations.livekit import TTS

session = AgentSession(tts=TTS(url="ws://127.0.0.1:8000/v1/stream", voice="af_heart"), ...)
```

``TTS.stream()``: each stream is one protocol context on a pooled WebSocket session (many
streams share one session), with word-aligned transcripts (``TimedString``s) and barge-in
(``aclose()`` cancels the context at once). ``TTS.synthesize()``: ``POST /v1/audio/speech``.
Errors are LiveKit's ``APIStatusError`` / ``APIConnectionError`` / ``APITimeoutError``, so its
retries apply (see ``errors``).

Modules: ``tts`` (the TTS), ``stream`` (streaming), ``chunked`` (HTTP), ``pool`` (shared
sessions, no LiveKit import), ``errors`` (the mapping to LiveKit's errors).
"""

from realtime.integrations import require

require("livekit.agents", "livekit", "realtime.integrations.livekit")

from .chunked import ChunkedStream  # noqa: E402
from .stream import SynthesizeStream  # noqa: E402
from .tts import DEFAULT_URL, TTS  # noqa: E402

__all__ = ["DEFAULT_URL", "TTS", "ChunkedStream", "SynthesizeStream"]
