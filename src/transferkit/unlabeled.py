"""Learning from unlabeled items with a head on frozen features. Two uses, each chosen by evidence:

- **Centring on the pool's source.** When a classifier tells the pool's features from the labeled ones
  (cross-validated ROC AUC at least ``SHIFT_AUC``), the pool comes from another source than the labels (other
  cameras, drawing styles, writers). The head then centres the items it predicts on the pool's mean instead of the
  labels' mean: per-source feature centring, the first moment of CORAL (Sun, Feng & Saenko 2016), which a handful of
  labels can carry. The saved model assumes the items it will predict come from the pool's source.
- **Self-training.** The head's pseudo-labels on the pool, class-balanced (the same number per predicted class) and
  confidence-selected (each class's most confident items), join the labels, for ``ROUNDS`` rounds. It is kept only
  when, fold by fold, a head self-trained from the training folds is right significantly more often on the held-out
  folds than the head on the training folds alone (McNemar's exact test, ``evaluate.significantly_better``); the
  pseudo-labels never see the held-out fold (a margin of a few items out of a few dozen is noise; README).

A third use is a **nearest-neighbour vote**: label spreading (Zhou et al. 2004, scikit-learn's ``LabelSpreading``
on a nearest-neighbour graph) carries the labels along the pool's own neighbourhoods; the pool's rows, with the mean
of the head's and the spread probabilities (:func:`spread_labels`), and the labeled rows with their labels, vote on
each item the model predicts (``LinearHead.neighbours``). For frozen image features under a shift (centred,
``learn_from_pool(..., clusters=True)``), a third opinion joins that mean: the pool's own clusters, soft k-means
seeded with the labels and the first two (:func:`soft_clusters`). A head that learned from another source draws its
lines where the pool's classes are not; the pool's clusters are where they are (semi-supervised prototypes: Ren et
al. 2018; clustering a target domain seeded by a source model: Liang et al. 2020, SHOT). On a pool from the labels'
own source the head's lines already fit and the clusters cost accuracy, and a tuned text encoder lost with them on
each shifted fit measured (docs/guides/unlabeled.md). ``learn_from_pool(..., vote=True)`` gives the head the vote
(:func:`voting`), kept unless the held-out folds show the head significantly better without it. A one-network
student (``distill``) learns the pool's labels from its teacher, vote included, and votes in its own feature space.

The fit's estimate stays the one measured on the labeled items (cross-validation); under a shift, the pool's source
may score otherwise, which the fit says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SHIFT_AUC = 0.75  # a domain classifier this good means the pool is not from the labels' source
ROUNDS = 2
PSEUDO_PER_LABEL = 5  # pseudo-labels per class: at most this many times the labels of the smallest class
MAX_DOMAIN_ROWS = 2000  # rows of the pool the domain classifier sees (a sample of a large pool)
# unlabeled items a fit learns from: a seeded sample of a larger pool. It bounds the fit's time (every backbone reads
# each one) and memory (their features are held while the heads learn); a linear head gains little from more.
MAX_ITEMS = 5000


@dataclass(frozen=True)
class PoolUse:
    """What a pool changed: the head, a sentence saying what was done and why, and the measurements."""

    head: object
    sentence: str
    info: dict


def learn_from_pool(head, x: np.ndarray, y: np.ndarray, pool: np.ndarray, *, seed: int = 0,
                    folds: int = 5, vote: bool = False, clusters: bool = False) -> PoolUse:
    """The head on labeled features ``x`` (integer labels ``y``), improved with the pool's features where the
    evidence says so (module docstring). ``head`` is the head fitted on ``x``; its settings are kept. ``vote``: also
    weigh a nearest-neighbour vote over the labeled and pool rows (:func:`voting`) for a head of one class per item,
    on the same kind of evidence. ``clusters``: a pool from another source also has its labels drawn to its own
    clusters (:func:`spread_labels`; the fit asks for it on frozen image features)."""
    from .evaluate import significantly_better
    from .heads import NEIGHBOURS

    n_pool = int(len(pool))
    auc = domain_auc(x, pool, head.power, seed)
    shifted = auc >= SHIFT_AUC
    seen = _seen(pool, x, head.power, shifted)
    teacher_correct, student_correct = _fold_evidence(head, x, y, seen, seed, folds)
    keep = significantly_better(student_correct, teacher_correct)
    final = adapt(head, x, y, pool, centred=shifted, self_training=keep, seed=seed)
    clusters = bool(clusters and shifted)
    info: dict = {"n": n_pool, "shift_auc": round(float(auc), 4), "centred": bool(shifted), "self_training": bool(keep),
            "clusters": clusters,
            "fold_accuracy_without": float(teacher_correct.mean()),
            "fold_accuracy_with": float(student_correct.mean()), "folds_n": int(len(teacher_correct))}
    where = (f"the {n_pool} unlabeled items come from another source than the labels (a classifier tells them apart, "
             f"AUC {auc:.2f}), so the model centres what it predicts on their mean" if shifted else
             f"the {n_pool} unlabeled items look like the labeled ones (a classifier tells them apart no better than "
             f"AUC {auc:.2f})")
    how = (f"self-training on their class-balanced pseudo-labels is kept ({student_correct.mean():.3f} against "
           f"{teacher_correct.mean():.3f} without, on {len(teacher_correct)} held-out labels the pseudo-labels never "
           "saw)" if keep else
           f"self-training on their pseudo-labels is not kept ({student_correct.mean():.3f} against "
           f"{teacher_correct.mean():.3f} without, on {len(teacher_correct)} held-out labels: not significantly better)")
    sentence = f"{where}; {how}"
    if vote and head.output == "softmax":
        with_vote, without_vote = _vote_evidence(head, x, y, seen, keep, seed, folds)
        kept = not significantly_better(without_vote, with_vote)
        record: dict = {"kept": bool(kept), "fold_accuracy_with": float(with_vote.mean()),
                        "fold_accuracy_without": float(without_vote.mean()), "folds_n": int(len(with_vote))}
        info["vote"] = record
        measured = (f"{with_vote.mean():.3f} with the vote, {without_vote.mean():.3f} without, on {len(with_vote)} "
                    "held-out labels")
        if kept:
            final = voting(final, x, y, pool, centred=shifted, clusters=clusters)
            record["neighbours"] = int(len(final.neighbours))
            sentence += (f"; it votes with its {NEIGHBOURS} nearest of the {len(final.neighbours)} labeled and "
                         f"unlabeled items, their labels spread along the pool"
                         f"{' and drawn to its own clusters' if clusters else ''} ({measured})")
        else:
            sentence += f"; it does not vote with its nearest items ({measured}: significantly better without)"
    return PoolUse(final, sentence, info)


def voting(head, x: np.ndarray, y: np.ndarray, pool: np.ndarray, *, centred: bool, clusters: bool = False):
    """``head`` (adapted to the pool as ``adapt`` made it) with a nearest-neighbour vote: the labeled rows ``x``
    carry their labels ``y``, the pool's rows :func:`spread_labels`'s probabilities. Each row is normalised as the
    items of its source are: the labeled ones on the labels' mean and, when ``centred``, the pool's on its own;
    ``clusters``: the pool's labels drawn to its own clusters too (:func:`spread_labels`)."""
    from .heads import vote_rows

    rows = _normalised_rows(head, x, pool, centred)
    spread = _spread(head, rows, y, pool, clusters)
    proba = np.vstack([np.eye(spread.shape[1])[y], spread]).astype(np.float32)
    return replace(head, neighbours=vote_rows(rows), neighbour_proba=proba)


def adapt(head, x: np.ndarray, y: np.ndarray, pool: np.ndarray, *, centred: bool, self_training: bool,
          seed: int = 0):
    """``head`` (fitted on ``x``, labels ``y``) changed as ``learn_from_pool`` decided: self-trained on the pool, and
    centred on the pool's mean for the items it predicts. ``distill`` applies the same decisions to each fold's head."""
    final = self_train(head, x, y, _seen(pool, x, head.power, centred), seed) if self_training else head
    if centred:  # items to predict are centred on the pool's mean: the head saw the pool recentred (``_seen``)
        final = replace(final, mean=final.mean + _mean(pool, head.power) - _mean(x, head.power))
    return final


SPREAD_ALPHA = 0.8  # how much of a row's spread label comes from its neighbours (scikit-learn's default)
SPREAD_MEMORY_MB = 64


def spread_labels(teacher, x: np.ndarray, y: np.ndarray, pool: np.ndarray, *, centred: bool,
                  clusters: bool = False) -> np.ndarray:
    """The pool's class probabilities: the mean of ``teacher``'s and of label spreading's over the labeled rows ``x``
    (integer labels ``y``) and the pool, on a graph of each row's ``heads.NEIGHBOURS`` nearest in the teacher's
    normalised space (labels centred on their own mean and the pool on its own when ``centred``: ``adapt``); with
    ``clusters``, the mean of those two and of the pool's soft clusters seeded with them (:func:`soft_clusters`)."""
    return _spread(teacher, _normalised_rows(teacher, x, pool, centred), y, pool, clusters)


def _normalised_rows(head, x: np.ndarray, pool: np.ndarray, centred: bool) -> np.ndarray:
    """The labeled rows ``x`` then the pool's, normalised as ``head`` sees the items of each source: the labels on
    their own mean and, when ``centred``, the pool on its own (``adapt``); float32, a block at a time (bounded
    memory)."""
    from .heads import ROWS_AT_ONCE

    shift = _mean(pool, head.power) - _mean(x, head.power) if centred else 0.0
    labeled = replace(head, mean=head.mean - shift)
    return np.vstack([labeled.normalise(x).astype(np.float32)] +
                     [head.normalise(pool[i:i + ROWS_AT_ONCE]).astype(np.float32)
                      for i in range(0, len(pool), ROWS_AT_ONCE)])


def _spread(teacher, rows: np.ndarray, y: np.ndarray, pool: np.ndarray, clusters: bool) -> np.ndarray:
    """:func:`spread_labels` on the rows :func:`_normalised_rows` made (the first ``len(y)`` of them labeled), with
    the pool's soft clusters where ``clusters``."""
    import sklearn
    from sklearn.semi_supervised import LabelSpreading

    from .heads import NEIGHBOURS

    n_labeled = len(y)
    own = teacher.predict_proba(pool)
    n_classes = own.shape[1]
    model = LabelSpreading(kernel="knn", n_neighbors=min(NEIGHBOURS, len(rows) - 1), alpha=SPREAD_ALPHA,
                           max_iter=100)
    # the neighbour search's distance blocks at most SPREAD_MEMORY_MB (scikit-learn's default is 1 GB)
    with np.errstate(divide="ignore", invalid="ignore"), sklearn.config_context(working_memory=SPREAD_MEMORY_MB):
        model.fit(rows, np.r_[y, -np.ones(len(pool), int)])  # a row whose neighbours carry no label yet: 0 / 0
    spread = np.zeros((len(pool), n_classes))
    spread[:, model.classes_] = np.nan_to_num(model.label_distributions_[n_labeled:])
    total = spread.sum(1, keepdims=True)
    spread = np.where(total > 0, spread / np.where(total > 0, total, 1.0), 1.0 / n_classes)
    both = (own + spread) / 2
    if not clusters:
        return both
    return (own + spread + soft_clusters(rows, np.eye(n_classes)[y], both)) / 3


CLUSTER_SHARPNESS = 10.0  # a row's class probabilities: softmax of this times its dot product with each class centre
CLUSTER_ROUNDS = 10


def soft_clusters(rows: np.ndarray, labeled: np.ndarray, pool_proba: np.ndarray) -> np.ndarray:
    """The pool's class probabilities after ``CLUSTER_ROUNDS`` rounds of soft k-means on ``rows`` (normalised: the
    labeled ones first, their classes one-hot in ``labeled``, then the pool's, seeded with ``pool_proba``). Each
    round a class's centre is the direction of the weighted sum of its rows (a labeled row weighs 1 for its class, a
    pool row its probability), and a pool row's probabilities are the softmax of ``CLUSTER_SHARPNESS`` times its dot
    product with each centre. Float32 throughout: the rows are never copied (a pool of 5,000 holds tens of MB)."""
    n_labeled = len(labeled)
    rows = np.asarray(rows, np.float32)
    weights = np.vstack([labeled, pool_proba]).astype(np.float32)
    for _ in range(CLUSTER_ROUNDS):
        centres = weights.T @ rows
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), np.float32(1e-12))
        logits = CLUSTER_SHARPNESS * (rows[n_labeled:] @ centres.T).astype(np.float64)
        proba = np.exp(logits - logits.max(1, keepdims=True))
        proba /= proba.sum(1, keepdims=True)
        weights[n_labeled:] = proba
    return weights[n_labeled:].astype(np.float64)


def _mean(features: np.ndarray, power: float) -> np.ndarray:
    """The mean of the power-transformed rows, ``heads.ROWS_AT_ONCE`` rows at a time (bounded memory)."""
    from .heads import ROWS_AT_ONCE, power_transform

    total = sum(power_transform(np.asarray(features[i:i + ROWS_AT_ONCE], np.float64), power).sum(0)
                for i in range(0, len(features), ROWS_AT_ONCE))
    return np.asarray(total) / max(len(features), 1)


def _seen(pool: np.ndarray, x: np.ndarray, power: float, centred: bool) -> np.ndarray:
    """The pool as a head centred on the labels sees it: moved onto the labels' mean when the sources differ."""
    return _recentre(pool, _mean(pool, power), _mean(x, power), power) if centred else pool


def self_train(head, x: np.ndarray, y: np.ndarray, pool: np.ndarray, seed: int = 0, rounds: int = ROUNDS):
    """``rounds`` rounds of: pseudo-label the pool with the current head, take each predicted class's most confident
    items (the same number per class, at most ``PSEUDO_PER_LABEL`` times the smallest class's labels), refit the
    head's settings on the labels and those."""
    per_class = int(np.bincount(y).min()) * PSEUDO_PER_LABEL
    current = head
    for _ in range(rounds):
        proba = current.predict_proba(pool)
        guess = proba.argmax(1)
        chosen = [i for c in range(proba.shape[1])
                  for i in np.flatnonzero(guess == c)[np.argsort(-proba[guess == c, c], kind="stable")][:per_class]]
        if not chosen:
            break
        current = head.refit(np.vstack([x, pool[chosen]]), np.concatenate([y, guess[chosen]]), seed)
    return current


def domain_auc(x: np.ndarray, pool: np.ndarray, power: float, seed: int = 0) -> float:
    """How well a logistic regression tells pool rows from labeled rows (cross-validated ROC AUC; 0.5: not at
    all), on the power-transformed features standardised per feature."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .heads import power_transform

    rng = np.random.default_rng(seed)
    if len(pool) > MAX_DOMAIN_ROWS:
        pool = pool[rng.choice(len(pool), MAX_DOMAIN_ROWS, replace=False)]
    rows = power_transform(np.vstack([x, pool]).astype(np.float64), power)
    side = np.r_[np.zeros(len(x)), np.ones(len(pool))]
    k = int(max(2, min(5, len(x), len(pool))))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000))
    scores = cross_val_score(model, rows, side, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                             scoring="roc_auc")
    return float(np.mean(scores))


def _fold_heads(head, x, y, seed: int, folds: int):
    """For each of up to ``folds`` stratified folds: its held-out rows and the head refitted on the other folds."""
    from sklearn.model_selection import StratifiedKFold

    k = int(max(2, min(folds, np.bincount(y).min())))
    for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        yield train, test, head.refit(x[train], y[train], seed)


def _fold_evidence(head, x, y, pool, seed: int, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Which held-out labels the head on the training folds gets right, and which the same head self-trained on the
    pool from those folds gets right (the pseudo-labels come from the training folds' head only)."""
    teacher, student = np.zeros(len(y), bool), np.zeros(len(y), bool)
    for train, test, fold_head in _fold_heads(head, x, y, seed, folds):
        teacher[test] = fold_head.predict_proba(x[test]).argmax(1) == y[test]
        trained = self_train(fold_head, x[train], y[train], pool, seed)
        student[test] = trained.predict_proba(x[test]).argmax(1) == y[test]
    return teacher, student


def _vote_evidence(head, x, y, pool, self_training: bool, seed: int, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Which held-out labels the training folds' head (self-trained on ``pool`` when the fit keeps that) gets right
    with its vote over the training folds' labels and the pool (:func:`voting`), and which without it. ``pool`` is as
    the labels' head sees it (``_seen``), so the vote is not centred."""
    with_vote, without = np.zeros(len(y), bool), np.zeros(len(y), bool)
    for train, test, fold_head in _fold_heads(head, x, y, seed, folds):
        if self_training:
            fold_head = self_train(fold_head, x[train], y[train], pool, seed)
        without[test] = fold_head.predict_proba(x[test]).argmax(1) == y[test]
        voted = voting(fold_head, x[train], y[train], pool, centred=False)
        with_vote[test] = voted.predict_proba(x[test]).argmax(1) == y[test]
    return with_vote, without


def _recentre(features: np.ndarray, own_mean: np.ndarray, target_mean: np.ndarray, power: float) -> np.ndarray:
    """Rows moved so that, after the power transform, their mean is ``target_mean`` instead of ``own_mean`` (the
    power transform ``sign(x)|x|^p`` is inverted exactly, so the head's own transform gives the moved rows back)."""
    from .heads import power_transform

    moved = power_transform(np.asarray(features, np.float64), power) - own_mean + target_mean
    return np.sign(moved) * np.abs(moved) ** (1.0 / power)
