"""Memory traffic, counted on any device: the bytes every aten op reads and writes.

A GPU runs the decoder's elementwise passes (norms, activations, masks) as one kernel each,
over activations of [rows, channels, samples / hop]; each pass is bound by memory bandwidth,
not arithmetic. Counting the bytes on a CPU tells what a GPU would wait for (the suite's
proxy in ``tests/engine/test_proxies.py``; ``scripts/traffic.py`` for the real weights).
"""

from __future__ import annotations

import collections
from typing import Any

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["Traffic"]

# Ops that only make views: no memory moves.
_VIEWS = {"view", "_unsafe_view", "transpose", "t", "expand", "unsqueeze", "squeeze", "slice",
          "select", "as_strided", "alias", "detach", "permute", "split", "chunk", "unbind",
          "narrow", "split_with_sizes", "reshape", "lift_fresh", "_reshape_alias"}


class Traffic(TorchDispatchMode):
    """Bytes every aten op reads and writes, as a context manager: its tensor arguments and
    results, a broadcast argument counted by its storage, not its expanded size (a kernel
    reads it once). ``conv_flops``: multiply-adds x 2 of the 1-d convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.by_op: collections.Counter[str] = collections.Counter()
        self.conv_flops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = func.__name__.split(".")[0]
        if name in _VIEWS:
            return out
        tensors = [t for t in pytree.tree_flatten((args, kwargs, out))[0]
                   if isinstance(t, torch.Tensor)]
        moved = sum(min(t.numel() * t.element_size(), t.untyped_storage().nbytes())
                    for t in tensors)
        self.bytes += moved
        self.by_op[name] += moved
        if name == "conv1d":
            weight = args[1]
            self.conv_flops += 2 * out.numel() * weight.shape[1] * weight.shape[2]
        elif name == "conv_transpose1d":
            weight = args[1]
            self.conv_flops += 2 * args[0].numel() * weight.shape[1] * weight.shape[2]
        return out
