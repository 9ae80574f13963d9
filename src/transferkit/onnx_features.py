"""Image features through ONNX Runtime for large extractions on a CPU (a fit's unlabeled pool, a big training set).

Where ONNX Runtime is the faster image path on this machine (``runtime.faster_runtime``) and the backbone runs in
float32, a backbone is exported once (``torch.onnx``, cached by its network's digest, written atomically; an export of
a model on that network reuses the graph) and the batches run in ONNX Runtime. The first batch is computed both ways:
if the two disagree beyond ``TOLERANCE`` the extraction stays on PyTorch, so the feature cache only ever holds rows
that agree with PyTorch's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MIN_ITEMS = 1000  # below this, exporting (seconds per backbone) saves less than it costs
TOLERANCE = 1e-3  # the largest difference allowed between the two paths' features, relative to the row's largest
OPSET = 18  # of every ONNX graph transferkit writes (a backbone's here, a model's in ``export``)


def onnx_transform(featurizer, cache_dir: str | Path | None, n_items: int):
    """A ``transform(batch) -> features`` on ONNX Runtime for ``featurizer``, or None where PyTorch stays (another
    kind, a GPU, bfloat16, a small job, or no export could be made)."""
    from .runtime import cpu_threads, faster_runtime, open_session

    if (n_items < MIN_ITEMS or getattr(featurizer, "kind", None) != "image-backbone"
            or faster_runtime("image", ["image-backbone"]) != "onnx" or featurizer.resolved_precision != "fp32"):
        return None
    try:
        session = open_session(backbone_graph(featurizer, graph_folder(cache_dir)), threads=1,
                               providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - an export that fails leaves the extraction on PyTorch, which always works
        return None
    name, threads = session.get_inputs()[0].name, cpu_threads()

    def transform(batch: list) -> np.ndarray:
        """The batch's rows, each core running a share of it on the session of one thread: side by side they keep
        every core busy, where one session's threads wait for each other between its operators."""
        from concurrent.futures import ThreadPoolExecutor

        shares = [s for s in np.array_split(np.stack([np.asarray(b, np.float32) for b in batch]), threads) if len(s)]
        with ThreadPoolExecutor(len(shares)) as pool:
            return np.concatenate(list(pool.map(lambda share: session.run(None, {name: share})[0], shares)))

    return transform


def graph_folder(cache_dir: str | Path | None) -> Path:
    """Where the backbones' graphs are cached (``cache.PARTS``)."""
    from .cache import part_folder

    return part_folder("graphs", cache_dir)


def agrees(torch_rows: np.ndarray, onnx_rows: np.ndarray) -> bool:
    """Whether ONNX Runtime's features of a batch match PyTorch's (``TOLERANCE``, relative to each row's largest)."""
    scale = np.maximum(np.abs(torch_rows).max(axis=1, keepdims=True), 1e-6)
    return bool(np.all(np.abs(torch_rows - onnx_rows) / scale <= TOLERANCE))


def backbone_graph(featurizer, folder: Path) -> Path:
    """The image backbone's float32 network as an ONNX graph (``images`` -> ``features``) in ``folder``, exported once
    and named by ``network_digest``: a fit's large extractions and every export of a model on the same network share
    it. Written atomically: a reader sees the whole graph or none. Made by torch.export, not traced as a model's own
    graph is (``export._export``): a trace turns a "same"-padded network's padding into shape arithmetic around every
    convolution, which ONNX Runtime runs slower."""
    path = Path(folder) / f"{featurizer.network_digest()}-opset{OPSET}.onnx"
    if path.is_file():
        return path
    import contextlib
    import io
    import tempfile
    import warnings

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    size = featurizer.preprocessing.input_size
    network = featurizer.network.float().eval().cpu()
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        staged = Path(tmp) / "graph.onnx"
        torch.onnx.export(network, (torch.zeros(2, 3, size, size),), str(staged), input_names=["images"],
                          output_names=["features"], dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                          dynamo=True, opset_version=OPSET, external_data=False)
        os.replace(staged, path)
    featurizer._placed = False  # the network was moved to the CPU in float32: placed again before PyTorch runs it
    return path
