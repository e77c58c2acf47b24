"""One typed configuration, built at start-up from CLI flags and ``REALTIME_*`` environment
variables, and passed down. Flags win over the environment; the environment over defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from realtime.catalog import DEFAULT_MODEL
from realtime.engine.buckets import Buckets, parse_sizes
from realtime.errors import ConfigError
from realtime.text.languages import AUTO, LANGUAGES
from realtime.voice_names import openai_voices


@dataclass(frozen=True, slots=True)
class EngineConfig:
    device: str = "auto"  # auto (CUDA if present), cpu, cuda[:N]
    threads: int | None = None  # torch CPU threads (None: torch's default)
    dtype: str = "auto"  # auto (float16 on CUDA; CPU: bfloat16 where native, else float32),
    # float32, bfloat16, float16 (CUDA)
    max_batch: int | None = None  # None: by device (1 on the CPU, 128 on a GPU)
    max_frames: float = 12_000.0  # batch x longest estimated frames, without graph buckets
    queue_limit: int = 1024
    warm_up: bool = True
    # CUDA graphs (GPU only): the static shapes batches are padded to, captured at warm-up.
    cuda_graphs: bool = True
    graph_rows: str = "1,2,4,8,16,32,64,128"
    graph_tokens: str = "32,64,128,256,512"
    graph_frames: str = "64,128,192,256,384,512,768,1024,1536,2048"
    graph_max_cells: int = 16_384  # rows x frames of the largest decoder graph
    # The decoder's norm-and-Snake pairs over padded batches compiled into fused kernels
    # (torch.compile; experimental: docs/engine.md).
    fused_norms: bool = False
    # The decoder over padded batches compiled as one graph (torch.compile, dynamic shapes:
    # elementwise work fused between the convolutions; compiled at warm-up; experimental,
    # for a GPU's batches: docs/engine.md).
    compile_decoder: bool = False
    # On a CPU in float32, the decoder's wide convolutions through the FFT (docs/engine.md):
    # about 1.3x faster synthesis for about 300 MiB more memory.
    cpu_fft: bool = True
    # On a CPU, the decoder's norm-and-Snake pairs compiled into fused kernels (torch.compile:
    # needs a C++ compiler and Python's headers; compiled at warm-up, about 5 s): 1.10x faster
    # synthesis in bfloat16, 1.05x in float32 (docs/engine.md).
    cpu_fused_norms: bool = True
    # Windowed decoding (a chunk's audio in pieces, docs/engine.md): auto (on a CPU), on, off.
    windows: str = "auto"
    window_first_s: float = 1.0  # audio of a chunk's first window
    window_later_s: float = 3.0  # audio of each later window
    window_growth: float = 0.0  # each later window at most this times the one before (0: off)
    # A later window cut short where the generator's measured speed says it would come late.
    window_adaptive: bool = True

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, "
                              f"got {self.dtype!r}")
        if self.windows not in ("auto", "on", "off"):
            raise ConfigError(f"windows must be auto, on or off, got {self.windows!r}")
        if not (0.1 <= self.window_first_s <= 60 and 0.1 <= self.window_later_s <= 60):
            raise ConfigError(f"window sizes must be 0.1 to 60 s, got first "
                              f"{self.window_first_s}, later {self.window_later_s}")
        if self.window_growth != 0 and not 1 <= self.window_growth <= 100:
            raise ConfigError(f"window growth must be 0 (off) or 1 to 100, got "
                              f"{self.window_growth}")
        self.buckets()  # validates the graph shapes

    def windowed(self, device_type: str) -> bool:
        """Whether chunks are decoded in windows on this device (auto: on a CPU only, where a
        chunk runs alone and its decode is long; a GPU decodes a batch in milliseconds)."""
        return self.windows == "on" or (self.windows == "auto" and device_type == "cpu")

    def buckets(self) -> Buckets:
        """The graph buckets these settings describe."""
        return Buckets(parse_sizes(self.graph_rows, "graph_rows"),
                       parse_sizes(self.graph_tokens, "graph_tokens"),
                       parse_sizes(self.graph_frames, "graph_frames"), self.graph_max_cells)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    model: str = DEFAULT_MODEL
    model_dir: Path | None = None
    cache_dir: Path | None = None
    engine: EngineConfig = field(default_factory=EngineConfig)
    voice: str | None = None  # default voice (None: the model's)
    language: str = "auto"  # G2P language; auto: each voice's own (realtime.voice_names)
    max_input_chars: int = 4096  # per HTTP speech request
    api_keys: tuple[str, ...] = ()  # empty: no authentication
    # POST /v1/audio/speech: OpenAI voice names, "name=voice" entries over the built-in table
    # (realtime.voice_names.OPENAI_VOICES). Set by REALTIME_OPENAI_VOICES only (no flag of its own).
    openai_voices: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()  # empty: any Origin
    drain_timeout_s: float = 30.0  # SIGTERM: running contexts may finish this long, then 1001
    # Processes (realtime serve): session workers around an engine process; 0: one process.
    workers: int | None = None  # None: the CPU cores less one (at least 1)
    engine_lost_s: float = 3.0  # a worker hearing no engine heartbeat this long: engine lost
    engine_hang_s: float = 60.0  # one batch running longer: the engine is killed, restarted
    log_level: str = "info"
    # WebSocket sessions.
    max_sessions: int = 64  # beyond it: accepted, then closed 1013
    codec: str = "opus"  # session defaults (a query or `start` overrides them)
    sample_rate: int = 24000
    frame_ms: int = 20
    opus_bitrate: int | None = 32000  # speech needs far less than libopus's default
    max_message_bytes: int = 65536
    max_text_chars: int = 10000
    max_buffered_chars: int = 20000
    max_contexts: int = 16
    rate_messages_per_s: float = 100.0
    rate_burst: int = 200
    idle_timeout_s: float = 300.0  # no message and nothing to synthesise: close 1000
    egress_high_bytes: int = 1 << 20  # queued audio above this: the session stops scheduling
    egress_low_bytes: int = 256 << 10  # ... until it drains below this
    stall_timeout_s: float = 10.0  # one frame not taken by the client for this long: close
    max_lead_s: float = 3.0  # per context, audio sent at most this far ahead of playback; 0: off
    # Cap chunk sizes so each is synthesised while the audio before it plays, planning for this
    # real-time factor: "auto" (measured), "off", or a number in (0, 1). See server/pace.py.
    chunk_plan_rtf: str = "auto"
    web_client: bool = True  # serve the browser client at /
    web_dir: Path | None = None  # its files (None: web_client/ beside the realtime package)

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if self.max_input_chars < 1:
            raise ConfigError("max_input_chars must be at least 1")
        if not 0 < self.egress_low_bytes <= self.egress_high_bytes:
            raise ConfigError("need 0 < egress_low_bytes <= egress_high_bytes")
        if self.max_sessions < 1:
            raise ConfigError("max_sessions must be at least 1")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"workers must be 0 (one process) or more, got {self.workers}")
        if self.max_lead_s < 0:
            raise ConfigError(f"max_lead_s must be 0 (off) or more, got {self.max_lead_s}")
        if self.engine_lost_s <= 0 or self.engine_hang_s <= 0:
            raise ConfigError("engine_lost_s and engine_hang_s must be positive")
        if self.language != AUTO and self.language not in LANGUAGES:
            raise ConfigError(f"language must be {AUTO} or one of {', '.join(LANGUAGES)}, "
                              f"got {self.language!r}")
        if not isinstance(self.openai_voices, tuple):
            raise ConfigError(f"openai_voices must be name=voice entries, got "
                              f"{self.openai_voices!r}; set REALTIME_OPENAI_VOICES="
                              "alloy=af_bella,nova=af_sky")
        openai_voices(self.openai_voices)  # raises naming a bad entry
        if self.chunk_plan_rtf not in ("auto", "off"):
            try:
                rtf = float(self.chunk_plan_rtf)
            except ValueError:
                rtf = -1.0
            if not 0 < rtf < 1:
                raise ConfigError(f"chunk_plan_rtf must be auto, off or a number in (0, 1), "
                                  f"got {self.chunk_plan_rtf!r}")


ENV_PREFIX = "REALTIME_"


def _convert(name: str, value: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(v.strip() for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot read {value!r} as {type(default).__name__}") from exc
    if name.endswith(("MODEL_DIR", "CACHE_DIR", "WEB_DIR")):
        return Path(value)
    if name.endswith(("THREADS", "OPUS_BITRATE", "MAX_BATCH", "WORKERS")):
        try:
            return int(value)
        except ValueError as exc:
            raise ConfigError(f"{name}: expected a number, got {value!r}") from exc
    return value


def _section(cls: type, env: Mapping[str, str], prefix: str,
             overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    defaults = cls()
    for f in fields(cls):
        if f.name == "engine":
            continue
        key = prefix + f.name.upper()
        if f.name in overrides and overrides[f.name] is not None:
            out[f.name] = overrides[f.name]
        elif key in env:
            out[f.name] = _convert(key, env[key], getattr(defaults, f.name))
    return out


def load_config(overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> ServerConfig:
    """``overrides``: values from CLI flags (None means not given), by field name; engine
    fields too (``device``, ``threads``, ...). ``env``: defaults to ``os.environ``."""
    env = os.environ if env is None else env
    overrides = overrides or {}
    engine = EngineConfig(**_section(EngineConfig, env, ENV_PREFIX, overrides))
    return ServerConfig(engine=engine, **_section(ServerConfig, env, ENV_PREFIX, overrides))
