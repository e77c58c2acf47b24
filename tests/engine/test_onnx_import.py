"""The ONNX import's pieces, checked against independent references (onnxruntime, torch)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from realtime.model.layers import WNConv1d
from realtime.weights.onnx_import import _lstm_tensors, module_path, split_weight_norm


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ("/encoder/text_encoder/cnn.0/cnn.0.0/Conv_quant", "text_encoder.cnn.0.0"),
        ("/encoder/F0.1/pool/ConvTranspose", "predictor.F0.1.pool"),
        ("/encoder/shared/LSTM_quant", "predictor.shared"),
        ("/encoder/N_proj/Conv_quant", "predictor.N_proj"),
        ("/encoder/predictor/text_encoder/lstms.0/LSTM_quant", "predictor.text_encoder.lstms.0"),
        ("/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/attention_3/query/MatMul_quant",
         "bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query"),
        ("/decoder/decoder/asr_res/asr_res.0/Conv_quant", "decoder.asr_res.0"),
        ("/decoder/decoder/generator/resblocks.4/convs2.1/Conv_quant",
         "decoder.generator.resblocks.4.convs2.1"),
        ("/encoder/bert_encoder/MatMul_quant", "bert_encoder"),
    ],
)
def test_module_path(node: str, path: str) -> None:
    assert module_path(node) == path


def test_lstm_gate_order_matches_onnxruntime() -> None:
    """A bi-LSTM run by onnxruntime from ONNX-layout weights equals torch's with ours."""
    rng = np.random.default_rng(0)
    n_in, h, t = 6, 5, 7
    w = rng.normal(size=(2, 4 * h, n_in)).astype(np.float32)  # standard ONNX LSTM layout
    r = rng.normal(size=(2, 4 * h, h)).astype(np.float32)
    b = rng.normal(size=(2, 8 * h)).astype(np.float32)
    x = rng.normal(size=(t, 1, n_in)).astype(np.float32)
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=h,
                            direction="bidirectional")
    graph = helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [t, 1, n_in])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [t, 2, 1, h])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("R", TensorProto.FLOAT, r.shape, r.ravel()),
         helper.make_tensor("B", TensorProto.FLOAT, b.shape, b.ravel())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    y = ort.InferenceSession(model.SerializeToString(),
                             providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    expected = np.concatenate([y[:, 0, 0], y[:, 1, 0]], axis=-1)  # [T, 2h]

    lstm = torch.nn.LSTM(n_in, h, 1, batch_first=True, bidirectional=True)
    # The quantized export stores W as [D, in, 4h] and R as [D, h, 4h]: transpose into that.
    state = _lstm_tensors("lstm", w.transpose(0, 2, 1), r.transpose(0, 2, 1), b)
    lstm.load_state_dict({k.removeprefix("lstm."): torch.from_numpy(v) for k, v in state.items()})
    with torch.no_grad():
        got = lstm(torch.from_numpy(x[:, 0][None]))[0][0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_weight_norm_split_keeps_dead_channels_at_zero() -> None:
    w = torch.randn(4, 3, 5)
    w[2] = 0.0
    g, v = split_weight_norm(w)
    conv = WNConv1d(3, 4, 5)
    conv.weight_g.data, conv.weight_v.data = g, v
    assert bool(torch.isfinite(conv.weight).all())
    assert torch.allclose(conv.weight, w, atol=1e-6)
    assert bool((conv.weight[2] == 0).all())
