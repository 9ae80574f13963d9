"""int8 weights rounded with their error compensated (``transferkit.gptq``): on ONNX Runtime's own grid, and closer
to float32's outputs than rounding each weight to its nearest step."""

import warnings

import numpy as np
import pytest

from transferkit.gptq import QMAX, _gptq, rounded_weights, with_weights


def nearest(rows):
    scale = np.abs(rows).max(axis=1, keepdims=True) / QMAX
    return np.clip(np.rint(rows / scale), -QMAX, QMAX) * scale


def test_rounding_keeps_each_rows_grid_and_moves_its_outputs_less_than_the_nearest_step():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 24)) @ rng.standard_normal((24, 24))  # correlated inputs, as a layer's are
    rows = rng.standard_normal((16, 24)) * 0.05
    rounded = _gptq(rows, x.T @ x)
    scale = np.abs(rows).max(axis=1, keepdims=True) / QMAX
    steps = rounded / scale
    assert np.allclose(steps, np.rint(steps), atol=1e-6)  # every weight on its row's int8 grid
    assert np.allclose(np.abs(rounded).max(axis=1), np.abs(rows).max(axis=1))  # the grid itself unchanged
    error = np.linalg.norm(x @ (rounded - rows).T)
    assert error < 0.7 * np.linalg.norm(x @ (nearest(rows) - rows).T)


@pytest.fixture(scope="module")
def depthwise_graph(tmp_path_factory):
    """A small convolutional graph (plain, depthwise, plain) exported from PyTorch, and calibration inputs."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU6(),
                              torch.nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16), torch.nn.ReLU6(),
                              torch.nn.Conv2d(16, 8, 1)).eval()
    path = tmp_path_factory.mktemp("gptq") / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: quick for a small graph
        torch.onnx.export(net, torch.randn(1, 3, 16, 16), str(path), input_names=["x"], output_names=["y"],
                          dynamo=False)
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(16)]
    return path, feeds


def test_onnx_runtime_keeps_the_rounded_weights_and_its_int8_graph_is_closer_to_float32(depthwise_graph, tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    path, feeds = depthwise_graph
    rounded = rounded_weights(path, feeds)
    assert len(rounded) == 3  # the plain convolutions and the depthwise one
    with_weights(path, tmp_path / "rounded.onnx", rounded)

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(feeds)

        def get_next(self):
            return next(self.rows, None)

    def int8(graph, out):
        quantize_static(str(graph), str(out), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return out

    def run(graph, x):
        return ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(None, x)[0]

    plain, ours = int8(path, tmp_path / "plain.int8.onnx"), int8(tmp_path / "rounded.onnx", tmp_path / "ours.int8.onnx")
    quantized = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(ours)).graph.initializer}
    for name, weights in rounded.values():  # ONNX Runtime's int8 weights times their scales are ours exactly
        q, scale = quantized[f"{name}_quantized"], quantized[f"{name}_scale"]
        assert np.allclose(q.astype(np.float32) * scale.reshape(-1, *[1] * (q.ndim - 1)), weights, atol=1e-7)
    rng = np.random.default_rng(2)
    fresh = [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(8)]
    err_plain = sum(np.linalg.norm(run(plain, f) - run(path, f)) for f in fresh)
    err_ours = sum(np.linalg.norm(run(ours, f) - run(path, f)) for f in fresh)
    assert err_ours < err_plain
