"""The engine in this process: load the model, build the runner and policy for its device, and
start the loop. The engine process of ``realtime serve --workers`` runs the same."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import torch

from realtime.config import EngineConfig, ServerConfig
from realtime.engine.client import EngineClient, EngineSource
from realtime.engine.loop import Engine
from realtime.engine.plan import EnginePlan, Kernels, plan_engine
from realtime.engine.policy import EDFPolicy
from realtime.engine.runner.runner import ModelRunner, cpu_compile_missing, native_bf16
from realtime.weights.registry import LoadedModel, load_model

log = logging.getLogger("realtime.engine")


def engine_plan(cfg: EngineConfig, device: torch.device, kernels: Kernels | None = None
                ) -> EnginePlan:
    """``cfg`` resolved for ``device`` (``realtime.engine.plan``), with this machine's facts;
    ``kernels``: instead of the plan's own (the GPU check's candidates)."""
    plan = plan_engine(cfg, str(device), native_bf16=device.type == "cpu" and native_bf16(),
                       compile_missing=cpu_compile_missing() if device.type == "cpu" else None)
    return plan if kernels is None else replace(plan, kernels=kernels)


def build_runner(lm: LoadedModel, plan: EnginePlan) -> ModelRunner:
    """The runner ``plan`` describes over ``lm``."""
    return ModelRunner(lm, plan.dtype, plan.buckets, plan.windows,  # type: ignore[arg-type]
                       kernels=plan.kernels)


def start_engine(lm: LoadedModel, cfg: EngineConfig,
                 status: Callable[[str], None] | None = None,
                 kernels: Kernels | None = None) -> Engine:
    """A started engine over ``lm``, as ``cfg`` resolves on its device (the plan is logged and
    goes to the engine's ``ModelInfo``, which ``/readyz`` reports); warmed up unless
    ``cfg.warm_up`` is off. ``status`` hears what it is doing (for /readyz)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    plan = engine_plan(cfg, lm.device, kernels)
    log.info("engine plan: %s", plan.summary())
    runner = build_runner(lm, plan)
    windows = plan.windows
    policy = EDFPolicy(plan.max_batch, plan.max_frames, buckets=plan.buckets,
                       window_s=None if windows is None else windows.padded_s())
    engine = Engine(runner, policy, plan.queue_limit,
                    info=replace(runner.info, plan=plan.describe()))
    if status is not None:
        status("warming up the engine and capturing CUDA graphs" if plan.buckets
               else "warming up the engine")
    engine.start(plan.warm_up)
    log.info("engine ready: model %s on %s", lm.name, lm.device)
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
