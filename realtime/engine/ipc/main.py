"""The engine process of ``realtime serve --workers``: bind at once (workers see it loading),
load the model, warm up, serve over ZeroMQ until the supervisor says stop.

The supervisor starts it by name (``realtime.server.processes``), so that neither it nor a
session worker imports this module, and with it torch."""

from __future__ import annotations

import logging

import torch

from realtime.config import ServerConfig
from realtime.engine.ipc.channel import Beat, EngineServer
from realtime.engine.runner.local import registry_loader, start_engine
from realtime.process import child_logging, process_gauges, stop_event

log = logging.getLogger("realtime.server")


def engine_main(config: ServerConfig, address: str, beat: Beat) -> None:
    child_logging(config, "engine")
    server = EngineServer(address, beat)
    stop = stop_event()
    engine = start_engine(registry_loader(config), config.engine, server.set_status)
    server.serve(engine)
    gauges = process_gauges("engine")
    device = engine.info.device
    while True:
        memory = None
        if device.startswith("cuda"):
            memory = torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device)
        stats = engine.stats()
        gauges.update(ready=True)
        gauges.engine(stats.queued, stats.running, stats.batches, memory)
        if stop.wait(1.0):
            break
    log.info("engine process stopping")
    server.stop()
    engine.stop()
