"""Several labels per item and numbers: a head on frozen features for each, or a tuned network, and its honest
estimate (the metrics, and measuring a saved model on labeled data, are ``evaluate``'s).

Written once for images and texts (``targets`` decides which kind of label a fit has):

- several labels: one logistic regression per label (``heads.fit_label_head``) on the same normalised features as a
  class head; each label's threshold is chosen on out-of-fold probabilities (the best F1, drawn toward 0.5 where few
  items carry the label, or the lowest threshold that reaches a precision the user asks for);
- numbers: ridge regression (``heads.fit_number_head``), its penalty chosen by leave-one-out error, on the features
  normalised the way that cross-validates best (``NUMBER_HEADS``).

The estimate a fit reports comes from 5-fold cross-validation; for several labels each fold's items are judged at
thresholds chosen on the other folds' out-of-fold probabilities, so no threshold is chosen on the items it is
scored on; for numbers the folds that chose the normalisation among three measure it (a slight optimism, said in the
fit's reason). Intervals are percentile bootstraps over items (``evaluate.interval``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .errors import BadInputError
from .evaluate import label_metrics, number_metrics
from .targets import Resolved

FOLDS = 5
DEFAULT_THRESHOLD = 0.5  # a label no fold saw twice keeps it
# A label's best-F1 threshold is drawn toward 0.5 (where a head with balanced class weights cuts by itself) in logit
# space, by positives / (positives + PRIOR_POSITIVES): a threshold read off a handful of out-of-fold positives is
# mostly noise (benchmarks/task_shapes.py compares it with 0.5 and with the unshrunk threshold).
PRIOR_POSITIVES = 20


# -- thresholds ------------------------------------------------------------------------------------------------------

def choose_thresholds(P: np.ndarray, Y: np.ndarray, min_precision: float | None = None) -> np.ndarray:
    """Each label's threshold on probabilities ``P`` of items with 0/1 labels ``Y``: the one with the best F1 drawn
    toward 0.5 as ``PRIOR_POSITIVES`` says, or with ``min_precision`` the lowest that keeps precision at or above it
    (no such threshold: above every probability, so the label is never given)."""
    best = best_thresholds(P, Y, min_precision)
    if min_precision is not None:
        return best
    from scipy.special import expit, logit

    weight = Y.sum(0) / (Y.sum(0) + PRIOR_POSITIVES)
    return expit(weight * logit(np.clip(best, 1e-6, 1 - 1e-6)))


def best_thresholds(P: np.ndarray, Y: np.ndarray, min_precision: float | None = None) -> np.ndarray:
    """Each label's threshold with the best F1 on ``P`` and ``Y`` (or the lowest with ``min_precision``), a cut
    halfway between two neighbouring probabilities."""
    thresholds = np.full(P.shape[1], DEFAULT_THRESHOLD)
    for j in range(P.shape[1]):
        p, y = P[:, j], Y[:, j]
        if y.sum() == 0 or y.sum() == len(y):
            continue
        order = np.argsort(-p, kind="stable")
        p, y = p[order], y[order]
        tp = np.cumsum(y)
        precision = tp / np.arange(1, len(y) + 1)
        recall = tp / y.sum()
        cuts = np.flatnonzero(np.r_[p[1:] < p[:-1], True])  # the last of each run of equal probabilities
        if min_precision is None:
            f1 = 2 * precision[cuts] * recall[cuts] / np.maximum(precision[cuts] + recall[cuts], 1e-12)
            best = cuts[int(np.argmax(f1))]
        else:
            good = cuts[precision[cuts] >= min_precision]
            if not len(good):
                thresholds[j] = min(1.0, float(p[0]) + 1e-6)
                continue
            best = good[-1]
        below = p[best + 1] if best + 1 < len(p) else max(0.0, p[best] - 1e-3)
        thresholds[j] = float((p[best] + below) / 2)
    return thresholds


# -- fitting ---------------------------------------------------------------------------------------------------------

# How a number head normalises the features; a fit keeps the one with the best cross-validated R². The class head's
# (each backbone's block to unit length after a square root, one ridge per block, averaged) throws away how strongly
# a network responds, which a number such as a count can depend on (benchmarks/task_shapes.py measures the choice).
NUMBER_HEADS = {"each backbone's block to unit length after a square root": {"norm": "l2", "power": "auto",
                                                                             "per_block": True},
                "rows to unit length": {"norm": "l2", "power": 1.0, "per_block": False},
                "features as extracted": {"norm": "none", "power": 1.0, "per_block": False}}


def _label_fit(blocks: tuple[int, ...], seed: int) -> Callable:
    from .heads import fit_label_head

    def fit(a, b):
        return fit_label_head(a, b, power="auto", blocks=blocks, seed=seed)

    return fit


def _best_number_fit(x, y: np.ndarray, splits, blocks: tuple[int, ...]) -> tuple[str, Callable, np.ndarray, dict]:
    """The normalisation of ``NUMBER_HEADS`` whose ridge cross-validates best on ``x``: its name, its fit, its
    out-of-fold predictions, and every normalisation's R² (ties: the first, the class head's normalisation)."""
    fits = {name: _number_fit(settings, blocks) for name, settings in NUMBER_HEADS.items()}
    predictions = {name: out_of_fold(fit, x, y, splits)[:, 0] for name, fit in fits.items()}
    scores = {name: _r2(y, p) for name, p in predictions.items()}
    chosen = max(scores, key=lambda name: scores[name])
    return chosen, fits[chosen], predictions[chosen], scores


def _number_fit(settings: dict, blocks: tuple[int, ...]) -> Callable:
    from .heads import fit_number_head

    def fit(a, b):
        return fit_number_head(a, b, norm=settings["norm"], power=settings["power"],
                               blocks=blocks if settings["per_block"] else ())

    return fit


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, predicted))


def folds_of(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold

    k = int(max(2, min(FOLDS, n // 2)))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n)))


def out_of_fold(fit: Callable, x, target: np.ndarray, splits) -> np.ndarray:
    """Each item's prediction by the head fitted on the other folds."""
    width = target.shape[1] if target.ndim == 2 else 1
    out = np.zeros((len(target), width))
    for train, test in splits:
        out[test] = np.asarray(fit(x[train], target[train]).predict_proba(x[test])).reshape(len(test), width)
    return out


def cross_fitted(P: np.ndarray, Y: np.ndarray, splits, min_precision: float | None) -> np.ndarray:
    """The labels each item gets at thresholds chosen without it: on the out-of-fold probabilities of the other
    folds' items."""
    predicted = np.zeros_like(Y)
    for train, test in splits:
        predicted[test] = P[test] >= choose_thresholds(P[train], Y[train], min_precision)
    return predicted


def fit_shape(featurizer, resolved: Resolved, run, *, min_precision: float | None = None, extraction=None):
    """(a ``strategies.Fitted``, each label's threshold or None) for several labels or a number: features (cached;
    or ``extraction``, already made), the head on all of them, its cross-validated estimate."""
    from .features import extract
    from .strategies import Fitted

    noun = featurizer.modality
    if featurizer.learns_from_data:
        raise BadInputError("Several labels per item and numbers are learned on a pretrained featurizer's frozen "
                            "features; pick a pretrained backbone or encoder (strategy='features').")
    data = resolved.data
    if extraction is None:
        extraction = extract(featurizer, data.items, batch_size=run.batch_size, cache_dir=run.cache_dir,
                             progress=run.progress, description=f"Features of {featurizer.name}", onnx=True)
    keep = np.flatnonzero(extraction.ok)
    x, blocks, seed = extraction.features, featurizer.blocks, run.seed
    if len(keep) < 4:
        raise BadInputError(f"{data.origin}: {len(keep)} readable {noun}(s); give at least 4 to learn from and check.")
    splits = folds_of(len(keep), seed)
    metrics: dict = {"target_kind": resolved.kind, "features_per_second": extraction.per_second,
                     "n_features_computed": extraction.n_computed, "n_features_cached": extraction.n_cached,
                     "cv_folds": len(splits), "cv_n": int(len(keep))}
    if resolved.kind == "labels":
        Y = resolved.indicator()[keep]
        lost = [n for n, c in zip(resolved.names, Y.sum(0)) if c < 2]
        if lost:
            raise BadInputError(f"Label {', '.join(repr(n) for n in lost[:5])} has fewer than two readable {noun}s "
                                f"left after skipping {len(extraction.skipped)} unreadable file(s). Fix or replace "
                                "those files.")
        fit = _label_fit(blocks, seed)

        P = out_of_fold(fit, x, Y, splits)
        measured = label_metrics(Y, P, cross_fitted(P, Y, splits, min_precision), resolved.names, seed)
        thresholds = choose_thresholds(P, Y, min_precision)
        head = fit(x, Y)
        metrics.update({k: v for k, v in measured.items() if k != "n"})
        metrics["thresholds"] = {str(n): float(t) for n, t in zip(resolved.names, thresholds)}
        metrics["threshold_rule"] = "f1" if min_precision is None else f"precision>={min_precision:g}"
        low, high = measured["micro_f1_interval"]
        rule = ("its best F1 out of fold, drawn toward 0.5 by how few items carry it" if min_precision is None else
                f"the lowest with out-of-fold precision at least {min_precision:g}")
        reason = (f"features: one yes/no head per label ({len(resolved.names)} labels) on {featurizer.name}'s "
                  f"frozen features, each label's threshold {rule}; micro-F1 {measured['micro_f1']:.3f} (95% interval "
                  f"{low:.2f}-{high:.2f}, n={len(keep)}), {len(splits)}-fold cross-validated, each fold judged at "
                  "thresholds chosen on the other folds")
        return Fitted(featurizer, head, metrics, reason, list(extraction.skipped), features=x), thresholds
    y = resolved.values()[keep]
    chosen, fit, predicted, scores = _best_number_fit(x, y, splits, blocks)
    measured = number_metrics(y, predicted, seed)
    head = fit(x, y)
    metrics.update({k: v for k, v in measured.items() if k != "n"})
    metrics["alpha"] = 1.0 / head.C if head.C else None
    metrics["number_head"] = chosen
    metrics["number_head_r2"] = scores
    low, high = measured["r2_interval"]
    reason = (f"features: ridge regression on {featurizer.name}'s frozen features ({chosen}, which cross-validated "
              f"best of {len(scores)}; penalty {metrics['alpha']:.3g}, chosen by leave-one-out error); R² "
              f"{measured['r2']:.3f} (95% interval {low:.2f}-{high:.2f}, n={len(keep)}), mean absolute error "
              f"{measured['mae']:.3g}, {len(splits)}-fold cross-validated on the folds that chose it")
    return Fitted(featurizer, head, metrics, reason, list(extraction.skipped), features=x), None


# -- fine-tuning a network for several labels or a number -----------------------------------------------------------

VAL_FRACTION = 0.2  # of the items, held out of tuning to judge it (at least 2)
# Where ``auto`` tunes the sentence encoder for a shape: several labels, the smallest label's texts from (low) to
# (high); numbers, the texts. The measurements behind these limits are in benchmarks/results/task-shapes-*.jsonl and
# docs/guides/task-shapes.md; image networks are never tuned for a shape by auto (they measured no better there).
TEXT_TUNING_PAYS = {"labels": (2, 10), "number": (20, None)}


def auto_tunes(resolved: Resolved, modality: str) -> str | None:
    """Why ``auto`` tunes the network for this shape (``TEXT_TUNING_PAYS``), or None where it keeps frozen features."""
    if modality != "text" or resolved.kind not in TEXT_TUNING_PAYS:
        return None
    low, high = TEXT_TUNING_PAYS[resolved.kind]
    if resolved.kind == "labels":
        size, unit = int(resolved.indicator().sum(0).min()), "texts on the smallest label"
    else:
        size, unit = len(resolved.data), "texts"
    if size < low or (high is not None and size > high):
        return None
    where = f"from {low} to {high}" if high is not None else f"from {low}"
    return (f"auto tuned the encoder: {size} {unit}, where contrastive tuning paid off in transferkit's benchmarks "
            f"({where} {unit}; docs/guides/task-shapes.md)")


def finetune_shape(featurizer, resolved: Resolved, run, tuner, *, min_precision: float | None = None):
    """(a ``strategies.Fitted``, thresholds or None) for several labels or a number with the featurizer's own weights
    tuned on a training split: an image network end to end (``finetune.network.tune_network``: binary cross-entropy
    per label, or squared error, from a head fitted on its frozen features); a sentence encoder contrastively, each
    pair's target how alike the two texts' labels are (``similarity``). The estimate is the held-out split's, which
    the network never trained on, set beside the frozen features' on the same split (their head fitted on the same
    training items); the saved head is then fitted, as ``fit_shape`` fits one, on every item's tuned features."""
    from sklearn.model_selection import train_test_split

    from .features import extract

    if featurizer.kind not in ("image-backbone", "sentence-encoder") or getattr(featurizer, "members", None):
        raise BadInputError("Fine-tuning for several labels or numbers tunes one network: pick a backbone or encoder "
                            "(backbone=... / encoder=...), or use strategy='auto' or 'features'.")
    data = resolved.data
    frozen = extract(featurizer, data.items, batch_size=run.batch_size, cache_dir=run.cache_dir,
                     progress=run.progress, description=f"Features of {featurizer.name}")
    keep = np.flatnonzero(frozen.ok)
    items = [data.items[i] for i in keep]
    target = resolved.indicator()[keep].astype(np.float32) if resolved.kind == "labels" else \
        resolved.values()[keep].astype(np.float64)
    n_val = max(2, int(round(len(keep) * (run.val_fraction or VAL_FRACTION))))
    if len(keep) - n_val < 4:
        raise BadInputError(f"{data.origin}: {len(keep)} readable {featurizer.modality}s; fine-tuning holds {n_val} out "
                            "to judge it and needs at least 4 more to train on. Use strategy='features'.")
    train_idx, val_idx = train_test_split(np.arange(len(keep)), test_size=n_val, random_state=run.seed)
    x = frozen.features
    tuned, info, how = (_tune_network(featurizer, x, items, target, train_idx, val_idx, tuner, run)
                        if featurizer.kind == "image-backbone" else
                        _tune_encoder(featurizer, items, target, train_idx, tuner, run))
    tuned_x = extract(tuned, items, batch_size=run.batch_size, use_cache=False, progress=run.progress,
                      description="Features of the tuned network")
    judged = {"tuned": _split_score(tuned_x.features, target, train_idx, val_idx, resolved.kind, run.seed,
                                    min_precision),
              "frozen": _split_score(x, target, train_idx, val_idx, resolved.kind, run.seed, min_precision)}
    everything = replace(resolved, data=replace(data, items=tuple(items), labels=tuple(data.labels[i] for i in keep)))
    fitted, thresholds = fit_shape(tuned, everything, run, min_precision=min_precision, extraction=tuned_x)
    key = "micro_f1" if resolved.kind == "labels" else "r2"
    score, low_high = judged["tuned"]
    fitted.metrics |= {**info, f"val_{key}": score, f"val_{key}_interval": low_high, "n_val": int(len(val_idx)),
                       "n_train": int(len(train_idx)), f"frozen_val_{key}": judged["frozen"][0],
                       "tuner": tuner.to_dict()}
    fitted.skipped = list(frozen.skipped)
    name, noun = "micro-F1" if key == "micro_f1" else "R²", featurizer.modality
    fitted.reason = (f"finetune: {featurizer.name}, {how}; {name} {score:.3f} on the {len(val_idx)} held-out {noun}s "
                     f"(95% interval {low_high[0]:.2f}-{low_high[1]:.2f}) against {judged['frozen'][0]:.3f} for the "
                     f"frozen features' head on the same split; the saved head was then fitted on all {len(keep)} "
                     f"{noun}s' tuned features")
    return fitted, thresholds


def _tune_network(featurizer, x: np.ndarray, items: list, target: np.ndarray, train_idx, val_idx, tuner, run):
    """An image network tuned for the shape: (the tuned featurizer, what happened, a phrase saying how)."""
    from .finetune.network import tune_network
    from .heads import fit_label_head, fit_number_head

    output = "sigmoid" if target.ndim == 2 else "identity"
    start = (fit_label_head(x[train_idx], target[train_idx], power=1.0, seed=run.seed) if output == "sigmoid" else
             fit_number_head(x[train_idx], target[train_idx], power=1.0))
    tuned, _, info = tune_network(featurizer, start, items, target, train_idx, val_idx, tuner, run=run, output=output)
    how = (f"top {info.get('trainable_stages')} of {info.get('stages')} stages retrained with "
           f"{'binary cross-entropy per label' if output == 'sigmoid' else 'squared error'} from a head on its frozen "
           f"features, {info.get('epochs_run')} epochs")
    return tuned, info, how


def _tune_encoder(featurizer, items: list, target: np.ndarray, train_idx, tuner, run):
    """A sentence encoder tuned contrastively on the training split, each pair's target ``similarity``."""
    from .finetune.contrastive import train_contrastive
    from .strategies import tuned_copy

    if tuner.loss != "batch":
        raise BadInputError("Several labels per text and numbers tune the encoder with loss='batch' (graded pair "
                            "targets); 'pairs' needs one class per text.")
    tuned = tuned_copy(featurizer)
    info = train_contrastive(tuned, [items[i] for i in train_idx], None, tuner, seed=run.seed, precision=run.precision,
                             progress=run.progress, similarity=similarity(target[train_idx]))
    what = "the share of labels they have in common" if target.ndim == 2 else "how close their numbers are"
    return tuned, info, f"tuned contrastively on {info['pairs']} pairs of {len(train_idx)} texts, each pair's target {what}"


def similarity(target: np.ndarray) -> np.ndarray:
    """How alike each pair of items' labels are, in [0, 1]: several labels (a 0/1 matrix), the share of the labels
    either has that both have (Jaccard; 1 for two items with none); numbers, one minus their distance over the
    range."""
    if target.ndim == 2:
        Y = target.astype(np.float32)
        both = Y @ Y.T
        either = Y.sum(1)[:, None] + Y.sum(1)[None, :] - both
        return np.where(either > 0, both / np.maximum(either, 1), 1.0).astype(np.float32)
    spread = float(target.max() - target.min()) or 1.0
    return (1.0 - np.abs(target[:, None] - target[None, :]) / spread).astype(np.float32)


def _split_score(x: np.ndarray, target: np.ndarray, train_idx, val_idx, kind: str, seed: int,
                 min_precision: float | None) -> tuple[float, list[float]]:
    """(micro-F1 or R², its 95% interval) on ``val_idx`` of the head ``fit_shape`` would fit on ``train_idx``:
    several labels at thresholds chosen out of fold on the training items; numbers with the normalisation that
    cross-validates best on them."""
    a, b = x[train_idx], target[train_idx]
    splits = folds_of(len(train_idx), seed)
    if kind == "labels":
        labels, fit = b.astype(int), _label_fit((), seed)
        thresholds = choose_thresholds(out_of_fold(fit, a, labels, splits), labels, min_precision)
        P = fit(a, labels).predict_proba(x[val_idx])
        measured = label_metrics(target[val_idx].astype(int), P, P >= thresholds, list(range(labels.shape[1])), seed)
        return measured["micro_f1"], measured["micro_f1_interval"]
    _, fit, _, _ = _best_number_fit(a, b, splits, ())
    measured = number_metrics(target[val_idx], fit(a, b).predict_proba(x[val_idx])[:, 0], seed)
    return measured["r2"], measured["r2_interval"]
