"""int8 graphs: ONNX Runtime's static quantisation (QDQ, per-channel weights) of an image graph's backbones, their
weights first rounded with their error compensated (``gptq``), and the images (photos, and line drawings made from
them) a graph made once per machine is calibrated on.

``quantize_graph`` is the one recipe: ``export --quantize int8`` calibrates it on the check data, and
``int8_backbone_graph`` on ``calibration_images``, once per machine and network.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CALIBRATION_ITEMS = 32  # images static int8 quantisation reads its activation ranges from
DRAWINGS = 16  # line drawings (made from the photos) beside the photos a graph made once per machine reads
INT8_RECIPE = 2  # in the name of a backbone's int8 graph: a later recipe makes its graphs anew


def int8_backbone_graph(featurizer, folder: Path) -> Path:
    """The image backbone's int8 graph in ``folder`` (``quantize_graph`` of ``onnx_features.backbone_graph``), made
    once per machine and network, calibrated on ``calibration_images`` (not on any model's images, so every model on
    the network shares it); written atomically."""
    import tempfile

    from .onnx_features import OPSET, backbone_graph
    from .onnx_runtime import prepare_image

    path = Path(folder) / f"{featurizer.network_digest()}-opset{OPSET}-int8-{INT8_RECIPE}.onnx"
    if path.is_file():
        return path
    full = backbone_graph(featurizer, folder)
    pre = featurizer.preprocessing.to_dict()
    feeds = [{"images": prepare_image(image, pre)[None]} for image in calibration_images()]
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / "graph.onnx"
        quantize_graph(full, staged, feeds, ["images"])
        os.replace(staged, path)
    return path


def quantize_graph(full: Path, small: Path, feeds: list[dict], inputs: list[str]) -> tuple[int, bool]:
    """``full`` (float32; image inputs named ``inputs``) written to ``small`` in int8, calibrated on ``feeds`` (the
    graph's inputs for each image). What reads the backbones' pooled features (the head) stays float32 (a few small
    products, where int8 rounding would reach the probabilities directly), as does each backbone's first convolution
    (it reads the image, which int8 would round again, and is a small part of the work); a graph without a
    ``features`` output is quantised whole but for those convolutions. Returns how many residual streams were evened
    out, and whether the graph has such a head (a ``features`` output after pooling)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .gptq import equalized, rounded_weights, with_weights

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(feeds)

        def get_next(self):
            return next(self.rows, None)

    prepared, rounded = small.with_name(f"{small.stem}.prepared.onnx"), small.with_name(f"{small.stem}.rounded.onnx")
    try:
        try:  # fold and infer shapes first, as ONNX Runtime advises; its symbolic shape inference fails on some graphs
            quant_pre_process(str(full), str(prepared))
        except Exception:  # onnxruntime raises assorted errors from its shape inference
            quant_pre_process(str(full), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared), load_external_data=False).graph
        readers = _readers(graph)
        head = _after_pooling(graph, readers)
        float32 = head | set().union(*(_first_convolutions(readers, name) for name in inputs))
        # each residual stream's channels evened out for its one int8 grid (the float32 function unchanged), then the
        # convolutions' weights put on their int8 grid, each rounding error compensated in the weights not yet rounded
        # (gptq); ONNX Runtime then finds them on its grid and keeps them
        streams = equalized(prepared, prepared, feeds, skip=float32)
        with_weights(prepared, rounded, rounded_weights(prepared, feeds, skip=float32))
        quantize_static(str(rounded), str(small), Calibration(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=sorted(float32))
    finally:
        prepared.unlink(missing_ok=True)
        rounded.unlink(missing_ok=True)
    return streams, bool(head)


def calibration_images() -> list:
    """What a graph made once per machine is calibrated on: ``calibration_photos`` and ``DRAWINGS`` line drawings
    made from every other one (``line_drawing``), white on black and black on white in turn. Photos alone fit the
    activation ranges and the weights' rounding to photographs, and images of flat areas and sharp strokes (digits,
    drawings) lost more to int8 (the Speed page of the docs)."""
    photos = calibration_photos()
    return photos + [line_drawing(photo, white_on_black=i % 2 == 0) for i, photo in enumerate(photos[1::2][:DRAWINGS])]


def line_drawing(photo, *, white_on_black: bool):
    """The photo's edges as strokes a few pixels wide with soft borders, on a plain ground (128 px square)."""
    from PIL import ImageFilter, ImageOps

    edges = ImageOps.autocontrast(photo.convert("L").resize((128, 128)).filter(ImageFilter.FIND_EDGES), cutoff=2)
    strokes = edges.point(lambda v: 255 if v > 64 else 0).filter(ImageFilter.MaxFilter(3))
    strokes = strokes.filter(ImageFilter.GaussianBlur(1))
    return (strokes if white_on_black else ImageOps.invert(strokes)).convert("RGB")


def calibration_photos(n: int = CALIBRATION_ITEMS) -> list:
    """``n`` square crops (four sizes, every other one mirrored) of three photographs: the two scikit-learn installs
    (a temple, a flower) and a portrait shipped in ``transferkit/photos`` (its README says whose): real photos every
    installation has, for a graph made once per machine rather than per model. The same crops every time."""
    import sklearn.datasets
    from PIL import Image, ImageOps

    paths = [Path(sklearn.datasets.__file__).parent / "images" / name for name in ("china.jpg", "flower.jpg")]
    paths.append(Path(__file__).parent / "photos" / "grace_hopper.jpg")
    photos = []
    for path in paths:
        with Image.open(path) as image:
            photos.append(image.convert("RGB"))
    scales = (1.0, 0.6, 0.4, 0.25)
    out = []
    for i in range(n):
        photo, scale = photos[i % len(photos)], scales[(i // len(photos)) % len(scales)]
        turn = i // (len(photos) * len(scales))
        w, h = photo.size
        side = int(min(w, h) * scale)
        x = (w - side) * ((turn * 37 + i * 11) % 100) // 100  # spread over the photo
        y = (h - side) * ((turn * 53 + i * 7) % 100) // 100
        crop = photo.crop((x, y, x + side, y + side))
        out.append(ImageOps.mirror(crop) if i % 2 else crop)
    return out


POOLING = ("ReduceMean", "GlobalAveragePool")


def _after_pooling(graph, readers: dict[str, list]) -> set[str]:
    """The names of the nodes from each backbone's final pooling on (the head), found by walking up from the graph's
    ``features`` output; empty where the graph has no such output (a model without an open-set part)."""
    producer = {out: node for node in graph.node for out in node.output}
    if "features" not in {o.name for o in graph.output}:
        return set()
    top = producer["features"]
    starts = top.input if top.op_type == "Concat" else [top.output[0]]
    pools = []
    for tensor in starts:
        node = producer.get(tensor)
        while node is not None and node.op_type not in POOLING:
            node = producer.get(node.input[0]) if node.input else None
        if node is None:
            return set()
        pools.append(node)
    return {n.name for n in pools} | _downstream(readers, [o for n in pools for o in n.output])


def _readers(graph) -> dict[str, list]:
    """Each tensor's name: the graph's nodes that read it."""
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers


def _downstream(readers: dict[str, list], tensors: list[str], stop: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """The names of the nodes that read ``tensors``, directly or through other nodes (not through ``stop``);
    ``readers``: ``_readers`` of the graph."""
    seen: set[str] = set()
    todo = [node for t in tensors for node in readers.get(t, [])]
    while todo:
        node = todo.pop()
        if node.name in seen or node.name in stop:
            continue
        seen.add(node.name)
        todo += [r for out in node.output for r in readers.get(out, [])]
    return seen


def _first_convolutions(readers: dict[str, list], tensor: str) -> set[str]:
    """The names of the convolutions that read ``tensor`` first (through the nodes before them: padding,
    normalisation), not the ones after them."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = list(readers.get(tensor, []))
    while todo:
        node = todo.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.add(node.name)
        else:
            todo += [r for out in node.output for r in readers.get(out, [])]
    return found


def feature_cosine(full: Path, small: Path, feeds: list[dict], widths: list[int]) -> list[float]:
    """Per backbone (``widths``: its columns of the ``features`` output, in order), the mean cosine similarity of the
    int8 graph's features to the float32 graph's over ``feeds``."""
    import onnxruntime as ort

    from .runtime import session_options

    def features(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
        return np.vstack([session.run(["features"], feed)[0] for feed in feeds]).astype(np.float64)

    a, b = features(full), features(small)
    edges = np.cumsum([0, *widths])
    out = []
    for start, stop in zip(edges[:-1], edges[1:]):
        x, y = a[:, start:stop], b[:, start:stop]
        norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
        out.append(float(np.mean((x * y).sum(1) / np.maximum(norms, 1e-12))))
    return out
