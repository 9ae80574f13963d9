"""Fine-tuning an image backbone, and training one from scratch, as a tuner of the pipeline: a featurizer and a
linear head in, a tuned featurizer and the head it learned out (the network's own classifier, as a linear head)."""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..heads import LinearHead
from .tuners import NetworkTuner


def tune_network(featurizer, head: LinearHead | None, items: list, y: np.ndarray, train_idx: np.ndarray,
                 val_idx: np.ndarray, tuner: NetworkTuner, *, run, from_scratch: bool = False,
                 output: str = "softmax"):
    """Train ``featurizer``'s network (a copy) with a fresh classifier on the training split.

    Fine-tuning (``head`` given) starts the classifier from the probe's head, retrains the top ``tuner.unfreeze``
    stages with discriminative learning rates (one more stage each epoch) and keeps BatchNorm statistics as
    ``tuner.bn_statistics`` says; from scratch every layer trains from the first epoch. Returns the tuned
    featurizer, its head and what happened (validation accuracy on ``val_idx`` with the final weights).

    ``output``: what the head gives (``LinearHead.output``): ``softmax`` over the classes of integer ``y``;
    ``sigmoid``, each label of the 0/1 matrix ``y``; ``identity``, the number ``y`` (learned standardised on the
    training split, and given back in its own units).
    """
    from ..runtime import seeded
    from ..zoo import set_num_classes
    from .data import ImageFiles
    from .engine import train_network
    from .groups import Plan, layer_groups, trainable_groups

    n_classes = {"softmax": int(y.max()) + 1 if len(y) else 0, "sigmoid": y.shape[1] if y.ndim == 2 else 0,
                 "identity": 1}[output]
    center, spread = 0.0, 1.0
    if output == "identity":  # standardised on the training split: one learning rate fits every unit of measure
        center, spread = float(y[train_idx].mean()), float(y[train_idx].std()) or 1.0
        y = (y - center) / spread
        if head is not None:
            head = replace(head, coef=head.coef / spread, intercept=(head.intercept - center) / spread)
    tuned = copy.copy(featurizer)
    tuned.network = copy.deepcopy(featurizer.network).cpu()
    network, spec = tuned.network, featurizer.spec
    with seeded(run.seed):  # the new classifier's initial weights follow the run's seed
        set_num_classes(network, spec, n_classes)
    plan, info = None, {}
    if head is not None:
        init_classifier_from_head(network, spec, head)
        groups = layer_groups(network, spec)
        n_trainable = trainable_groups(groups, tuner.unfreeze)
        lrs = tuple(tuner.lr * tuner.layer_decay ** (len(groups) - 1 - i) for i in range(len(groups)))
        schedule = tuple(range(2, n_trainable + 1)) or (1,)  # gradual: one more stage each epoch, head always trains
        plan = Plan(tuple(tuple(g) for g in groups), lrs, schedule, l2sp=tuner.l2sp, bn_statistics=tuner.bn_statistics)
        info = {"trainable_stages": n_trainable - 1, "stages": len(groups) - 1}
    pre = featurizer.preprocessing
    train_set = ImageFiles([items[i] for i in train_idx], y[train_idx],
                           pre.train_transform() if tuner.augment else pre.eval_transform())
    val_set = ImageFiles([items[i] for i in val_idx], y[val_idx], pre.eval_transform())
    workdir = Path(run.workdir) if run.workdir else Path(tempfile.mkdtemp(prefix="transferkit-train-"))
    start = time.perf_counter()
    try:
        info |= train_network(network, train_set, val_set, tuner, workdir, seed=run.seed, num_classes=n_classes,
                              precision=run.precision, progress=run.progress, plan=plan, resume=run.resume,
                              output=output)
    finally:
        if not run.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    info["train_seconds"] = time.perf_counter() - start
    network.eval()
    new_head = head_from_classifier(network, spec, output)
    if output == "identity":
        new_head = replace(new_head, coef=new_head.coef * spread, intercept=new_head.intercept * spread + center)
    set_num_classes(network, spec, 0)
    tuned.tuned, tuned._digest, tuned._placed = True, None, False
    return tuned, new_head, info


def init_classifier_from_head(network, spec, head: LinearHead) -> None:
    """Copy a linear head (its normalisation folded in) into the network's linear classifier."""
    import torch

    from ..zoo._images import classifier_layer

    weight, bias = head.as_linear()
    if weight.shape[0] == 1 and head.output == "softmax":  # binary: scikit-learn's one logit z becomes the pair (0, z)
        weight = np.concatenate([np.zeros_like(weight), weight])
        bias = np.concatenate([[0.0], bias])
    layer = classifier_layer(network, spec)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))


def head_from_classifier(network, spec, output: str = "softmax") -> LinearHead:
    """The network's classifier as a linear head on its pooled features (the same logits, read as ``output`` says)."""
    from ..zoo._images import classifier_layer

    layer = classifier_layer(network, spec)
    coef = layer.weight.detach().double().cpu().numpy()
    intercept = layer.bias.detach().double().cpu().numpy()
    return replace(LinearHead.plain(coef, intercept), output=output)
