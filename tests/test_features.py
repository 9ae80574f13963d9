"""The one extraction loop: the cache keyed by featurizer and content, skipped items with their reason, a cache
that cannot be written, and bf16 accuracy on the fast path."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from transferkit import zoo
from transferkit.features import extract
from transferkit.featurizers import ImageBackbone


@pytest.fixture(scope="module")
def lite0():
    return ImageBackbone.from_spec(zoo.resolve("lite0"))


def test_second_extraction_hits_the_cache_and_returns_the_same_features(lite0, tmp_path, small_train):
    paths = sorted(small_train.rglob("*.png"))
    first = extract(lite0, paths, cache_dir=tmp_path)
    assert first.n_computed == len(paths) and first.n_cached == 0 and first.features.shape == (len(paths), 1280)
    second = extract(lite0, paths, cache_dir=tmp_path)
    assert second.n_computed == 0 and second.n_cached == len(paths)
    assert np.array_equal(first.features, second.features)


def test_cache_follows_file_content_not_its_name(lite0, tmp_path, small_train):
    src = sorted(small_train.rglob("*.png"))[0]
    extract(lite0, [src], cache_dir=tmp_path)
    moved = tmp_path / "renamed.png"
    shutil.copy(src, moved)
    assert extract(lite0, [moved], cache_dir=tmp_path).n_cached == 1


def test_an_image_file_is_read_once_for_its_key_until_it_changes(lite0, tmp_path, small_train, monkeypatch):
    first, second = sorted(small_train.rglob("*.png"))[:2]
    image = tmp_path / "a.png"
    shutil.copy(first, image)
    reads = []
    real = type(image).read_bytes
    monkeypatch.setattr(type(image), "read_bytes", lambda self: reads.append(self.name) or real(self))
    keys = {lite0.item_key(image) for _ in range(4)} | {lite0.with_view("mirror").item_key(str(image))}
    assert len(keys) == 1 and reads == ["a.png"]
    shutil.copy(second, image)  # new content: its size, time or inode differ, and it is read again
    assert lite0.item_key(image) != keys.pop() and reads == ["a.png", "a.png"]


def test_side_by_side_featurizers_decode_each_image_once_and_give_each_members_own_rows(lite0, tmp_path, small_train,
                                                                                         monkeypatch):
    from transferkit.featurizers import Concat, _image

    paths = sorted(small_train.rglob("*.png"))[:6] + [tmp_path / "missing.png"]
    small = ImageBackbone(lite0.spec, lite0.network, replace(lite0.preprocessing, input_size=160))
    both = Concat([lite0, small.with_view("mirror")])
    decoded = []
    real = _image.load_image
    monkeypatch.setattr(_image, "load_image", lambda path, *a, **k: decoded.append(path) or real(path, *a, **k))
    together = extract(both, paths, cache_dir=tmp_path / "together")
    assert sorted(decoded) == sorted(paths[:6])  # once per image, not once per member; the missing one is not opened
    assert together.n_computed == 6 and [why for _, why in together.skipped] == ["file not found"]
    apart = [extract(m, paths[:6], cache_dir=tmp_path / "apart").features for m in both.members]
    assert np.allclose(together.features, both.combine(apart), atol=1e-6)
    decoded.clear()
    again = extract(both, paths[:6], cache_dir=tmp_path / "together")
    assert again.n_cached == 6 and decoded == [] and np.array_equal(again.features, together.features)


def test_other_preprocessing_or_view_does_not_reuse_the_cache(lite0, tmp_path, small_train):
    paths = sorted(small_train.rglob("*.png"))[:2]
    extract(lite0, paths, cache_dir=tmp_path)
    other = ImageBackbone(lite0.spec, lite0.network, replace(lite0.preprocessing, input_size=192))
    assert extract(other, paths, cache_dir=tmp_path).n_computed == 2
    assert extract(lite0.with_view("mirror"), paths, cache_dir=tmp_path).n_computed == 2


def test_unreadable_files_are_skipped_with_their_reason(lite0, tmp_path, small_train):
    good = sorted(small_train.rglob("*.png"))[:2]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    result = extract(lite0, [good[0], bad, tmp_path / "missing.png", good[1]], cache_dir=tmp_path)
    assert result.ok.tolist() == [True, False, False, True]
    assert result.features.shape[0] == 2
    assert [(p, why) for p, why in result.skipped] == [(bad, "not an image file PIL can read"),
                                                       (tmp_path / "missing.png", "file not found")]


def test_a_cache_that_cannot_be_written_is_reported_once_and_extraction_goes_on(lite0, tmp_path, small_train, capsys):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    paths = sorted(small_train.rglob("*.png"))[:3]
    result = extract(lite0, paths, cache_dir=blocked)
    assert result.ok.all() and result.features.shape == (3, 1280)
    assert capsys.readouterr().err.count("cannot be written") == 1


@pytest.mark.slow  # real ImageNet predictions in two precisions
def test_bf16_autocast_keeps_features_and_imagenet_predictions():
    """The fast path must not cost accuracy: bf16 outputs point the same way as fp32 ones."""
    from PIL import Image
    from test_zoo import _imagenet_samples

    spec = zoo.resolve("lite0")
    net = zoo.create_backbone(spec, num_classes=None)
    files, labels = _imagenet_samples()
    batch = [spec.preprocessing.eval_transform()(Image.open(f).convert("RGB")) for f in files]
    fp32 = ImageBackbone(spec, net, spec.preprocessing, precision="fp32", device=torch.device("cpu")).transform(batch)
    bf16 = ImageBackbone(spec, net, spec.preprocessing, precision="bf16", device=torch.device("cpu")).transform(batch)
    assert (fp32.argmax(1) == labels.numpy()).sum() - (bf16.argmax(1) == labels.numpy()).sum() <= 1
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cos.min() > 0.99


def test_precision_auto_follows_the_machine_not_the_model(monkeypatch):
    """A model fitted where bfloat16 is native must not predict under emulated bfloat16 elsewhere."""
    from transferkit import runtime

    runtime.native_bf16.cache_clear()
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    try:
        assert runtime.resolve_precision("auto", "cpu") == "fp32"
        runtime.native_bf16.cache_clear()
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
        assert runtime.resolve_precision("auto", "cpu") == "bf16"
        assert runtime.resolve_precision("fp32", "cpu") == "fp32"
    finally:
        runtime.native_bf16.cache_clear()


@pytest.mark.parametrize("name", zoo.SIDE_BY_SIDE)
def test_images_run_with_batch_norms_folded_into_the_convolutions_and_give_the_networks_features(name, small_train):
    backbone = ImageBackbone.from_spec(zoo.resolve(name), precision="fp32")
    batch = [backbone.prepare(p) for p in sorted(small_train.rglob("*.png"))[:4]]
    rows = backbone.transform(batch)
    folded = backbone._fold[2]
    assert folded is not backbone.network
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())  # every one folded away
    with torch.inference_mode():
        plain = backbone.network(torch.stack(batch).to(memory_format=torch.channels_last)).numpy()
    np.testing.assert_allclose(rows, plain, rtol=0, atol=1e-4 * np.abs(plain).max())


def test_weights_trained_in_place_are_folded_again_before_the_next_batch(small_train):
    backbone = ImageBackbone.from_spec(zoo.resolve("lite0"), precision="fp32")
    batch = [backbone.prepare(p) for p in sorted(small_train.rglob("*.png"))[:2]]
    before = backbone.transform(batch)
    with torch.no_grad():  # what an optimiser step does: the same tensors, new values
        backbone.network.conv_head.weight.mul_(2.0)
    after = backbone.transform(batch)
    with torch.inference_mode():
        plain = backbone.network(torch.stack(batch).to(memory_format=torch.channels_last)).numpy()
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, plain, rtol=0, atol=1e-4 * np.abs(plain).max())


def test_a_normalisation_registered_after_a_convolution_it_does_not_follow_is_not_folded():
    """Pairs are read in registration order: a network whose normalisation reads another tensor keeps it."""
    from torch import nn

    from transferkit.runtime import fold_batchnorm

    class Crossed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.norm = nn.BatchNorm2d(3)

        def forward(self, x):
            return self.conv(self.norm(x))  # the normalisation comes first here

    net = Crossed().eval()
    with torch.no_grad():
        net.norm.running_mean.fill_(0.5)
        net.norm.running_var.fill_(4.0)
    assert fold_batchnorm(net, 8) is net


def test_a_network_run_in_bfloat16_is_folded_too(small_train):
    """The fold is checked in float32: under bfloat16 autocast its check once read rounding as a mismatch."""
    backbone = ImageBackbone.from_spec(zoo.resolve("lite0"), precision="bf16")
    backbone.device = torch.device("cpu")
    rows = backbone.transform([backbone.prepare(p) for p in sorted(small_train.rglob("*.png"))[:2]])
    assert backbone._fold[2] is not backbone.network and np.isfinite(rows).all()


def test_a_network_that_takes_only_its_own_input_size_is_checked_at_that_size():
    from torch import nn

    from transferkit.runtime import fold_batchnorm

    class FixedSize(nn.Module):  # a patch embedding, say: it refuses other sizes
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.norm = nn.BatchNorm2d(4)

        def forward(self, x):
            if x.shape[-1] != 96:
                raise ValueError("input size must be 96")
            return self.norm(self.conv(x)).mean((2, 3))

    net = FixedSize().eval()
    folded = fold_batchnorm(net, 96)  # checked on an image of its own size when it refuses the small one
    assert folded is not net and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert fold_batchnorm(net, 80) is net and not net.training  # no check goes through: it runs as it is
    plain = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()).eval()
    assert fold_batchnorm(plain, 32) is plain  # nothing to fold: no copy is kept
