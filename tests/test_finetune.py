"""Fine-tuning: layer groups, probe-initialised head, the BatchNorm policy, auto's decision and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from transferkit import ImageClassifier, zoo
from transferkit.features import FeatureExtractor
from transferkit.finetune.groups import layer_groups, trainable_groups
from transferkit.finetune.module import ClassifierModule, Plan
from transferkit.heads import fit_logistic_head
from transferkit.strategies import init_classifier_from_head


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "mobilenet_v2"])
def test_layer_groups_cover_every_parameter_once_from_stem_to_classifier(name):
    spec = zoo.resolve(name)
    net = zoo.create_backbone(spec, pretrained=False, num_classes=4)
    groups = layer_groups(net, spec)
    names = [n for g in groups for n in g]
    assert sorted(names) == sorted(n for n, _ in net.named_parameters()) and len(names) == len(set(names))
    assert all(n.startswith(spec.classifier) for n in groups[-1])
    assert len(groups) >= 8  # stem, the stages, the classifier
    assert trainable_groups(groups, 2) == 3 and trainable_groups(groups, "all") == len(groups)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_probe_initialised_classifier_reproduces_the_probe(small_train, n_classes):
    spec = zoo.resolve("lite0")
    net = zoo.create_backbone(spec)
    classes = sorted(p.name for p in small_train.iterdir())[:n_classes]
    paths = [p for c in classes for p in sorted((small_train / c).glob("*.png"))]
    y = np.array([classes.index(p.parent.name) for p in paths])
    extractor = FeatureExtractor(net, spec.preprocessing, "probe-test", precision="fp32", use_cache=False, progress=False)
    features = extractor.extract(paths).features
    head = fit_logistic_head(features, y)
    zoo.set_num_classes(net, spec, n_classes)
    init_classifier_from_head(net, spec, head)
    logits = FeatureExtractor(net, spec.preprocessing, "x", precision="fp32", use_cache=False, progress=False).extract(paths).features
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits).double(), 1).numpy(), head.predict_proba(features), atol=1e-4)


@pytest.mark.parametrize("bn_statistics", ["frozen", "train"])
def test_batchnorm_policy_keeps_pretrained_running_statistics(bn_statistics):
    """Frozen stages always keep their BatchNorm statistics; trained stages re-estimate them only when asked."""
    spec = zoo.resolve("lite0")
    net = zoo.create_backbone(spec, num_classes=3)
    groups = layer_groups(net, spec)
    plan = Plan(tuple(tuple(g) for g in groups), tuple([1e-3] * len(groups)), (2,), bn_statistics=bn_statistics)
    module = ClassifierModule(net, lr=1e-3, weight_decay=0.0, epochs=1, plan=plan)
    net.train()
    module.on_train_epoch_start()
    stem_bn, top_bn = net.bn1, net.bn2  # bn2 follows conv_head, in the top group
    before_stem, before_top = stem_bn.running_mean.clone(), top_bn.running_mean.clone()
    net(torch.randn(4, 3, 96, 96) * 3)
    assert not stem_bn.training and torch.equal(stem_bn.running_mean, before_stem)
    assert top_bn.training == (bn_statistics == "train")
    assert torch.equal(top_bn.running_mean, before_top) == (bn_statistics == "frozen")
    assert not net.conv_stem.weight.requires_grad and net.conv_head.weight.requires_grad and top_bn.weight.requires_grad


@pytest.mark.slow
def test_finetune_trains_only_the_top_stages_and_round_trips(small_train, tmp_path):
    clf = ImageClassifier(strategy="finetune", unfreeze=1, epochs=1, batch_size=8, verbose=False).fit(small_train)
    pretrained = zoo.create_backbone(zoo.resolve("lite0"))
    assert torch.equal(clf.network_.conv_stem.weight, pretrained.conv_stem.weight)  # frozen
    assert not torch.equal(clf.network_.conv_head.weight, pretrained.conv_head.weight)  # retrained
    assert 0 <= clf.metrics_["probe_val_accuracy"] <= 1 and clf.metrics_["trainable_groups"] == 1
    clf.save(tmp_path / "ft")
    files = sorted(small_train.rglob("*.png"))
    assert np.array_equal(ImageClassifier.load(tmp_path / "ft", verbose=False).predict_proba(files), clf.predict_proba(files))


def test_auto_keeps_features_when_labels_are_few_and_says_why(small_train, tmp_path):
    clf = ImageClassifier(strategy="auto", verbose=False).fit(small_train)
    assert clf.metrics_["auto_choice"] == "features" and clf.head_ is not None
    assert "6 labeled images" in clf.reason_ and clf.reason_.startswith("auto chose features")
    clf.save(tmp_path / "auto")
    assert "auto chose features" in (tmp_path / "auto" / "transferkit.json").read_text()


@pytest.mark.slow
def test_a_fit_killed_with_sigkill_resumes_from_its_last_checkpoint(small_train, tmp_path):
    workdir = tmp_path / "work"
    code = (
        "from transferkit import ImageClassifier;"
        f"ImageClassifier(strategy='scratch', epochs=40, batch_size=8, workdir={str(workdir)!r}, verbose=False)"
        f".fit({str(small_train)!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"})
    last = workdir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # let the checkpoint write finish (it is written atomically, then renamed)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "the first epoch never checkpointed"
    clf = ImageClassifier(strategy="scratch", epochs=2, batch_size=8, workdir=str(workdir), resume=True,
                          verbose=False).fit(small_train)
    assert clf.metrics_["resumed_after_epochs"] >= 1


def test_tta_averages_an_image_with_its_mirror(fitted_features, example_test):

    files = sorted(example_test.rglob("*.png"))[:6]
    plain = fitted_features.predict_proba(files)
    fitted_features.set_params(tta=True)
    try:
        averaged = fitted_features.predict_proba(files)
    finally:
        fitted_features.set_params(tta=False)
    mirrored = fitted_features._proba(fitted_features._get_extractor(mirror=True).extract(files).features)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2)
    assert not np.allclose(plain, mirrored)  # clip art is rarely symmetric: the mirror changes the prediction


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_fit_on_cpu_matches_a_single_process_fit(small_train, tmp_path):
    """A real 2-process DDP run (gloo on CPU, launched by torchrun) gives a model that predicts like one process."""
    common = ["fit", str(small_train), "--strategy", "finetune", "--unfreeze", "1", "--epochs", "1", "--lr", "1e-4", "--seed", "0", "--json"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(_free_port()), "-m", "transferkit.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # The same global batch: 2 processes x 4 images against 1 process x 8 images.
    ddp = subprocess.run(torchrun + common + ["--out", str(tmp_path / "ddp"), "--devices", "2", "--batch-size", "4"],
                         env=env, capture_output=True, text=True, timeout=400)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "transferkit.cli"] + common + ["--out", str(tmp_path / "one"),
                                                                               "--batch-size", "8"],
                            env=env, capture_output=True, text=True, timeout=400)
    assert single.returncode == 0, single.stderr[-3000:]
    files = sorted(small_train.rglob("*.png"))
    p_ddp = ImageClassifier.load(tmp_path / "ddp", verbose=False).predict_proba(files)
    p_one = ImageClassifier.load(tmp_path / "one", verbose=False).predict_proba(files)
    assert (p_ddp.argmax(1) == p_one.argmax(1)).mean() >= 0.9
    assert np.abs(p_ddp - p_one).max() < 0.15
    assert not (tmp_path / ".ddp.training").exists()  # checkpoints cleaned up once the model is saved


def _probe(per_class: int, val_accuracy: float, images_per_second=None):
    from transferkit.heads import LinearHead
    from transferkit.strategies import Probe

    y = np.repeat([0, 1], per_class)
    head = LinearHead(np.zeros(2), np.ones(2), np.zeros((1, 2)), np.zeros(1), 1.0, None)
    return Probe(None, None, y, np.arange(len(y)), np.arange(0), np.zeros((len(y), 2)), head, val_accuracy,
                 val_accuracy, [], {"images_per_second": images_per_second})


@pytest.mark.parametrize("per_class,val,budget,ips,expected,why", [
    (10, 0.60, None, None, "features", "the smallest class has 10"),
    (80, 0.99, None, None, "features", "already separate the classes"),
    (80, 0.80, None, None, "finetune", "leave room to adapt"),
    (80, 0.80, 10.0, None, "features", "over the 10 s budget"),  # 12 epochs x 160 images at 25 img/s: 77 s
    (80, 0.80, 100.0, 500.0, "finetune", "leave room to adapt"),  # measured 500 img/s -> 100 img/s: 19 s
    (80, 0.80, 100.0, 50.0, "features", "over the 100 s budget"),  # measured 50 img/s -> 10 img/s: 192 s
])
def test_auto_decides_from_labels_separation_and_a_budget_from_measured_speed(per_class, val, budget, ips,
                                                                              expected, why):
    from dataclasses import replace

    from transferkit.finetune import TrainConfig
    from transferkit.strategies import FitContext, choose_strategy
    from transferkit.zoo import resolve

    ctx = FitContext(spec=resolve("lite0"), weights=None, seed=0, val_fraction=0.2, precision="fp32", batch_size=8,
                     cache_dir=None, progress=False, train=TrainConfig(epochs=12))
    choice, _, reason = choose_strategy(_probe(per_class, val, ips), replace(ctx, time_budget=budget))
    assert choice == expected and why in reason


@pytest.mark.parametrize("per_class,requested,expected", [
    ({"a": 20, "b": 20}, None, 0.2),
    ({"a": 50, "b": 50}, None, 0.1),  # every class has 50: fine-tuning gets the images
    ({"a": 200, "b": 49}, None, 0.2),  # one small class keeps the larger hold-out
    ({"a": 200, "b": 200}, 0.3, 0.3),  # an explicit fraction always wins
])
def test_validation_holds_out_less_once_every_class_has_many_labels(per_class, requested, expected):
    from transferkit.strategies import validation_fraction

    labels = [name for name, n in per_class.items() for _ in range(n)]
    assert validation_fraction(labels, requested) == expected
