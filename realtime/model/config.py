"""Typed KModel configuration, read from Kokoro's ``config.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from realtime.errors import ConfigError
from realtime.kokoro import MAX_PHONEMES, SAMPLE_RATE  # noqa: F401  (re-exported)


@dataclass(frozen=True, slots=True)
class PLBertConfig:
    """The ALBERT ("PL-BERT") part; passed to ``transformers.AlbertConfig``."""

    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 2048
    max_position_embeddings: int = 512
    num_hidden_layers: int = 12
    dropout: float = 0.1


@dataclass(frozen=True, slots=True)
class ISTFTNetConfig:
    upsample_rates: tuple[int, ...] = (10, 6)
    upsample_kernel_sizes: tuple[int, ...] = (20, 12)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    gen_istft_n_fft: int = 20
    gen_istft_hop_size: int = 5


@dataclass(frozen=True, slots=True)
class KModelConfig:
    """Everything needed to build a KModel. Field names follow Kokoro's config.json."""

    vocab: Mapping[str, int]
    n_token: int = 178
    hidden_dim: int = 512
    style_dim: int = 128
    n_layer: int = 3
    max_dur: int = 50
    dropout: float = 0.2
    text_encoder_kernel_size: int = 5
    n_mels: int = 80
    # Decoder widths: fixed in Kokoro v1.0 (not in its config.json); configurable for small
    # test models and other KModel versions. Written to config.json only when they differ.
    decoder_hidden: int = 1024
    decoder_res: int = 64
    plbert: PLBertConfig = field(default_factory=PLBertConfig)
    istftnet: ISTFTNetConfig = field(default_factory=ISTFTNetConfig)
    # Present in Kokoro's file and unused by the model; kept so that a round trip loses nothing.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def frame_samples(self) -> int:
        """Audio samples per predicted duration frame (600 for Kokoro v1.0)."""
        ist = self.istftnet
        up = 1
        for r in ist.upsample_rates:
            up *= r
        return 2 * up * ist.gen_istft_hop_size

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KModelConfig:
        if not isinstance(raw, Mapping):
            raise ConfigError("model config must be a JSON object")
        required = ("vocab", "n_token", "hidden_dim", "style_dim", "n_layer", "max_dur",
                    "plbert", "istftnet")
        missing = [k for k in required if k not in raw]
        if missing:
            raise ConfigError(f"model config lacks required keys: {', '.join(missing)}")
        vocab = raw["vocab"]
        if not isinstance(vocab, Mapping) or not vocab:
            raise ConfigError("model config 'vocab' must be a non-empty object of symbol -> id")
        n_token = _int(raw, "n_token")
        for sym, idx in vocab.items():
            if not isinstance(idx, int) or not 0 < idx < n_token:
                raise ConfigError(f"vocab id for {sym!r} must be an integer in 1..{n_token - 1}")
        known = {f for f in cls.__dataclass_fields__ if f not in ("extra", "plbert", "istftnet")}
        try:
            plbert = PLBertConfig(**_subset(raw["plbert"], PLBertConfig, "plbert"))
            ist_raw = _subset(raw["istftnet"], ISTFTNetConfig, "istftnet")
            for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
                if key in ist_raw:
                    ist_raw[key] = tuple(int(v) for v in ist_raw[key])
            if "resblock_dilation_sizes" in ist_raw:
                ist_raw["resblock_dilation_sizes"] = tuple(
                    tuple(int(v) for v in d) for d in ist_raw["resblock_dilation_sizes"])
            istftnet = ISTFTNetConfig(**ist_raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model config has a malformed value: {exc}") from exc
        kwargs: dict[str, Any] = {k: raw[k] for k in known if k in raw}
        for key in ("n_token", "hidden_dim", "style_dim", "n_layer", "max_dur",
                    "text_encoder_kernel_size", "n_mels", "decoder_hidden", "decoder_res"):
            if key in kwargs:
                kwargs[key] = _int(raw, key)
        kwargs["vocab"] = dict(vocab)
        extra = {k: v for k, v in raw.items() if k not in known and k not in ("plbert", "istftnet")}
        return cls(plbert=plbert, istftnet=istftnet, extra=extra, **kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> KModelConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"model config not found: {path}") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"model config {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        """The config.json form (Kokoro's layout, lists rather than tuples)."""
        out: dict[str, Any] = dict(self.extra)
        for name in self.__dataclass_fields__:
            if name in ("extra", "plbert", "istftnet", "vocab"):
                continue
            if name in _OPTIONAL and getattr(self, name) == _OPTIONAL[name]:
                continue
            out[name] = getattr(self, name)
        out["plbert"] = asdict(self.plbert)
        ist = asdict(self.istftnet)
        out["istftnet"] = {k: _listify(v) for k, v in ist.items()}
        out["vocab"] = dict(self.vocab)
        return out


_OPTIONAL = {"decoder_hidden": 1024, "decoder_res": 64}


def _int(raw: Mapping[str, Any], key: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"model config '{key}' must be a positive integer, got {value!r}")
    return value


def _subset(raw: Any, cls: type, name: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"model config '{name}' must be an object")
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in raw.items() if k in fields}


def _listify(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_listify(v) for v in value]
    return value
