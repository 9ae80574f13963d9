"""The strategies: how a classifier is made from a backbone and labeled images.

- ``features``: the pretrained network as a fixed feature extractor, a logistic-regression head on its features.
- ``finetune``: that head initialises a new classifier, then the top stages are retrained (discriminative learning
  rates, gradual unfreezing, frozen BatchNorm kept in eval mode, optional L2-SP).
- ``auto``: probes first, then picks one of the two from labels per class, probe accuracy and the time budget.
- ``scratch``: the same architecture from random initialisation, trained on the same images: the honest
  "no transfer" baseline.

Each returns a :class:`Fitted` and one line saying what it did (and, for ``auto``, why).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import LabeledImages, check_trainable, load_image, stratified_split
from .data.images import ImageDecodeError
from .evaluate import validation_metrics as _val_metrics
from .features import FeatureExtractor
from .finetune import ImageFiles, TrainConfig, train_network
from .finetune.groups import layer_groups, trainable_groups
from .finetune.module import Plan
from .heads import LinearHead, fit_logistic_head
from .progress import progress_bar
from .zoo import ModelSpec, create_backbone, set_num_classes, weights_digest

STRATEGIES = ("features", "finetune", "scratch", "auto")
DEFAULT_EPOCHS = {"finetune": 12, "scratch": 30, "auto": 12}  # for strategies that train a network
DEFAULT_LR = {"finetune": 3e-4, "scratch": 2e-3, "auto": 3e-4}  # finetune: head's peak; lower stages decay


@dataclass
class Fitted:
    network: nn.Module
    head: LinearHead | None
    network_classes: int  # 0: the network gives features for the head; k: it gives logits itself
    metrics: dict
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    reason: str = ""


@dataclass(frozen=True)
class FitContext:
    spec: ModelSpec
    weights: str | None
    seed: int
    val_fraction: float | None  # None: validation_fraction decides
    precision: str
    batch_size: int
    cache_dir: str | None
    progress: bool
    train: TrainConfig
    unfreeze: int | str = 3
    layer_decay: float = 0.7
    l2sp: float = 0.0
    workdir: str | None = None
    resume: bool = False
    time_budget: float | None = None
    bn_statistics: str = "frozen"


VAL_FRACTION = 0.2
VAL_FRACTION_MANY = 0.1  # from VAL_MANY_PER_CLASS labels per class in every class
VAL_MANY_PER_CLASS = 50


def validation_fraction(labels, requested: float | None) -> float:
    """The share of each class held out for validation: ``requested`` when given; otherwise 20 %, or 10 % once every
    class has at least 50 labeled images (fine-tuning then needs the images more than validation does: measured
    +1.7 points on Fashion-MNIST at 100 per class, README)."""
    if requested is not None:
        return requested
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return VAL_FRACTION_MANY if len(counts) and counts.min() >= VAL_MANY_PER_CLASS else VAL_FRACTION


def model_key(spec: ModelSpec, network: nn.Module) -> str:
    return f"{spec.family}:{spec.arch}:{weights_digest(network)}"


def fit_features(data: LabeledImages, classes: list[str], ctx: FitContext, probe: Probe | None = None) -> Fitted:
    """Features from the frozen pretrained backbone (cached), head chosen on a train split, refit on all data."""
    probe = probe or linear_probe(data, classes, ctx)
    head = fit_logistic_head(probe.features, probe.y, seed=ctx.seed, C=probe.head.C)  # all labels, the C chosen
    metrics = {
        "val_accuracy": probe.val_accuracy, "val_macro_f1": probe.val_macro_f1,
        "n_train": int(len(probe.train_idx)), "n_val": int(len(probe.val_idx)), "head_C": probe.head.C,
        **probe.extraction_info,
    }
    reason = (f"features: frozen {ctx.spec.name} + logistic regression (C={probe.head.C:.3g}); "
              f"validation accuracy {probe.val_accuracy:.3f} on {len(probe.val_idx)} held-out images")
    return Fitted(probe.network, head, 0, metrics, probe.skipped, reason)


def fit_scratch(data: LabeledImages, classes: list[str], ctx: FitContext) -> Fitted:
    """The same architecture, randomly initialised, trained on the same images with augmentation."""
    data, skipped = scan_images(data, ctx.progress)
    y = _targets_after_skipping(data, classes, skipped)
    train_idx, val_idx = stratified_split(data.labels, validation_fraction(data.labels, ctx.val_fraction), ctx.seed)
    torch.manual_seed(ctx.seed)
    network = create_backbone(ctx.spec, pretrained=False, num_classes=len(classes))
    metrics = _train_and_score(network, data, y, train_idx, val_idx, ctx, plan=None)
    reason = (f"scratch: {ctx.spec.arch} from random initialisation, {metrics['epochs_run']} epochs; "
              f"validation accuracy {metrics['val_accuracy']:.3f}")
    return Fitted(network.cpu(), None, len(classes), metrics, skipped, reason)


def fit_finetune(data: LabeledImages, classes: list[str], ctx: FitContext, probe: Probe | None = None) -> Fitted:
    """Linear probe on cached features first, then retrain the top stages with discriminative learning rates."""
    probe = probe or linear_probe(data, classes, ctx)
    data, y, train_idx, val_idx = probe.data, probe.y, probe.train_idx, probe.val_idx
    network = copy.deepcopy(probe.network)  # the probe stays intact (auto falls back on it)
    set_num_classes(network, ctx.spec, len(classes))
    init_classifier_from_head(network, ctx.spec, probe.head)
    groups = layer_groups(network, ctx.spec)
    n_trainable = trainable_groups(groups, ctx.unfreeze)
    lrs = tuple(ctx.train.lr * ctx.layer_decay ** (len(groups) - 1 - i) for i in range(len(groups)))
    schedule = tuple(range(2, n_trainable + 1)) or (1,)  # gradual: one more stage each epoch, head always trains
    plan = Plan(tuple(tuple(g) for g in groups), lrs, schedule, l2sp=ctx.l2sp, bn_statistics=ctx.bn_statistics)
    metrics = _train_and_score(network, data, y, train_idx, val_idx, ctx, plan=plan)
    metrics |= {"probe_val_accuracy": probe.val_accuracy, "probe_C": probe.head.C, "unfreeze": ctx.unfreeze,
                "trainable_groups": n_trainable - 1, "layer_decay": ctx.layer_decay, "l2sp": ctx.l2sp,
                "bn_statistics": ctx.bn_statistics}
    stages = "all stages" if ctx.unfreeze == "all" else f"top {n_trainable - 1} of {len(groups) - 1} stages"
    reason = (f"finetune: {ctx.spec.name}, probe-initialised head, {stages} retrained (layer decay "
              f"{ctx.layer_decay}), {metrics['epochs_run']} epochs; validation accuracy {metrics['val_accuracy']:.3f} "
              f"(linear probe alone: {probe.val_accuracy:.3f})")
    return Fitted(network.cpu(), None, len(classes), metrics, probe.skipped, reason)


@dataclass
class Probe:
    """A pretrained backbone, its cached features and a logistic head fit on the training split."""

    network: nn.Module
    data: LabeledImages
    y: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    features: np.ndarray
    head: LinearHead
    val_accuracy: float
    val_macro_f1: float
    skipped: list
    extraction_info: dict


def linear_probe(data: LabeledImages, classes: list[str], ctx: FitContext) -> Probe:
    """Extract (cached) features, drop unreadable images, split, and fit the head on the training split."""
    network = create_backbone(ctx.spec, weights=ctx.weights, num_classes=0)
    extractor = FeatureExtractor(network, ctx.spec.preprocessing, model_key(ctx.spec, network), precision=ctx.precision,
                                 batch_size=ctx.batch_size, cache_dir=ctx.cache_dir, progress=ctx.progress)
    extraction = extractor.extract(data.paths)
    data = data.subset(np.flatnonzero(extraction.ok))
    y = _targets_after_skipping(data, classes, extraction.skipped)
    train_idx, val_idx = stratified_split(data.labels, validation_fraction(data.labels, ctx.val_fraction), ctx.seed)
    x = extraction.features
    head = fit_logistic_head(x[train_idx], y[train_idx], seed=ctx.seed)
    val = _val_metrics(y[val_idx], head.predict_proba(x[val_idx]).argmax(1), len(classes))
    info = {"images_per_second": extraction.images_per_second, "n_features_computed": extraction.n_computed,
            "n_features_cached": extraction.n_cached, "precision": extractor.precision}
    return Probe(extractor.network.cpu(), data, y, train_idx, val_idx, x, head, val["val_accuracy"],
                 val["val_macro_f1"], extraction.skipped, info)


def init_classifier_from_head(network: nn.Module, spec: ModelSpec, head: LinearHead) -> None:
    """Copy a logistic head (standardise, then linear) into the network's linear classifier."""
    weight = head.coef / head.scale
    bias = head.intercept - weight @ head.mean
    if weight.shape[0] == 1:  # binary: scikit-learn's one logit z becomes the pair (0, z)
        weight = np.concatenate([np.zeros_like(weight), weight])
        bias = np.concatenate([[0.0], bias])
    layer = network.get_submodule(spec.classifier)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))


def _train_and_score(network, data, y, train_idx, val_idx, ctx: FitContext, plan: Plan | None) -> dict:
    pre = ctx.spec.preprocessing
    train_set = ImageFiles([data.paths[i] for i in train_idx], y[train_idx], pre.train_transform())
    val_set = ImageFiles([data.paths[i] for i in val_idx], y[val_idx], pre.eval_transform())
    workdir = Path(ctx.workdir) if ctx.workdir else Path(tempfile.mkdtemp(prefix="transferkit-train-"))
    start = time.perf_counter()
    info = train_network(network, train_set, val_set, ctx.train, workdir, seed=ctx.seed,
                         num_classes=int(y.max()) + 1, progress=ctx.progress, plan=plan, resume=ctx.resume)
    seconds = time.perf_counter() - start
    if not ctx.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    network.eval()
    scorer = FeatureExtractor(network, pre, "unused", precision=ctx.precision, use_cache=False, progress=False)
    val_logits = scorer.extract([data.paths[i] for i in val_idx]).features
    metrics = _val_metrics(y[val_idx], val_logits.argmax(1), int(y.max()) + 1)
    return metrics | {"n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "train_seconds": seconds,
                      "train_config": ctx.train.to_dict(), "precision": scorer.precision, **info}


AUTO_MIN_PER_CLASS = 50  # measured: below ~50 labels per class fine-tuning did not beat the frozen features (README)
AUTO_SEPARATED = 0.97  # a linear probe this accurate on validation leaves little for fine-tuning to win
FINETUNE_IMAGES_PER_SECOND_CPU = 25.0  # EfficientNet-Lite0 training, bf16, 2 cores: when nothing was measured
TRAIN_SLOWER_THAN_EXTRACTION = 5.0  # measured: 126 img/s extraction vs ~25 img/s fine-tuning (augment + backward)


def fit_auto(data: LabeledImages, classes: list[str], ctx: FitContext) -> Fitted:
    """Probe first, then decide between ``features`` and ``finetune`` (and how much to unfreeze), saying why."""
    probe = linear_probe(data, classes, ctx)
    choice, unfreeze, why = choose_strategy(probe, ctx)
    if choice == "features":
        fitted = fit_features(data, classes, ctx, probe=probe)
    else:
        fitted = fit_finetune(data, classes, replace(ctx, unfreeze=unfreeze), probe=probe)
        if fitted.metrics["val_accuracy"] <= probe.val_accuracy:  # a tie goes to the simpler, cheaper model
            choice = "features"
            why += (f"; but fine-tuning reached {fitted.metrics['val_accuracy']:.3f} on validation, below the "
                    f"probe's {probe.val_accuracy:.3f} or equal to it, so the frozen features are kept")
            fitted = fit_features(data, classes, ctx, probe=probe)
    fitted.metrics["auto_choice"] = choice
    fitted.metrics["auto_reason"] = why
    fitted.reason = f"auto chose {choice}: {why}. {fitted.reason}"
    return fitted


def choose_strategy(probe: Probe, ctx: FitContext) -> tuple[str, int | str, str]:
    """(strategy, unfreeze, reason) from labels per class, how well the probe separates the classes, and time."""
    per_class = int(np.bincount(probe.y).min())
    if per_class < AUTO_MIN_PER_CLASS:
        return "features", 0, (f"the smallest class has {per_class} labeled images (< {AUTO_MIN_PER_CLASS}); with so "
                               "few, fine-tuning did not beat the frozen features in transferkit's benchmarks")
    if probe.val_accuracy >= AUTO_SEPARATED:
        return "features", 0, (f"the pretrained features already separate the classes (probe validation accuracy "
                               f"{probe.val_accuracy:.3f})")
    measured = probe.extraction_info.get("images_per_second")  # this machine's inference speed, when it extracted
    speed = measured / TRAIN_SLOWER_THAN_EXTRACTION if measured else FINETUNE_IMAGES_PER_SECOND_CPU
    estimate = ctx.train.epochs * len(probe.train_idx) / speed
    if ctx.time_budget is not None and estimate > ctx.time_budget:
        return "features", 0, f"fine-tuning would take about {estimate:.0f} s, over the {ctx.time_budget:.0f} s budget"
    unfreeze: int | str = 2 if per_class < 50 else 4 if per_class < 200 else "all"
    return "finetune", unfreeze, (f"at least {per_class} labeled images per class and a probe at "
                                  f"{probe.val_accuracy:.3f} on validation leave room to adapt the top layers "
                                  f"(unfreeze {unfreeze})")


FITTERS = {"features": fit_features, "finetune": fit_finetune, "scratch": fit_scratch, "auto": fit_auto}


def scan_images(data: LabeledImages, progress: bool) -> tuple[LabeledImages, list[tuple[Path, str]]]:
    """Decode every image once; keep the readable ones and say why the others were dropped."""
    keep, skipped = [], []
    with progress_bar("Checking images", total=len(data), enabled=progress) as advance:
        for i, path in enumerate(data.paths):
            try:
                load_image(path)
                keep.append(i)
            except ImageDecodeError as exc:
                skipped.append((path, exc.reason))
            advance(1)
    return data.subset(keep), skipped


def _targets_after_skipping(data: LabeledImages, classes: list[str], skipped: list) -> np.ndarray:
    """Class indices of the readable images; a clear error if skipping emptied a class or left too few images."""
    from .errors import BadInputError

    y = np.array([classes.index(c) for c in data.labels], dtype=int)
    empty = [c for k, c in enumerate(classes) if not (y == k).any()]
    if empty:
        raise BadInputError(
            f"Class {', '.join(repr(c) for c in empty)} has no readable images left after skipping "
            f"{len(skipped)} unreadable files (e.g. {skipped[0][0]}: {skipped[0][1]}). Fix or replace those files."
        )
    check_trainable(data, "the training data (after skipping unreadable images)")
    return y
