"""One typed configuration, built at start-up from CLI flags and ``REALTIME_*`` environment
variables, and passed down. Flags win over the environment; the environment over defaults."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from realtime.catalog import DEFAULT_MODEL
from realtime.errors import ConfigError
from realtime.text.languages import AUTO, LANGUAGES
from realtime.voice_names import openai_voices

log = logging.getLogger("realtime")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The engine's settings as given; ``realtime.engine.plan.plan_engine`` resolves them, by
    device, into what the engine runs."""

    device: str = "auto"  # auto (CUDA if present), cpu, cuda[:N]
    threads: int | None = None  # torch CPU threads (None: torch's default)
    dtype: str = "auto"  # auto (float16 on CUDA; CPU: bfloat16 where native, else float32),
    # float32, bfloat16, float16 (CUDA)
    max_batch: int | None = None  # None: by device (1 on the CPU, 128 on a GPU)
    max_frames: float = 12_000.0  # batch x longest estimated frames, without graph buckets
    queue_limit: int = 1024
    warm_up: bool = True
    # Every compiled or captured form off (CUDA graphs, compiled kernels): for debugging.
    eager: bool = False
    # CUDA graphs (GPU only): the static shapes batches are padded to, captured at warm-up
    # (realtime.engine.buckets.GRAPH_BUCKETS).
    cuda_graphs: bool = True
    # On a CPU in float32, the decoder's wide convolutions through the FFT: faster synthesis
    # for more memory (the weights' spectra; docs/lab/2026-11-29-cpu-fft-convolutions.md).
    cpu_fft: bool = True
    # On a CPU, the decoder's norm-and-Snake pairs compiled into fused kernels (torch.compile:
    # needs a C++ compiler and Python's headers; compiled at warm-up).
    cpu_fused_norms: bool = True
    # Windowed decoding (a chunk's audio in pieces): auto (on a CPU), on, off.
    windows: str = "auto"
    window_first_s: float = 1.0  # audio of a chunk's first window
    window_later_s: float = 3.0  # audio of each later window
    # A later window cut short where the generator's measured speed says it would come late.
    window_adaptive: bool = True

    def __post_init__(self) -> None:
        _check_engine(self)


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
        _check_server(self)


# Every value is checked here, and only here (a ConfigError naming the setting).
def _check_engine(e: EngineConfig) -> None:
    if e.dtype not in DTYPES:
        raise ConfigError(f"dtype must be {', '.join(DTYPES)}, got {e.dtype!r}")
    if e.windows not in ("auto", "on", "off"):
        raise ConfigError(f"windows must be auto, on or off, got {e.windows!r}")
    if not (0.1 <= e.window_first_s <= 60 and 0.1 <= e.window_later_s <= 60):
        raise ConfigError(f"window sizes must be 0.1 to 60 s, got first "
                          f"{e.window_first_s}, later {e.window_later_s}")
    if e.max_batch is not None and e.max_batch < 1:
        raise ConfigError(f"max_batch must be at least 1, got {e.max_batch}")
    if e.threads is not None and e.threads < 1:
        raise ConfigError(f"threads must be at least 1, got {e.threads}")


def _check_server(cfg: ServerConfig) -> None:
    if not 0 <= cfg.port < 65536:
        raise ConfigError(f"port must be 0..65535, got {cfg.port}")
    if cfg.max_input_chars < 1:
        raise ConfigError("max_input_chars must be at least 1")
    if not 0 < cfg.egress_low_bytes <= cfg.egress_high_bytes:
        raise ConfigError("need 0 < egress_low_bytes <= egress_high_bytes")
    if cfg.max_sessions < 1:
        raise ConfigError("max_sessions must be at least 1")
    if cfg.workers is not None and cfg.workers < 0:
        raise ConfigError(f"workers must be 0 (one process) or more, got {cfg.workers}")
    if cfg.max_lead_s < 0:
        raise ConfigError(f"max_lead_s must be 0 (off) or more, got {cfg.max_lead_s}")
    if cfg.engine_lost_s <= 0 or cfg.engine_hang_s <= 0:
        raise ConfigError("engine_lost_s and engine_hang_s must be positive")
    if cfg.language != AUTO and cfg.language not in LANGUAGES:
        raise ConfigError(f"language must be {AUTO} or one of {', '.join(LANGUAGES)}, "
                          f"got {cfg.language!r}")
    if not isinstance(cfg.openai_voices, tuple):
        raise ConfigError(f"openai_voices must be name=voice entries, got "
                          f"{cfg.openai_voices!r}; set REALTIME_OPENAI_VOICES="
                          "alloy=af_bella,nova=af_sky")
    openai_voices(cfg.openai_voices)  # raises naming a bad entry
    if cfg.chunk_plan_rtf not in ("auto", "off"):
        try:
            rtf = float(cfg.chunk_plan_rtf)
        except ValueError:
            rtf = -1.0
        if not 0 < rtf < 1:
            raise ConfigError(f"chunk_plan_rtf must be auto, off or a number in (0, 1), "
                              f"got {cfg.chunk_plan_rtf!r}")


ENV_PREFIX = "REALTIME_"
# Read by our other tools, not the server (the client and integrations, deploy/haproxy, the
# tests, make image): no warning where they share an environment.
OTHER_TOOLS = ("REALTIME_API_KEY", "REALTIME_URL", "REALTIME_IMAGE", "REALTIME_CHROMIUM",
               "REALTIME_LB_", "REALTIME_REPLICA_", "REALTIME_TEST_")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _convert(key: str, value: str, kind: object) -> object:
    """An environment variable's text as its field's type (``int | None``, ``Path | None``,
    ``tuple[str, ...]``: comma-separated, ...)."""
    text = kind if isinstance(kind, str) else ""
    try:
        if text.startswith("bool"):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if text.startswith("int"):
            return int(value)
        if text.startswith("float"):
            return float(value)
        if text.startswith("Path"):
            return Path(value)
        if text.startswith("tuple"):
            return tuple(v.strip() for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"{key}: cannot read {value!r} as {text}") from exc
    if text.startswith("str"):
        return value
    raise TypeError(f"no conversion for a field of type {text}")  # a new field's type


def _section(cls: type, env: Mapping[str, str], overrides: Mapping[str, object]
             ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "engine":
            continue
        key = ENV_PREFIX + f.name.upper()
        if overrides.get(f.name) is not None:
            out[f.name] = overrides[f.name]
        elif key in env:
            out[f.name] = _convert(key, env[key], f.type)
    return out


def settings() -> list[tuple[str, str, object]]:
    """Every setting: (environment variable, type, default), ``docs/configuration.md``'s
    list."""
    out = []
    for cls in (ServerConfig, EngineConfig):
        defaults = cls()
        out += [(ENV_PREFIX + f.name.upper(), str(f.type), getattr(defaults, f.name))
                for f in fields(cls) if f.name != "engine"]
    return out


def load_config(overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> ServerConfig:
    """``overrides``: values from CLI flags (None means not given), by field name; engine
    fields too (``device``, ``threads``, ...). ``env``: defaults to ``os.environ``."""
    env = os.environ if env is None else env
    overrides = overrides or {}
    known = {name for name, _, _ in settings()}
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known
                     and not k.startswith(OTHER_TOOLS))
    if unknown:  # a typo, or a setting that was removed: say so rather than ignore it
        log.warning("ignoring unknown setting%s %s (docs/configuration.md lists them)",
                    "s" if len(unknown) > 1 else "", ", ".join(unknown))
    engine = EngineConfig(**_section(EngineConfig, env, overrides))
    return ServerConfig(engine=engine, **_section(ServerConfig, env, overrides))
