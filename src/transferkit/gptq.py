"""A graph's convolution weights rounded to their int8 grid with the rounding error compensated, before ONNX
Runtime's static quantisation reads them (``export --quantize int8``).

ONNX Runtime rounds each weight to the nearest step of its output channel's grid (symmetric, ``max|w| / 127``). For
depthwise convolutions a channel has 9 or 25 weights, and rounding each on its own moves the channel's output far
more than the activations' rounding does. GPTQ (Frantar et al. 2022, Optimal Brain Quantization column by column)
rounds a channel's weights one at a time and spreads each one's error over the weights not yet rounded, weighted by
how the layer's inputs on calibration images correlate (``H = X^T X`` of the input patches), which keeps the
channel's outputs, not its weights, close to float32. ONNX Runtime's own GPTQ (``matmul_nbits_quantizer``) is for
weight-only MatMul of 4 bits, and its ``quantize_static`` rounds to nearest, so it is done here (about a hundred
lines of numpy) on the graph's weights, onto the grid ``quantize_static`` then reproduces: each channel's largest
weight, which sets that grid, is never moved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DAMP = 0.01  # added to H's diagonal, as a share of its mean (GPTQ's dampening), so that H inverts where inputs barely vary
BLOCK = 128  # columns rounded before their errors reach the later columns (GPTQ's lazy batch updates)
QMAX = 127  # ONNX Runtime's symmetric int8 weights: -127..127
MIGRATION = 0.5  # SmoothQuant's alpha: s_c = max|x_c|^alpha / max|w_c|^(1 - alpha) shares the range evenly


def equalized(graph_in: Path, graph_out: Path, feeds: list[dict], skip: frozenset[str] | set[str] = frozenset()) -> int:
    """``graph_in`` written to ``graph_out`` with each residual stream's channels rescaled as the module's docstring
    says, measured on ``feeds``; convolutions in ``skip`` are left alone, and so is any stream they write or read.
    Returns how many streams were rescaled."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph_in))
    streams = _streams(model.graph, skip)
    if streams:
        weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        names = sorted({t for tensors, _, _ in streams for t in tensors})
        session = _session(model, names)
        peak: dict[str, np.ndarray] = {}
        for feed in feeds:
            for name, x in zip(names, session.run(names, feed)):
                channel = np.abs(x).max(axis=(0, 2, 3))
                peak[name] = np.maximum(peak[name], channel) if name in peak else channel
        changed = {}
        for tensors, writers, readers in streams:
            x = np.max([peak[t] for t in tensors], axis=0)
            w = np.max([np.abs(weights[r.input[1]]).max(axis=(0, 2, 3)) for r in readers], axis=0)
            s = np.ones_like(x)
            live = (x > 0) & (w > 0)
            s[live] = x[live] ** MIGRATION / w[live] ** (1 - MIGRATION)
            s /= np.exp(np.log(s).mean())  # the stream's overall scale unchanged
            for node in writers:
                changed[node.input[1]] = weights[node.input[1]] / s[:, None, None, None]
                if len(node.input) > 2 and node.input[2]:
                    changed[node.input[2]] = weights[node.input[2]] / s
            for node in readers:
                changed[node.input[1]] = weights[node.input[1]] * s[None, :, None, None]
        for init in model.graph.initializer:
            if init.name in changed:
                init.CopyFrom(numpy_helper.from_array(changed[init.name].astype(np.float32), init.name))
    onnx.save(model, str(graph_out))
    return len(streams)


def _streams(graph, skip) -> list[tuple[list[str], list, list]]:
    """The graph's residual streams that ``equalized`` can rescale: the tensors joined by Add nodes (or one tensor),
    each with the plain convolutions that write it and those that read it; a stream any other node writes or reads
    (an activation, a pooling, the graph's output) is left out, as is one whose weights another node shares."""
    producer = {out: node for node in graph.node for out in node.output}
    root: dict[str, str] = {}

    def find(t: str) -> str:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for node in graph.node:
        if node.op_type == "Add" and len(node.input) == 2 and all(i in producer for i in node.input):
            for t in node.input:
                root[find(t)] = find(node.output[0])
    members: dict[str, list[str]] = {}
    for node in graph.node:
        for out in node.output:
            members.setdefault(find(out), []).append(out)
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    weights = {init.name for init in graph.initializer if len(init.dims) == 4}  # 2-d convolutions' kernels
    outputs = {o.name for o in graph.output}

    def plain(node) -> bool:
        return (node.op_type == "Conv" and node.name not in skip and len(node.input) > 1 and node.input[1] in weights
                and all(len(readers[name]) == 1 for name in node.input[1:] if name)
                and next((a.i for a in node.attribute if a.name == "group"), 1) == 1)

    found = []
    for tensors in members.values():
        inside = set(tensors)
        joins = {producer[t].name for t in tensors
                 if producer[t].op_type == "Add" and all(i in inside for i in producer[t].input)}
        writers = [producer[t] for t in tensors if producer[t].name not in joins]
        reading = [(t, node) for t in tensors for node in readers.get(t, []) if node.name not in joins]
        if (inside & outputs or not reading or not all(plain(node) for node in writers)
                or not all(plain(node) and node.input[0] == t for t, node in reading)):
            continue
        found.append((tensors, writers, [node for _, node in reading]))
    return found


def _session(model, names: list[str]):
    """An ONNX Runtime session of ``model`` that also returns the tensors ``names``, unoptimised (by their names)."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto.FromString(model.SerializeToString())
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in names if name not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def rounded_weights(graph: Path, feeds: list[dict],
                    skip: frozenset[str] | set[str] = frozenset()) -> dict[str, tuple[str, np.ndarray]]:
    """For every plain or depthwise convolution of ``graph`` (nodes not in ``skip``): its weights on their int8 grid,
    error-compensated on ``feeds`` (the graph's inputs for each calibration item), by node name, with the weights'
    initializer name."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    convs = {}  # node -> (its attributes, plain or depthwise), read once
    for node in model.graph.node:
        if node.op_type == "Conv" and node.name not in skip and len(node.input) > 1 and node.input[1] in weights:
            shape = _shape(node)
            kind = _kind(shape, weights[node.input[1]]) if shape is not None else None
            if kind is not None:
                convs[node.name] = (node, shape, kind)
    if not convs:
        return {}
    names = list(dict.fromkeys(node.input[0] for node, _, _ in convs.values()))  # each conv's input, once
    session = _session(model, names)
    hessians: dict[str, np.ndarray] = {}
    for feed in feeds:
        outputs = dict(zip(names, session.run(names, feed)))
        for name, (node, shape, kind) in convs.items():
            gram = _gram(_patches(outputs[node.input[0]], shape, weights[node.input[1]]), kind)
            hessians[name] = hessians[name] + gram if name in hessians else gram
    out = {}
    for name, (node, _, _) in convs.items():
        w = weights[node.input[1]]
        rounded = _gptq(w.reshape(w.shape[0], -1).astype(np.float64), hessians[name])
        out[name] = (node.input[1], rounded.reshape(w.shape).astype(np.float32))
    return out


def with_weights(graph_in: Path, graph_out: Path, weights: dict[str, tuple[str, np.ndarray]]) -> None:
    """``graph_in`` written to ``graph_out`` with these initializers replaced (``rounded_weights``' values)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph_in))
    by_name = dict(weights.values())
    for init in model.graph.initializer:
        if init.name in by_name:
            init.CopyFrom(numpy_helper.from_array(by_name[init.name], init.name))
    onnx.save(model, str(graph_out))


def _shape(node) -> dict | None:
    """The convolution's attributes this module handles (unit dilation), or None."""
    attrs = {a.name: list(a.ints) if a.ints else a.i for a in node.attribute}
    if any(d != 1 for d in attrs.get("dilations", [1, 1])) or attrs.get("auto_pad", b"NOTSET") not in (
            b"NOTSET", "NOTSET", 0):
        return None
    return {"strides": attrs.get("strides", [1, 1]), "pads": attrs.get("pads", [0, 0, 0, 0]),
            "group": attrs.get("group", 1)}


def _kind(shape: dict, w: np.ndarray) -> str | None:
    """``plain`` or ``depthwise`` for a convolution this module rounds, else None (grouped ones)."""
    group = shape["group"]
    if w.ndim != 4:
        return None
    if group == 1:
        return "plain"
    if w.shape[1] == 1 and group == w.shape[0]:
        return "depthwise"
    return None


def _patches(x: np.ndarray, shape: dict, w: np.ndarray) -> np.ndarray:
    """The convolution's input windows: (channels, positions, kh*kw) of ``x`` (batch, channels, H, W); ``shape``:
    its attributes (``_shape``)."""
    top, left, bottom, right = shape["pads"]
    kh, kw = w.shape[2], w.shape[3]
    if kh == kw == 1 and not any(shape["pads"]) and list(shape["strides"]) == [1, 1]:  # pointwise: the input itself
        return x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1, 1)
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::shape["strides"][0], ::shape["strides"][1]]  # batch, C, Ho, Wo, kh, kw
    c = windows.shape[1]
    return windows.transpose(1, 0, 2, 3, 4, 5).reshape(c, -1, kh * kw)


def _gram(patches: np.ndarray, kind: str) -> np.ndarray:
    """H of one batch: per channel (kh*kw square) for a depthwise convolution, else over every input channel's
    window (C*kh*kw square, the order of the weights' columns)."""
    p = patches.astype(np.float32, copy=False)
    if kind == "depthwise":
        return np.matmul(p.transpose(0, 2, 1), p).astype(np.float64)
    if p.shape[2] == 1:  # one weight per input channel: channels by positions, as it is
        return (p[:, :, 0] @ p[:, :, 0].T).astype(np.float64)
    flat = p.transpose(1, 0, 2).reshape(p.shape[1], -1)
    return (flat.T @ flat).astype(np.float64)


def _grid(rows: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(rows).max(axis=1), 1e-30) / QMAX


def _gptq(rows: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Rows (output channels) rounded column by column on their grids, the error spread over the later columns
    through H's inverse Cholesky factor: one H for all rows (n by n), or one per row (rows by n by n, a depthwise
    convolution's channels). The most active inputs are rounded first (GPTQ's act-order) and each row's largest
    weight is never moved (it sets the grid)."""
    shared = h.ndim == 2
    hs = (h[None] if shared else h).copy()
    n = hs.shape[-1]
    diagonal = np.diagonal(hs, axis1=1, axis2=2)
    dead = diagonal == 0  # an input always zero on the calibration images (a channel ReLU never lets through)
    rows = np.where(dead[0] if shared else dead, 0.0, rows)  # its weights did nothing there: zero, on any grid
    index = np.arange(n)
    hs[:, index, index] += np.where(dead, 1.0, 0.0) + DAMP * diagonal.mean(axis=1, keepdims=True)
    order = np.argsort(-np.diagonal(hs, axis1=1, axis2=2), axis=1, kind="stable")  # (1 or rows, n)
    hs = np.take_along_axis(np.take_along_axis(hs, order[:, :, None], axis=1), order[:, None, :], axis=2)
    order = np.broadcast_to(order, rows.shape)
    rows = np.take_along_axis(rows, order, axis=1)
    upper = np.linalg.cholesky(np.linalg.inv(hs)).transpose(0, 2, 1)  # (1 or rows, n, n)
    scale = _grid(rows)
    pivot = (np.arange(len(rows)), np.abs(rows).argmax(axis=1))
    held = rows[pivot]
    for start in range(0, n, BLOCK):  # GPTQ's lazy batches: a block's errors reach the later columns in one product
        stop = min(start + BLOCK, n)
        errors = np.empty((len(rows), stop - start))
        for j in range(start, stop):
            q = np.clip(np.rint(rows[:, j] / scale), -QMAX, QMAX) * scale
            errors[:, j - start] = err = (rows[:, j] - q) / upper[:, j, j]
            rows[:, j] = q
            rows[:, j + 1:stop] -= err[:, None] * upper[:, j, j + 1:stop]
            rows[pivot] = held  # the grid's own weight stays where it is
        if stop < n:
            rows[:, stop:] -= (errors @ upper[0, start:stop, stop:] if shared
                               else np.einsum("rb,rbm->rm", errors, upper[:, start:stop, stop:]))
            rows[pivot] = held
    out = np.empty_like(rows)
    np.put_along_axis(out, order, rows, axis=1)
    return out
