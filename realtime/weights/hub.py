"""The official Kokoro-82M files, downloaded from the Hugging Face hub once and checked.

``hexgrad/Kokoro-82M`` holds ``config.json``, ``kokoro-v1_0.pth`` and ``voices/*.pt`` (the
official layout that ``load_model_dir`` reads) beside files we do not fetch. ``huggingface_hub``
keeps them in its cache layout under ``<cache>/hub``: a snapshot folder per commit whose files
link to ``blobs/<etag>``, the etag being the sha256 of an LFS file or the git blob sha1 of a small
one, as the hub announced it. Every file is checked against that name before it is used.

The environment is read at call time, not when ``huggingface_hub`` was imported: ``HF_ENDPOINT``
(a mirror, or the tests' local server), ``HF_HUB_OFFLINE`` and ``HF_HUB_DISABLE_IMPLICIT_TOKEN``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Protocol

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError
from huggingface_hub.utils import httpx
from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

from realtime.errors import ModelDownloadError, ModelFileError
from realtime.weights.checkpoint import CONFIG_FILE, VOICES_DIR, WEIGHTS_FILE
from realtime.weights.embedded import default_cache_dir

log = logging.getLogger("realtime.engine")

REPO_ID = "hexgrad/Kokoro-82M"
# Only the official layout; the repository also holds samples, docs and other formats.
PATTERNS = (CONFIG_FILE, WEIGHTS_FILE, f"{VOICES_DIR}/*.pt")
HUB_DIR = "hub"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "on", "yes", "true"}


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


class _NoBars(hf_tqdm):
    """huggingface_hub's progress bar, always disabled (``show_progress=False``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def ensure_hub_model(cache_dir: Path | None = None, repo_id: str = REPO_ID,
                     revision: str = "main", show_progress: bool = True) -> Path:
    """The snapshot folder of ``repo_id`` in the official layout, downloading what is missing.

    Files come into ``<cache_dir>/hub`` (default ``default_cache_dir()``). A connection that
    drops mid-file is resumed within the call with an HTTP ``Range`` request; the partial file
    of a call that fails is not kept (huggingface_hub >= 1.x), complete files are. With a
    complete snapshot cached, an offline start uses it. Raises ``ModelDownloadError`` (one
    line, naming ``--model-dir``) when the files can be neither found nor downloaded, and
    ``ModelFileError`` when a file does not match the hub's checksum (the bad copy is removed
    first) or the repository lacks one.
    """
    root = (cache_dir or default_cache_dir()) / HUB_DIR
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or None
    offline = _env_true("HF_HUB_OFFLINE")
    try:
        folder = Path(snapshot_download(
            repo_id, revision=revision, cache_dir=root, allow_patterns=list(PATTERNS),
            endpoint=endpoint, local_files_only=offline,
            token=False if _env_true("HF_HUB_DISABLE_IMPLICIT_TOKEN") else None,
            tqdm_class=None if show_progress else _NoBars))
    except (httpx.HTTPError, OSError) as exc:  # HfHubHTTPError and LocalEntryNotFound included
        if offline:
            reason = f"offline (HF_HUB_OFFLINE=1) and no complete copy in {root}"
        else:
            reason = _short_reason(exc)
        raise ModelDownloadError(
            f"cannot download {repo_id} from the Hugging Face hub "
            f"({endpoint or constants.ENDPOINT}): {reason}; with no network, download the files "
            f"elsewhere and pass --model-dir DIR ({', '.join(PATTERNS)})") from exc
    verify_snapshot(folder, repo_id)
    log.info("model files of %s (revision %s) in %s", repo_id, revision, folder)
    return folder


def verify_snapshot(folder: Path, repo_id: str = REPO_ID) -> None:
    """Check that ``folder`` holds the official layout and that each file is what the hub said.

    A file that does not match its etag is removed (blob and link) so the next call fetches it
    again, and ``ModelFileError`` names it.
    """
    voices = sorted((folder / VOICES_DIR).glob("*.pt"))
    missing = [name for name, there in ((CONFIG_FILE, (folder / CONFIG_FILE).is_file()),
                                        (WEIGHTS_FILE, (folder / WEIGHTS_FILE).is_file()),
                                        (f"{VOICES_DIR}/*.pt", bool(voices))) if not there]
    if missing:
        raise ModelFileError(f"{repo_id} at {folder} lacks {', '.join(missing)}: not a model "
                             "in the official layout")
    for path in [folder / CONFIG_FILE, folder / WEIGHTS_FILE, *voices]:
        _verify_file(folder, path)


def _verify_file(folder: Path, path: Path) -> None:
    name = path.relative_to(folder).as_posix()
    if not path.is_symlink():
        # Without symlinks (some Windows set-ups) huggingface_hub moves the blob here: its
        # etag is not kept anywhere we can read, so there is nothing to compare against.
        log.warning("cannot check %s: the hub cache holds a copy, not a link to its blob", name)
        return
    blob = path.resolve()
    etag = blob.name
    if _SHA256.fullmatch(etag):
        kind, got = "sha256", _file_digest(blob, hashlib.sha256())
    elif _GIT_SHA1.fullmatch(etag):
        kind, got = "git blob sha1", _file_digest(
            blob, hashlib.sha1(f"blob {blob.stat().st_size}\0".encode(), usedforsecurity=False))
    else:
        raise ModelFileError(f"cannot check {name} in {folder}: the hub's etag {etag!r} is "
                             "neither a sha256 nor a git sha1")
    if got != etag:
        blob.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        raise ModelFileError(f"downloaded {name} is corrupt: its {kind} is {got}, the hub said "
                             f"{etag}; the bad copy was removed, run again to download it anew")


def _file_digest(path: Path, digest: _Digest) -> str:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _short_reason(exc: BaseException) -> str:
    """One line: huggingface_hub's "not found locally" errors carry the network error as cause."""
    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE
