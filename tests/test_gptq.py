"""int8 weights rounded with their error compensated (``transferkit.gptq``): on ONNX Runtime's own grid, and closer
to float32's outputs than rounding each weight to its nearest step."""

import warnings

import numpy as np
import pytest

from transferkit.gptq import QMAX, _gptq, equalized, rounded_weights, with_weights


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


def onnx_of(net, path, shape):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: quick for a small graph
        torch.onnx.export(net, torch.randn(*shape), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    return path


@pytest.fixture(scope="module")
def depthwise_graph(tmp_path_factory):
    """A small convolutional graph (plain, depthwise, plain) exported from PyTorch, and calibration inputs."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU6(),
                              torch.nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16), torch.nn.ReLU6(),
                              torch.nn.Conv2d(16, 8, 1)).eval()
    path = onnx_of(net, tmp_path_factory.mktemp("gptq") / "net.onnx", (1, 3, 16, 16))
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


def bottleneck():
    """A linear bottleneck with a residual, as MobileNetV2's blocks are: a stream written by convolutions with no
    activation after them, channels of very different ranges, read by a 1x1 convolution and by the residual sum."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
            with torch.no_grad():
                self.stem.weight[:4] *= 30  # half the stream's channels thirty times wider than the others
            self.expand = torch.nn.Conv2d(8, 16, 1)
            self.project = torch.nn.Conv2d(16, 8, 1)
            self.head = torch.nn.Conv2d(8, 4, 1)

        def forward(self, x):
            s = self.stem(x)
            s = s + self.project(torch.nn.functional.relu6(self.expand(s)))
            return torch.relu(self.head(s))

    return Net().eval()


def test_equalizing_a_residual_stream_keeps_the_function_and_evens_its_channels(tmp_path):
    import onnxruntime as ort

    path = onnx_of(bottleneck(), tmp_path / "net.onnx", (1, 3, 8, 8))
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(8)]
    assert equalized(path, tmp_path / "even.onnx", feeds) == 1  # the one stream: the stem's and the sum's outputs

    def run(graph, feed, outputs=None):
        return ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(outputs, feed)

    for feed in feeds:
        np.testing.assert_allclose(run(tmp_path / "even.onnx", feed)[0], run(path, feed)[0], rtol=1e-4, atol=1e-5)

    def spread(graph):  # widest channel over narrowest of the stem's output, what one int8 grid has to span
        import onnx

        from transferkit.gptq import _session

        model = onnx.load(str(graph))
        stem = next(n for n in model.graph.node if n.op_type == "Conv").output[0]
        peaks = np.abs(np.concatenate([_session(model, [stem]).run([stem], f)[0] for f in feeds])).max(axis=(0, 2, 3))
        return peaks.max() / peaks.min()

    assert spread(tmp_path / "even.onnx") < spread(path) / 3


def test_a_stream_that_skipped_convolutions_write_is_left_as_it_is(tmp_path):
    import onnx

    path = onnx_of(bottleneck(), tmp_path / "net.onnx", (1, 3, 8, 8))
    stem = next(n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv")
    feeds = [{"x": np.ones((1, 3, 8, 8), np.float32)}]
    assert equalized(path, tmp_path / "same.onnx", feeds, skip={stem}) == 0
