"""Import the int8 kokoro-onnx export of Kokoro-82M v1.0 into our KModel's state dicts.

Every weight in the ONNX file is found either by its own name (the exporter kept the PyTorch
name for many, behind an ``encoder.``/``decoder.`` prefix) or, for anonymous initializers, by the
node that consumes it: node names keep the module path (``/encoder/F0.0/conv1/Conv_quant``).
Quantized weights are dequantized with their scale and zero point; LSTM gates are reordered
from ONNX's (i, o, f, c) to PyTorch's (i, f, g, o); transposed Linear weights are transposed
back; weight norm, which the export folded into conv weights, is split again into
``weight_g`` / ``weight_v``. Anything left over is checked to be a known, derived constant,
so a change in the export shows up as an error rather than a silently missing weight.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realtime.errors import ModelFileError, StateDictMismatch

Progress = Callable[[int, int], None]
_FLOAT = 1  # onnx.TensorProto.FLOAT

# The scope the exporter used for each part, and where it sits in our KModel.
_SCOPES = {"bert": "bert", "bert_encoder": "bert_encoder", "predictor": "predictor",
           "text_encoder": "text_encoder"}
# The predictor's F0/N branches and its shared LSTM were traced outside the predictor scope.
_PREDICTOR_TOP = re.compile(r"^(F0|N)(\.\d+)?$|^(F0_proj|N_proj|shared)$")
_WEIGHT_OPS = {"MatMulInteger": 1, "ConvInteger": 1, "Conv": 1, "ConvTranspose": 1,
               "MatMul": 1, "Gather": 0}
# Initializers that are not weights: constants of the graph, or values derived from weights.
_DERIVED = re.compile(
    r"(Constant(_\d+)?_output_0|ConstantOfShape_output_0|Reciprocal(_\d+)?_output_0|"
    r"^splits$|stft\.istft\.stft\.(inverse_basis|window_sum)|onnx::(Slice|Range|Reshape|"
    r"Expand|Unsqueeze|Concat|Gather|Mul|Add|Div|Sub|Pow|Equal|Where|Cast)_\d+$|"
    r"Unsqueeze_output_0)")
# The export's own STFT basis feeds a ConvTranspose like a weight, but belongs to no module.
_STFT_CONSTANT = re.compile(r"stft\.istft\.stft\.")


def module_path(node_name: str) -> str:
    """``/encoder/text_encoder/cnn.0/cnn.0.0/Conv_quant`` -> ``text_encoder.cnn.0.0``."""
    parts = [p for p in node_name.split("/") if p][:-1]
    if parts[:2] == ["decoder", "decoder"]:
        rest = ["decoder", *parts[2:]]
    elif parts and parts[0] == "encoder" and len(parts) > 1:
        head = parts[1]
        if head in _SCOPES:
            rest = [_SCOPES[head], *parts[2:]]
        elif _PREDICTOR_TOP.match(head):
            rest = ["predictor", *parts[1:]]
        else:
            raise ModelFileError(f"ONNX node {node_name!r} is outside any known module")
    else:
        raise ModelFileError(f"ONNX node {node_name!r} is outside any known module")
    out: list[str] = []
    for p in rest:
        # Modules called more than once (ALBERT's shared layer) get ``_1``, ``_2``... scopes.
        p = re.sub(r"_\d+$", "", p)
        # A child's scope repeats its parent's: ``cnn.0`` then ``cnn.0.0`` means ``cnn.0.0``.
        if out and p.startswith(out[-1] + "."):
            out[-1] = p
        else:
            out.append(p)
    return ".".join(out)


def _named_key(init_name: str) -> str | None:
    """``encoder.predictor.F0.0.conv1.bias`` -> ``predictor.F0.0.conv1.bias``."""
    if init_name.startswith("decoder.decoder."):
        return "decoder." + init_name[len("decoder.decoder."):]
    if init_name.startswith("encoder."):
        return init_name[len("encoder."):]
    return None


class _Graph:
    def __init__(self, path: Path) -> None:
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ModelFileError("the 'onnx' package is needed to import an ONNX model") from exc
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # onnx raises DecodeError and friends: wrap them all
            raise ModelFileError(f"cannot read ONNX model {path}: {exc}") from exc
        self._to_array = numpy_helper.to_array
        self.inits = {t.name: t for t in model.graph.initializer}
        self.nodes = list(model.graph.node)
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.used: set[str] = set()

    def array(self, name: str) -> np.ndarray:
        self.used.add(name)
        return np.asarray(self._to_array(self.inits[name]))

    def dequantized(self, name: str, zero_point: str | None, axis0: bool = False) -> np.ndarray:
        """Float weights of initializer ``name`` (plain float, or ``X_quantized``)."""
        if not name.endswith("_quantized"):
            return self.array(name).astype(np.float32)
        base = name[: -len("_quantized")]
        zp_name = base + "_zero_point" if base + "_zero_point" in self.inits else zero_point
        if zp_name is None:
            raise ModelFileError(f"no zero point found for quantized weight {name!r}")
        q = self.array(name).astype(np.float32)
        scale = self.array(base + "_scale").astype(np.float32)
        zp = self.array(zp_name).astype(np.float32)
        if axis0:  # one scale per leading index (an LSTM's direction)
            scale = scale.reshape(-1, *([1] * (q.ndim - 1)))
            zp = zp.reshape(-1, *([1] * (q.ndim - 1)))
        return (q - zp) * scale


def _linear_weight(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.T)  # ONNX MatMul keeps [in, out]


def _lstm_tensors(prefix: str, w: np.ndarray, r: np.ndarray,
                  b: np.ndarray) -> dict[str, np.ndarray]:
    """ONNX LSTM (W [D, in, 4h] here, R [D, h, 4h], B [D, 8h]; gates i, o, f, c) -> torch."""
    h = r.shape[1]
    order = np.concatenate([np.arange(k * h, (k + 1) * h) for k in (0, 2, 3, 1)])
    out: dict[str, np.ndarray] = {}
    for d, suffix in enumerate(("", "_reverse")):
        out[f"{prefix}.weight_ih_l0{suffix}"] = np.ascontiguousarray(w[d].T[order])
        out[f"{prefix}.weight_hh_l0{suffix}"] = np.ascontiguousarray(r[d].T[order])
        out[f"{prefix}.bias_ih_l0{suffix}"] = b[d, : 4 * h][order]
        out[f"{prefix}.bias_hh_l0{suffix}"] = b[d, 4 * h:][order]
    return out


def split_weight_norm(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A folded weight -> (g, v) with ``g * v / ||v|| == w``; all-zero channels stay zero."""
    norm = w.flatten(1).norm(dim=1).view(-1, *([1] * (w.dim() - 1)))
    dead = norm == 0
    # A channel that quantisation zeroed has no direction: v = 1, g = 0 keeps it at zero
    # (v = w, g = |w| would make it 0/0 = NaN).
    v = torch.where(dead, torch.ones_like(w), w)
    return norm.clone(), v.contiguous()


def import_onnx(path: Path, expected: dict[str, torch.Tensor],
                progress: Progress | None = None) -> dict[str, torch.Tensor]:
    """Read the ONNX file at ``path`` into a flat state dict keyed like ``expected``.

    ``expected`` is our KModel's flat state dict (``bert.…``, ``predictor.…``, …); it gives the
    target shapes and says which convs are weight-normed. Raises StateDictMismatch when a
    tensor cannot be found or an initializer cannot be placed.
    """
    g = _Graph(path)
    found: dict[str, np.ndarray] = {}

    def put(key: str, value: np.ndarray) -> None:
        if key in found and not np.array_equal(found[key], value):
            raise ModelFileError(f"two different ONNX tensors map onto {key!r}")
        found[key] = value

    weight_nodes = [n for n in g.nodes if n.op_type in _WEIGHT_OPS or
                    n.op_type == "DynamicQuantizeLSTM"]
    total = len(weight_nodes) + len(g.inits)
    done = 0
    for node in weight_nodes:
        done += 1
        if progress is not None and done % 25 == 0:
            progress(done, total)
        if node.op_type == "DynamicQuantizeLSTM":
            w = g.dequantized(node.input[1], node.input[9], axis0=True)
            r = g.dequantized(node.input[2], node.input[11], axis0=True)
            b = g.array(node.input[3]).astype(np.float32)
            for key, value in _lstm_tensors(module_path(node.name), w, r, b).items():
                put(key, value)
            continue
        idx = _WEIGHT_OPS[node.op_type]
        name = node.input[idx]
        if name not in g.inits or _STFT_CONSTANT.search(name):
            continue  # an activation (e.g. the attention MatMuls) or the export's STFT basis
        zp = None
        if node.op_type in ("ConvInteger", "MatMulInteger") and len(node.input) > 3:
            zp = node.input[3]
        elif node.op_type == "Gather":
            deq = [c for c in g.consumers.get(node.output[0], [])
                   if c.op_type == "DequantizeLinear"]
            zp = deq[0].input[2] if deq and len(deq[0].input) > 2 else None
        w = g.dequantized(name, zp)
        if node.op_type in ("MatMulInteger", "MatMul"):
            w = _linear_weight(w)
        put(module_path(node.name) + ".weight", w)

    for name in g.inits:
        done += 1
        if progress is not None and done % 25 == 0:
            progress(done, total)
        if name in g.used or name.endswith(("_scale", "_zero_point", "_quantized")):
            continue
        named = _named_key(name)
        if named is not None and named in expected:
            put(named, g.array(name).astype(np.float32))
    if progress is not None:
        progress(total, total)

    leftovers = [n for n in g.inits if n not in g.used and not n.endswith(("_scale", "_zero_point"))
                 and not _DERIVED.search(n) and g.inits[n].data_type == _FLOAT
                 and np.prod(g.inits[n].dims, dtype=np.int64) > 1]
    return _assemble(found, expected, leftovers)


def _assemble(found: dict[str, np.ndarray], expected: dict[str, torch.Tensor],
              leftovers: Iterable[str]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    missing, bad_shape = [], []
    for key, ref in expected.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            base = key[: -len("_v")]
            if base not in found:
                missing.append(key)
                continue
            gain, direction = split_weight_norm(torch.from_numpy(found.pop(base)))
            if direction.shape != ref.shape:
                bad_shape.append(f"{key} {tuple(direction.shape)} != {tuple(ref.shape)}")
                continue
            out[key], out[base + "_g"] = direction, gain
            continue
        if key not in found:
            missing.append(key)
            continue
        value = torch.from_numpy(np.ascontiguousarray(found.pop(key)))
        if value.shape != ref.shape:
            if value.numel() == ref.numel():  # e.g. [1, C, 1] alphas, [C] vs [1, C]
                value = value.reshape(ref.shape)
            else:
                bad_shape.append(f"{key} {tuple(value.shape)} != {tuple(ref.shape)}")
                continue
        out[key] = value.float()
    unexpected = sorted(found) + [f"(onnx) {n}" for n in leftovers]
    if missing or unexpected or bad_shape:
        raise StateDictMismatch("onnx import", missing, unexpected, bad_shape)
    return out
