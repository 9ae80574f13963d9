"""The strategies: how a classifier is made from a backbone and labeled images.

- ``features``: the pretrained network as a fixed feature extractor, a logistic-regression head on its features.
- ``scratch``: the same architecture from random initialisation, trained on the same images: the honest
  "no transfer" baseline.

Each returns a :class:`Fitted` and one line saying what it did.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import LabeledImages, check_trainable, load_image, stratified_split
from .data.images import ImageDecodeError
from .features import FeatureExtractor
from .finetune import ImageFiles, TrainConfig, train_network
from .heads import LinearHead, fit_logistic_head
from .progress import progress_bar
from .zoo import ModelSpec, create_backbone, weights_digest

STRATEGIES = ("features", "scratch")


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
    val_fraction: float
    precision: str
    batch_size: int
    cache_dir: str | None
    progress: bool
    train: TrainConfig


def model_key(spec: ModelSpec, network: nn.Module) -> str:
    return f"{spec.family}:{spec.arch}:{weights_digest(network)}"


def fit_features(data: LabeledImages, classes: list[str], ctx: FitContext) -> Fitted:
    """Features from the frozen pretrained backbone (cached), head chosen on a train split, refit on all data."""
    network = create_backbone(ctx.spec, weights=ctx.weights, num_classes=0)
    extractor = FeatureExtractor(network, ctx.spec.preprocessing, model_key(ctx.spec, network), precision=ctx.precision,
                                 batch_size=ctx.batch_size, cache_dir=ctx.cache_dir, progress=ctx.progress)
    extraction = extractor.extract(data.paths)
    data = data.subset(np.flatnonzero(extraction.ok))
    y = _targets_after_skipping(data, classes, extraction.skipped)
    train_idx, val_idx = stratified_split(data.labels, ctx.val_fraction, ctx.seed)
    x = extraction.features
    probe = fit_logistic_head(x[train_idx], y[train_idx], seed=ctx.seed)
    metrics = _val_metrics(y[val_idx], probe.predict_proba(x[val_idx]).argmax(1), len(classes))
    head = fit_logistic_head(x, y, seed=ctx.seed, C=probe.C)  # final head: all labels, the C chosen above
    metrics |= {
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "head_C": probe.C,
        "images_per_second": extraction.images_per_second, "n_features_computed": extraction.n_computed,
        "n_features_cached": extraction.n_cached, "precision": extractor.precision,
    }
    reason = (f"features: frozen {ctx.spec.name} + logistic regression (C={probe.C:.3g}); "
              f"validation accuracy {metrics['val_accuracy']:.3f} on {len(val_idx)} held-out images")
    return Fitted(extractor.network.cpu(), head, 0, metrics, extraction.skipped, reason)


def fit_scratch(data: LabeledImages, classes: list[str], ctx: FitContext) -> Fitted:
    """The same architecture, randomly initialised, trained on the same images with augmentation."""
    data, skipped = scan_images(data, ctx.progress)
    y = _targets_after_skipping(data, classes, skipped)
    train_idx, val_idx = stratified_split(data.labels, ctx.val_fraction, ctx.seed)
    torch.manual_seed(ctx.seed)
    network = create_backbone(ctx.spec, pretrained=False, num_classes=len(classes))
    pre = ctx.spec.preprocessing
    train_set = ImageFiles([data.paths[i] for i in train_idx], y[train_idx], pre.train_transform())
    val_set = ImageFiles([data.paths[i] for i in val_idx], y[val_idx], pre.eval_transform())
    workdir = Path(tempfile.mkdtemp(prefix="transferkit-train-"))
    try:
        start = time.perf_counter()
        info = train_network(network, train_set, val_set, ctx.train, workdir, seed=ctx.seed,
                             num_classes=len(classes), progress=ctx.progress)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    network.eval()
    extractor = FeatureExtractor(network, pre, "unused", precision=ctx.precision, use_cache=False, progress=False)
    val_logits = np.concatenate([extractor.forward(torch.stack([pre.eval_transform()(load_image(data.paths[i]))
                                                                for i in chunk]))
                                 for chunk in np.array_split(val_idx, max(1, len(val_idx) // 32))])
    metrics = _val_metrics(y[val_idx], val_logits.argmax(1), len(classes))
    metrics |= {"n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "train_seconds": seconds,
                "train_config": ctx.train.to_dict(), **info}
    reason = (f"scratch: {ctx.spec.arch} from random initialisation, {info['epochs_run'] + 1} epochs; "
              f"validation accuracy {metrics['val_accuracy']:.3f}")
    return Fitted(network.cpu(), None, len(classes), metrics, skipped, reason)


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


def _val_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "val_accuracy": float(accuracy_score(y_true, y_pred)),
        "val_macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=list(range(n_classes)), zero_division=0)),
    }
