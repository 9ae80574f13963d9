"""Large image extractions on a CPU run on ONNX Runtime (``transferkit.onnx_features``): the backbone is exported once
and cached, and the first batch is computed both ways; the rows agree with PyTorch's, or PyTorch keeps going."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import features as features_module
from transferkit import onnx_features
from transferkit.features import extract


@pytest.fixture()
def backbone(tiny_backbone):
    from transferkit.featurizers._image import ImageBackbone
    from transferkit.runtime import faster_runtime
    from transferkit.zoo import resolve

    if faster_runtime("image", ["image-backbone"]) != "onnx":
        pytest.skip("ONNX Runtime is not the faster image path on this machine (a GPU)")
    return ImageBackbone.from_spec(resolve(tiny_backbone), precision="fp32")


@pytest.mark.parametrize("threads", ["1", "5"])  # five: each batch of four shared among the cores, some get none
def test_a_large_extraction_runs_on_onnx_runtime_with_the_rows_pytorch_gives(backbone, small_train, tmp_path,
                                                                              monkeypatch, threads):
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    files = sorted(small_train.rglob("*.png"))
    expected = extract(backbone, files, batch_size=4, use_cache=False).features
    calls = []
    real = onnx_features.onnx_transform

    def counted(*args):
        transform = real(*args)
        return lambda batch: calls.append(len(batch)) or transform(batch)

    monkeypatch.setattr(onnx_features, "MIN_ITEMS", 1)
    monkeypatch.setattr(features_module, "onnx_transform", counted)
    assert np.array_equal(extract(backbone, files, batch_size=4, use_cache=False).features, expected)
    assert calls == []  # asked for by a fit's extractions only: a predictor's runtime is the user's choice
    got = extract(backbone, files, batch_size=4, cache_dir=tmp_path, onnx=True).features
    assert sum(calls) == len(files)  # the first batch both ways, every later one on ONNX Runtime only
    assert np.allclose(got, expected, rtol=1e-3, atol=1e-4)
    assert len(list((tmp_path / "onnx-features").glob("*.onnx"))) == 1  # exported once, kept for the next job


@pytest.mark.slow  # a second export and extraction
def test_when_the_two_paths_disagree_pytorch_does_the_whole_extraction(backbone, small_train, tmp_path, monkeypatch):
    files = sorted(small_train.rglob("*.png"))
    expected = extract(backbone, files, batch_size=4, use_cache=False).features
    monkeypatch.setattr(onnx_features, "MIN_ITEMS", 1)
    monkeypatch.setattr(features_module, "agrees", lambda a, b: False)
    assert np.array_equal(extract(backbone, files, batch_size=4, cache_dir=tmp_path, onnx=True).features, expected)


def test_small_jobs_and_other_featurizers_stay_on_pytorch(backbone, tmp_path):
    assert onnx_features.onnx_transform(backbone, tmp_path, onnx_features.MIN_ITEMS - 1) is None
    assert onnx_features.onnx_transform(object(), tmp_path, 10**6) is None


def test_agreement_is_relative_to_each_rows_scale():
    rows = np.array([[100.0, 1.0], [0.01, 0.02]])
    assert onnx_features.agrees(rows, rows + np.array([[0.05, 0.05], [1e-5, 1e-5]]))
    assert not onnx_features.agrees(rows, rows + np.array([[0.5, 0.0], [0.0, 0.0]]))


def test_every_session_draws_on_one_shared_memory_arena():
    # side-by-side backbones reading a pool together would otherwise each hold their own peak (benchmarks/large_pool.py)
    from transferkit.runtime import session_options, shared_arena

    assert shared_arena()
    assert session_options().get_session_config_entry("session.use_env_allocators") == "1"

