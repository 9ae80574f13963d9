"""Fine-tuning images: layer groups, the probe-initialised head, the BatchNorm policy, resume after SIGKILL, and a
2-process DDP run whose gradients must be synchronised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from transferkit import FineTune, ImageClassifier, Scratch, zoo
from transferkit.features import extract
from transferkit.featurizers import ImageBackbone
from transferkit.finetune import SCRATCH, NetworkTuner
from transferkit.finetune.groups import Plan, layer_groups, trainable_groups
from transferkit.finetune.module import ClassifierModule
from transferkit.finetune.network import head_from_classifier, init_classifier_from_head
from transferkit.heads import fit_head


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
    backbone = ImageBackbone.from_spec(spec, precision="fp32")
    classes = sorted(p.name for p in small_train.iterdir())[:n_classes]
    paths = [p for c in classes for p in sorted((small_train / c).glob("*.png"))]
    y = np.array([classes.index(p.parent.name) for p in paths])
    features = extract(backbone, paths, use_cache=False).features
    head = fit_head(features, y, norm="standard")
    net = zoo.create_backbone(spec, num_classes=n_classes)
    init_classifier_from_head(net, spec, head)
    logits = ImageBackbone(spec, net, spec.preprocessing, precision="fp32").transform(
        [backbone.prepare(p) for p in paths])
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits).double(), 1).numpy(), head.predict_proba(features),
                               atol=1e-4)
    # and back: the network's classifier read as a head predicts the same logits
    again = head_from_classifier(net, spec)
    np.testing.assert_allclose(again.decision_function(features), logits, atol=1e-3)


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
    clf = ImageClassifier(strategy=FineTune(tuner=NetworkTuner(unfreeze=1, epochs=1)), batch_size=8,
                          verbose=False).fit(small_train)
    pretrained = zoo.create_backbone(zoo.resolve("lite0"))
    tuned = clf.featurizer_.network
    assert torch.equal(tuned.conv_stem.weight, pretrained.conv_stem.weight)  # frozen
    assert not torch.equal(tuned.conv_head.weight, pretrained.conv_head.weight)  # retrained
    assert 0 <= clf.metrics_["probe_val_accuracy"] <= 1 and clf.metrics_["trainable_stages"] == 1
    clf.save(tmp_path / "ft")
    files = sorted(small_train.rglob("*.png"))
    assert np.array_equal(ImageClassifier.load(tmp_path / "ft", verbose=False).predict_proba(files), clf.predict_proba(files))


def test_a_tuning_that_changes_nothing_is_estimated_at_the_frozen_features_accuracy(small_train, monkeypatch):
    """The tuned model's estimate is the frozen head's cross-validation plus tuning's gain on the split, measured
    against that same head: a network that comes back unchanged, with the frozen head, gains exactly nothing (the
    gain was once measured against the linear head the classifier starts from, which is weaker on images: MNIST at
    50 labels per class printed 1.000 for a model that scored 0.946)."""
    from transferkit.strategies import Features

    frozen_head = Features(power=0.05)  # far from the linear head (power 1), so that the two disagree on this split
    _tuning_changes_nothing(monkeypatch, frozen_head)
    strategy = FineTune(features=frozen_head)
    m = ImageClassifier(strategy=strategy, val_fraction=0.5, verbose=False).fit(small_train).metrics_
    assert m["n_val"] == 9 and m["val_accuracy"] == m["probe_val_accuracy"]
    assert m["accuracy_estimate"] == pytest.approx(m["probe_cv_estimate"])


def _tuning_changes_nothing(monkeypatch, head_settings) -> None:
    """``tune_network`` replaced by one that returns the network as it was, with ``head_settings``' head."""
    import transferkit.finetune.network as network

    def unchanged(featurizer, head, items, y, train_idx, val_idx, tuner, *, run):
        x = extract(featurizer, [items[i] for i in train_idx], use_cache=False).features
        return featurizer, head_settings.fit_head(x, y[train_idx], run.seed, featurizer.blocks), {
            "stages": 7, "trainable_stages": 0, "epochs_run": 0}

    monkeypatch.setattr(network, "tune_network", unchanged)


def test_a_network_validated_on_enough_items_records_the_temperature_of_its_held_out_probabilities(
        small_train, monkeypatch):
    """What ``predict`` reads a tuned network's accuracy on unlabeled items with: the temperature its probabilities
    on the held-out split fit, with the final weights. From fewer than 50 items none is recorded (all right, they
    would call the network certain)."""
    from transferkit.strategies import Features

    _tuning_changes_nothing(monkeypatch, Features())
    few = ImageClassifier(strategy=FineTune(), val_fraction=0.5, verbose=False).fit(small_train)
    assert "val_temperature" not in few.metrics_ and few.predictor().label_free(np.ones((30, 3)) / 3) is None
    monkeypatch.setattr("transferkit.evaluate.VAL_TEMPERATURE_MIN_ITEMS", 9)
    clf = ImageClassifier(strategy=FineTune(), val_fraction=0.5, verbose=False).fit(small_train)
    files = sorted(small_train.rglob("*.png"))
    assert clf.metrics_["n_val"] == 9 and clf.metrics_["val_temperature"] > 0
    proba = clf.predict_proba(files * 2)  # 36 inputs: past the 20 the estimate starts at
    estimate = clf.predictor().label_free(proba)
    assert estimate["n"] == 36 and estimate["at_fit"] == clf.metrics_["accuracy_estimate"]
    tempered = proba ** (1 / clf.metrics_["val_temperature"])
    assert estimate["accuracy"] == pytest.approx((tempered.max(1) / tempered.sum(1)).mean())


def test_auto_keeps_features_when_labels_are_few_and_says_why(small_train, tmp_path):
    clf = ImageClassifier(strategy="auto", verbose=False).fit(small_train)
    assert clf.metrics_["auto_choice"] == "features" and not clf.featurizer_.tuned
    assert "6 labels" in clf.reason_ and clf.reason_.startswith("auto chose features")
    clf.save(tmp_path / "auto")
    assert "auto chose features" in (tmp_path / "auto" / "report.json").read_text()


@pytest.mark.slow
def test_a_fit_killed_with_sigkill_resumes_from_its_last_checkpoint(small_train, tmp_path):
    workdir = tmp_path / "work"
    code = (
        "from transferkit import ImageClassifier;"
        "from transferkit import Scratch;"
        "from transferkit.finetune import NetworkTuner;"
        "ImageClassifier(strategy=Scratch(tuner=NetworkTuner(epochs=40, lr=2e-3, unfreeze='all')), batch_size=8, "
        f"workdir={str(workdir)!r}, verbose=False)"
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
    clf = ImageClassifier(strategy=Scratch(tuner=NetworkTuner(**{**SCRATCH, "epochs": 2})), batch_size=8,
                          workdir=str(workdir), resume=True,
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
    mirrored = fitted_features.head_.predict_proba(extract(fitted_features.featurizer_.with_view("mirror"), files).features)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2)
    assert not np.allclose(plain, mirrored)  # clip art is rarely symmetric: the mirror changes the prediction


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_takes_the_same_step_as_one_process_with_the_global_batch(small_train, tiny_backbone, tmp_path):
    """A real 2-process DDP run (gloo on CPU, launched by torchrun): 2 x 4 images per step must update the weights
    exactly as 1 x 8 images do. Without gradient synchronisation each rank would step on its own half-batch and the
    weights would differ in a large share of parameters."""
    from safetensors.torch import load_file

    data = tmp_path / "data"
    for cls in ("birds", "fruit"):
        (data / cls).mkdir(parents=True)
        for src in sorted((small_train / cls).glob("*.png"))[:5]:
            (data / cls / src.name).write_bytes(src.read_bytes())
    # 10 images, 2 held out: 8 train in one step; no augmentation, fp32, frozen BatchNorm: nothing random is left.
    # One stage: single-process fine-tuning unfreezes stages one per epoch, DDP trains every planned stage at once.
    common = ["fit", str(data), "--model", tiny_backbone, "--strategy", "finetune", "--unfreeze", "1", "--epochs", "1",
              "--lr", "1e-3", "--no-augment", "--precision", "fp32", "--val-fraction", "0.2", "--seed", "0", "--json"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(_free_port()), "-m", "transferkit.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(torchrun + common + ["--out", str(tmp_path / "ddp"), "--devices", "2", "--batch-size", "4"],
                         env=env, capture_output=True, text=True, timeout=400)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "transferkit.cli"] + common + ["--out", str(tmp_path / "one"),
                                                                               "--batch-size", "8"],
                            env=env, capture_output=True, text=True, timeout=400)
    assert single.returncode == 0, single.stderr[-3000:]
    before = ImageBackbone.from_spec(zoo.resolve(tiny_backbone)).network.state_dict()
    weights = {run: load_file(str(tmp_path / run / "featurizer" / "model.safetensors")) for run in ("ddp", "one")}
    trained = [k for k in before if before[k].is_floating_point() and not torch.equal(weights["one"][k], before[k])]
    assert len(trained) >= 4  # the top stage took its step
    diff = np.concatenate([(weights["ddp"][k].double() - weights["one"][k].double()).abs().flatten().numpy()
                           for k in trained])
    moved = np.concatenate([(weights["one"][k].double() - before[k].double()).abs().flatten().numpy() for k in trained])
    assert (moved > 1e-4).mean() > 0.5  # most trained weights moved by about the learning rate...
    assert (diff > 1e-4).mean() < 1e-3, f"{(diff > 1e-4).mean():.1%} of the trained weights differ"  # ...the same way
    head = {run: load_file(str(tmp_path / run / "head" / "model.safetensors")) for run in ("ddp", "one")}
    assert torch.allclose(head["ddp"]["coef"], head["one"]["coef"], atol=1e-4)
    assert not (tmp_path / ".ddp.training").exists()  # checkpoints cleaned up once the model is saved
