"""int8 graphs (``transferkit.quantize``): a zoo backbone's, made once per machine from photos every installation
has, with the recipe ``export --quantize int8`` uses (its first convolution float32, the rest on int8 weights)."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import quantize


@pytest.fixture()
def backbone(tiny_backbone):
    from transferkit.featurizers._image import ImageBackbone
    from transferkit.zoo import resolve

    return ImageBackbone.from_spec(resolve(tiny_backbone), precision="fp32")


def test_graphs_made_once_per_machine_are_calibrated_on_real_photos_and_drawings_of_them_the_same_every_time():
    from transferkit.quantize import CALIBRATION_ITEMS, DRAWINGS, calibration_images, calibration_photos, line_drawing

    photos, images, again = calibration_photos(), calibration_images(), calibration_images()
    assert len(photos) == CALIBRATION_ITEMS and all(p.mode == "RGB" and min(p.size) >= 100 for p in photos)
    assert len(images) == CALIBRATION_ITEMS + DRAWINGS and all(i.mode == "RGB" for i in images)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, photos))  # the photos first
    assert len({np.asarray(i).tobytes() for i in images}) == len(images)  # no two alike
    for i, drawing in enumerate(images[CALIBRATION_ITEMS:]):  # every other photo drawn, white on black first
        assert np.array_equal(np.asarray(drawing), np.asarray(line_drawing(photos[2 * i + 1], white_on_black=i % 2 == 0)))
        pixels = np.asarray(drawing)
        assert (pixels == pixels[..., :1]).all()  # gray
        dark, light = np.mean(pixels[..., 0] < 40), np.mean(pixels[..., 0] > 215)
        assert min(dark, light) > 0.02, (i, dark, light)  # dark and light strokes and ground: none blank
    white, black = (np.asarray(line_drawing(photos[1], white_on_black=w), dtype=int) for w in (True, False))
    assert np.array_equal(white, 255 - black)


def test_a_backbones_int8_graph_is_made_once_and_its_convolutions_but_the_first_read_int8_weights(backbone, tmp_path,
                                                                                                  monkeypatch):
    import onnx

    from transferkit.onnx_features import backbone_graph
    from transferkit.quantize import _first_convolutions, _readers

    made = []
    real = quantize.quantize_graph
    monkeypatch.setattr(quantize, "quantize_graph", lambda *args: made.append(args) or real(*args))
    path = quantize.int8_backbone_graph(backbone, tmp_path)
    assert quantize.int8_backbone_graph(backbone, tmp_path) == path and len(made) == 1
    # beside it the float32 graph it was made from, and nothing left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, backbone_graph(backbone, tmp_path).name])
    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    stems = _first_convolutions(_readers(graph), "images")
    convs = [n for n in graph.node if n.op_type == "Conv"]
    int8 = {n.name for n in convs if n.input[1] in producer and producer[n.input[1]].op_type == "DequantizeLinear"}
    assert stems and not stems & int8 and len(int8) == len(convs) - len(stems)
