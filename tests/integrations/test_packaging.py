"""The integrations are optional extras: the server and the core client never import a
framework, and an integration without its extra fails at once, naming the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


def test_server_and_client_import_no_framework() -> None:
    out = python("import sys\n"
                 "import realtime.cli, realtime.client, realtime.server.app, "
                 "realtime.server.processes, realtime.integrations.common\n"
                 "print(sorted({m.split('.')[0] for m in sys.modules} & "
                 "{'pipecat', 'livekit', 'aiohttp', 'openai'}))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["realtime.integrations.pipecat",
                                    "realtime.integrations.livekit"])
def test_integrations_need_no_codecs_nor_torch(module: str) -> None:
    """An agent's machine runs the integration only: no libopus or torch needed there."""
    out = python(f"import sys\nimport {module}\n"
                 "print(sorted({m for m in sys.modules if m.split('.')[0] in "
                 "('torch', 'opuslib')} | {m for m in sys.modules "
                 "if m.startswith(('realtime.codecs', 'realtime.engine'))}))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_pcm16_rates_are_the_codecs() -> None:
    from realtime.codecs.config import SAMPLE_RATES
    from realtime.integrations.common import PCM16_RATES

    assert tuple(SAMPLE_RATES["pcm16"]) == PCM16_RATES


@pytest.mark.parametrize(("module", "framework", "extra"), [
    ("realtime.integrations.pipecat", "pipecat", "pipecat"),
    ("realtime.integrations.livekit", "livekit", "livekit"),
])
def test_integration_without_its_extra(module: str, framework: str, extra: str) -> None:
    # sys.modules[name] = None makes `import name` fail as if it were not installed
    out = python(f"import sys; sys.modules[{framework!r}] = None\nimport {module}")
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and f"pip install 'realtime[{extra}]'" in last
