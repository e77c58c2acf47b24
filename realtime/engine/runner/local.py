"""The engine in this process: load the model, build the runner and policy for its device, and
start the loop. The engine process of ``realtime serve --workers`` runs the same."""

from __future__ import annotations

import logging
from collections.abc import Callable

from realtime.config import EngineConfig, ServerConfig
from realtime.engine.buckets import Buckets
from realtime.engine.client import EngineClient, EngineSource
from realtime.engine.loop import Engine
from realtime.engine.policy import EDFPolicy
from realtime.engine.runner.runner import ModelRunner, default_max_batch
from realtime.engine.runner.windows import WindowPlan
from realtime.errors import ConfigError
from realtime.weights.registry import LoadedModel, load_model

log = logging.getLogger("realtime.engine")


def build_runner(lm: LoadedModel, cfg: EngineConfig, buckets: Buckets | None = None,
                 windows: WindowPlan | None = None) -> ModelRunner:
    """The runner of ``cfg``'s model settings (precision, CPU kernels, compiled forms) over
    ``lm``, with the static shapes and window plan given (none: each batch at its own shape,
    chunks decoded whole)."""
    return ModelRunner(lm, cfg.dtype, buckets, windows,  # type: ignore[arg-type]
                       fused_norms=cfg.fused_norms, cpu_fft=cfg.cpu_fft,
                       cpu_fused_norms=cfg.cpu_fused_norms, compile_decoder=cfg.compile_decoder)


def start_engine(lm: LoadedModel, cfg: EngineConfig,
                 status: Callable[[str], None] | None = None) -> Engine:
    """A started engine over ``lm``: static shapes and CUDA graphs on a GPU (unless turned
    off), each batch at its own shape on a CPU; warmed up unless ``cfg.warm_up`` is off.
    ``status`` hears what it is doing (for /readyz)."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    windows = (WindowPlan(cfg.window_first_s, cfg.window_later_s, growth=cfg.window_growth,
                          # Timed as rows x frames: a CPU's batches (a GPU's batch of many
                          # rows costs about what one does).
                          adaptive=cfg.window_adaptive and lm.device.type == "cpu")
               if cfg.windowed(lm.device.type) else None)
    max_batch = cfg.max_batch or default_max_batch(lm.device)
    if cfg.compile_decoder and max_batch == 1:
        raise ConfigError("--compile-decoder compiles the decoder for padded batches, and "
                          "batches of one chunk (--max-batch 1, a CPU's default) are never "
                          "padded: raise --max-batch or drop --compile-decoder")
    # Windows are decoded eagerly (the graphs are captured for whole chunks).
    graphs = lm.device.type == "cuda" and cfg.cuda_graphs and windows is None
    buckets = cfg.buckets() if graphs else None
    runner = build_runner(lm, cfg, buckets, windows)
    policy = EDFPolicy(max_batch, cfg.max_frames, buckets=buckets,
                       window_s=None if windows is None else windows.padded_s())
    engine = Engine(runner, policy, cfg.queue_limit)
    if status is not None:
        status("warming up the engine and capturing CUDA graphs" if buckets
               else "warming up the engine")
    engine.start(cfg.warm_up)
    log.info("engine ready: model %s on %s (%s, batches of up to %d%s)", lm.name, lm.device,
             runner.dtype, max_batch, "" if windows is None else
             f"; chunks decoded in windows of {windows.first_s:g} s, then {windows.later_s:g} s"
             + ("" if not windows.growth else
                f" (each at most {windows.growth:g}x the one before)")
             + (", later ones cut to the measured speed" if windows.adaptive else ""))
    return engine


Loader = Callable[[ServerConfig], LoadedModel]


def registry_loader(config: ServerConfig) -> LoadedModel:
    """The model ``config`` names, from the registry."""
    return load_model(config.model, config.model_dir, config.cache_dir, config.engine.device)


def local_engine(loader: Loader = registry_loader) -> EngineSource:
    """The app's engine in this process (``realtime.server.app.create_app``), over the model
    ``loader`` gives."""
    def start(config: ServerConfig, status: Callable[[str], None]) -> EngineClient:
        return start_engine(loader(config), config.engine, status)
    return start
