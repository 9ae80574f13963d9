"""Feature extraction: the cache keyed by model + preprocessing + content, skipped files, and bf16 accuracy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from transferkit import zoo
from transferkit.features import FeatureExtractor
from transferkit.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def lite0():
    spec = zoo.resolve("lite0")
    return spec, zoo.create_backbone(spec)


def _extractor(lite0, tmp_path, **kw):
    spec, net = lite0
    kw.setdefault("preprocessing", spec.preprocessing)
    return FeatureExtractor(net, model_key="lite0-test", cache_dir=tmp_path, progress=False, **kw)


def test_second_extraction_hits_the_cache_and_returns_the_same_features(lite0, tmp_path, small_train):
    paths = sorted(small_train.rglob("*.png"))
    first = _extractor(lite0, tmp_path).extract(paths)
    assert first.n_computed == len(paths) and first.n_cached == 0 and first.features.shape == (len(paths), 1280)
    second = _extractor(lite0, tmp_path).extract(paths)
    assert second.n_computed == 0 and second.n_cached == len(paths)
    assert np.array_equal(first.features, second.features)


def test_cache_follows_file_content_not_its_name(lite0, tmp_path, small_train):
    src = sorted(small_train.rglob("*.png"))[0]
    _extractor(lite0, tmp_path).extract([src])
    moved = tmp_path / "renamed.png"
    shutil.copy(src, moved)
    assert _extractor(lite0, tmp_path).extract([moved]).n_cached == 1


def test_other_preprocessing_does_not_reuse_the_cache(lite0, tmp_path, small_train):
    paths = sorted(small_train.rglob("*.png"))[:2]
    _extractor(lite0, tmp_path).extract(paths)
    other = Preprocessing(input_size=192, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert _extractor(lite0, tmp_path, preprocessing=other).extract(paths).n_computed == 2


def test_unreadable_files_are_skipped_with_their_reason(lite0, tmp_path, small_train):
    good = sorted(small_train.rglob("*.png"))[:2]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    result = _extractor(lite0, tmp_path).extract([good[0], bad, good[1]])
    assert result.ok.tolist() == [True, False, True]
    assert result.features.shape[0] == 2
    assert result.skipped[0][0] == bad and "not an image" in result.skipped[0][1]


def test_bf16_autocast_keeps_features_and_imagenet_predictions(lite0):
    """The fast path must not cost accuracy: bf16 features point the same way as fp32 ones."""
    from test_zoo import _imagenet_samples
    from PIL import Image

    spec, _ = lite0
    net = zoo.create_backbone(spec, num_classes=None)
    files, labels = _imagenet_samples()
    x = torch.stack([spec.preprocessing.eval_transform()(Image.open(f).convert("RGB")) for f in files])
    fp32 = FeatureExtractor(net, spec.preprocessing, "k", precision="fp32", use_cache=False, progress=False).forward(x)
    bf16 = FeatureExtractor(net, spec.preprocessing, "k", precision="bf16", use_cache=False, progress=False).forward(x)
    assert (fp32.argmax(1) == labels.numpy()).sum() - (bf16.argmax(1) == labels.numpy()).sum() <= 1
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cos.min() > 0.99
