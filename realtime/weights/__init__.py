"""Weights: checkpoints, the ONNX import, the embedded model, the hub, the registry, voice packs
and the tiny model. Everything here that reads tensors imports torch."""
