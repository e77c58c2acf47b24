"""Integrations with the voice-agent frameworks, each an optional extra:

- ``realtime.integrations.pipecat``: ``RealtimeTTSService``, a pipecat TTS service
  (``pip install 'realtime[pipecat]'``);
- ``realtime.integrations.livekit``: ``TTS``, a LiveKit Agents TTS plugin
  (``pip install 'realtime[livekit]'``).

Both speak protocol v1 over ``/v1/stream`` through ``realtime.client``. Neither the server nor
the core client imports them. See docs/integrations.md.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, integration: str) -> ModuleType:
    """Import a framework's module, or fail at once naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{integration} needs the {extra!r} extra, which is not installed ({e}); "
            f"install it with: pip install 'realtime[{extra}]'") from e
