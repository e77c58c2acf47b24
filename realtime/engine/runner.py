"""The runner: requests in, audio out, one batch at a time. Besides the model, the only place
that touches torch; the engine loop calls it from its own thread."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, Protocol

import numpy as np
import torch

from realtime.errors import ConfigError

from .registry import LoadedModel
from .request import ChunkRequest

log = logging.getLogger("realtime.engine")

DType = Literal["float32", "bfloat16", "float16"]
_DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16}

RunOutput = tuple[int, np.ndarray, np.ndarray]  # index in the batch, audio, durations

WARM_UP_PHONEMES = ("hˈɛlO.", "ðɪs ɪz ə wˈɔɹm ˈʌp sˈɛntəns, ʤˈʌst tə ɡˈɛt ðə kˈɛɹnᵊlz ɹˈɛdi.")


def default_decoder_batch(device: torch.device) -> int | None:
    """Items per decoder pass, by device, from measurement (docs/engine.md).

    On the CPU the decoder is compute-bound and its activations outgrow the caches: batching it
    costs more per item than it saves, so items are decoded one by one (the batch still shares
    the scheduling and the text side). A GPU takes the whole batch in one pass.
    """
    return 1 if device.type == "cpu" else None


def default_max_batch(device: torch.device) -> int:
    """Chunks per engine batch, by device. On the CPU items are decoded one by one anyway, so
    a batch of one loses no throughput and lets the policy re-choose after every chunk: a new
    context's first chunk then waits behind one chunk, not behind the rest of a batch."""
    return 1 if device.type == "cpu" else 8


class Runner(Protocol):
    def prepare(self, request: ChunkRequest) -> None:
        """Validate a request before it is queued (raise InputError / VoiceError)."""
        ...

    def run(self, batch: Sequence[ChunkRequest]) -> Iterable[RunOutput]:
        """``(index in batch, audio float32 24 kHz, durations int64)`` for every request, each
        as soon as it is ready (a generator lets the engine deliver early items early)."""
        ...

    def warm_up(self) -> None:
        ...


class ModelRunner:
    """Runs batches on a loaded KModel.

    ``decoder_batch``: items per decoder pass (None: the whole batch; 1: item by item).
    ``batch_text``: run the text side over the batch at once (see ``KModel.forward_batch``).
    ``dtype``: ``float32``, or autocast to ``bfloat16`` / ``float16`` (for CUDA; checked
    against float32 by the tests on the CPU with bfloat16, off by default).
    """

    def __init__(self, lm: LoadedModel, decoder_batch: int | None = 1, batch_text: bool = False,
                 dtype: DType = "float32") -> None:
        if dtype != "float32" and dtype not in _DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        if dtype == "float16" and lm.device.type != "cuda":
            raise ConfigError("dtype float16 needs a CUDA device; on the CPU use bfloat16")
        self.lm = lm
        self.decoder_batch = decoder_batch
        self.batch_text = batch_text
        self.dtype = dtype

    def prepare(self, request: ChunkRequest) -> None:
        ids = self.lm.model.phonemes_to_ids(request.phonemes)
        self.lm.model.item(ids, self.lm.voices.style(request.voice, len(ids)), request.speed)

    def run(self, batch: Sequence[ChunkRequest]) -> Iterator[RunOutput]:
        model, voices = self.lm.model, self.lm.voices
        items = []
        for r in batch:
            ids = model.phonemes_to_ids(r.phonemes)
            items.append(model.item(ids, voices.style(r.voice, len(ids)), r.speed, r.seed))
        with self._autocast():
            for i, o in model.iter_batch(items, self.decoder_batch, self.batch_text):
                yield i, o.audio.float().cpu().numpy(), o.durations.cpu().numpy()

    def warm_up(self) -> None:
        """Run the kernels once (first calls allocate and pick algorithms), one size each."""
        voice = self.lm.default_voice
        vocab = self.lm.model.config.vocab
        texts = ["".join(c for c in p if c in vocab) for p in WARM_UP_PHONEMES]
        reqs = [ChunkRequest("warm-up", "warm-up", t, voice, 0.0) for t in texts if t]
        for _ in self.run(reqs[:1]):
            pass
        for _ in self.run(reqs):
            pass
        log.info("engine warmed up on %s (%s)", self.lm.device, self.dtype)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.dtype == "float32":
            yield
            return
        with torch.autocast(self.lm.device.type, dtype=_DTYPES[self.dtype]):
            yield
