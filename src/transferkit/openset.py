""""None of these": whether an item belongs to any class a model was fitted on (open-set recognition).

Simple, well-studied scores, each higher for an item that looks like the trained classes:

- ``msp``: the head's maximum softmax probability (Hendrycks & Gimpel 2017);
- ``energy``: the log-sum-exp of the head's logits (Liu et al. 2020);
- ``knn``: the cosine similarity, in the head's normalised feature space, to the nearest labeled item (Sun et al.
  2022, with k = 1: a few-shot fit has a handful of items per class);
- ``knn-other``, with examples of other things (``X_other``, ``fit --other``): that similarity minus the similarity
  to the nearest example of other things;
- ``knn-pool``, with unlabeled items said to hold things of no labeled class (``X_unlabeled`` with
  ``unlabeled_has_others=True``, ``fit --unlabeled DIR --unlabeled-has-others``): that similarity minus the similarity to
  the nearest of the pool's items mined as unlike the labeled ones (:func:`mine`). A pool drawn from where the model
  will be used holds items of the classes nobody labeled; mined, they stand for them (outliers mined from unlabeled
  "wild" data, as in Katz-Samuels et al. 2022 and Du et al. 2024, with a nearest-neighbour score instead of a
  trained detector).

A fit chooses among them on evidence (:func:`calibrate`): each class in turn is held out of a head fitted on the
others' items of one cross-validation fold, and the score that best separates it from the trained classes' held-out
items (mean AUROC) is kept; with examples of other things, their separation from those items counts as much as the
held-out classes' (which stand for unknowns unlike the examples).
When the score is chosen, a held-out class's unlabeled items are in the pool as an unknown class's would be, and the
pool is mined again for each head, without it. That evidence holds only for a pool that does hold items of no
labeled class: in a pool of the trained classes alone the mined items are their own stragglers, and ``knn-pool``
rejects the trained classes' items that look like them (measured: benchmarks/open_set.py). No test on the pool told
the two apart dependably, so the pool is mined only when the user says it may hold such items
(``unlabeled_has_others``, ``fit --unlabeled-has-others``).
The threshold is read from the out-of-fold scores of the labeled items: at rate ``r``, at most about a share ``r`` of
items from the trained classes is rejected (fewer where the head fitted on every label is more sure of new items than
the folds' heads were).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .data.labeled import sample_pool
from .errors import BadInputError, BundleError
from .heads import is_sparse

SCORES = ("msp", "energy", "knn", "knn-other", "knn-pool")
MIN_OTHER = 5  # the fewest examples of other things that are learned from
POOL_SHARE = 0.2  # the share of the unlabeled pool mined as unlike the labeled items (``knn-pool``)
MIN_POOL = 25  # the fewest unlabeled items mined (a fifth of them: MIN_OTHER)
MAX_POOL = 2000  # unlabeled items mined: a seeded sample of a larger pool bounds the time and the model folder's size
DEFAULT_RATE = 0.05  # ``reject="auto"``: the share of items from the trained classes that may be rejected
MAX_RATE = 0.5
FOLDS = 3
MAX_HELD_OUT = 12  # classes held out in turn when the score is chosen (a random subset of more)
UNKNOWN = "unknown"  # the label a rejected item gets


def rejection_rate(reject) -> float | None:
    """The share of trained-class items to reject from what a user passes: None/False (no rejection), ``"auto"``
    (:data:`DEFAULT_RATE`), or a number in (0, 0.5)."""
    if reject is None or reject is False:
        return None
    if reject == "auto":
        return DEFAULT_RATE
    try:
        rate = float(reject)
    except (TypeError, ValueError):
        rate = float("nan")
    if isinstance(reject, bool) or not 0 < rate < MAX_RATE:
        raise BadInputError(f"reject must be auto or the share of items from the trained classes that may be "
                            f"rejected, a number between 0 and {MAX_RATE} such as 0.05; got {reject!r}.")
    return rate


UNFAMILIAR_ALPHA = 0.01  # one-sided binomial test: more inputs below the auto threshold than its rate explains


def unfamiliar(open_set: OpenSet | None, known_scores, min_items: int = 20) -> dict | None:
    """How many inputs score below the ``auto`` threshold, which about :data:`DEFAULT_RATE` of the trained classes'
    items do; ``unlike_training`` when significantly more do (inputs of no trained class, or from elsewhere). None
    without an open-set part or under ``min_items`` inputs."""
    if open_set is None or known_scores is None or len(known_scores) < min_items:
        return None
    from scipy.special import bdtrc  # P(X > k), binomtest's one-sided p-value without importing scipy.stats (0.5 s)

    n = len(known_scores)
    below = int(np.count_nonzero(~open_set.is_known(known_scores, DEFAULT_RATE)))
    p = float(bdtrc(below - 1, n, DEFAULT_RATE)) if below else 1.0  # P(X >= below)
    return {"n": n, "below": below, "share": below / n, "expected": DEFAULT_RATE, "p_value": p,
            "unlike_training": p < UNFAMILIAR_ALPHA}


def unfamiliar_line(reading: dict | None, noun: str) -> str | None:
    """The warning of :func:`unfamiliar`, when it has one."""
    if not reading or not reading["unlike_training"]:
        return None
    return (f"Warning: {reading['below']} of {reading['n']} {noun}s ({reading['share']:.0%}) look unlike every "
            f"trained class, where about {reading['expected']:.0%} of the trained classes' {noun}s do: some may "
            "belong to none of them. --reject auto answers 'unknown' for those.")


def open_set_line(metrics: dict, noun: str) -> str:
    """``evaluate.open_set_metrics`` in one sentence (``evaluate --reject``)."""
    parts = [f"Rejecting at rate {metrics['rate']:g} ({metrics['score']} score):"]
    if metrics["trained_rejected"] is not None:
        parts.append(f"{metrics['trained_rejected']:.1%} of {metrics['n_trained_classes']} {noun}s of the trained "
                     "classes rejected")
    if metrics["other_rejected"] is not None:
        parts.append(f"{metrics['other_rejected']:.1%} of {metrics['n_other']} {noun}s of other classes rejected")
    if metrics["accuracy_accepted"] is not None:
        parts.append(f"accuracy {metrics['accuracy_accepted']:.3f} on the {metrics['n_accepted']} accepted")
    if metrics["auroc"] is not None:
        parts.append(f"AUROC {metrics['auroc']:.3f} (trained classes vs other)")
    return parts[0] + " " + "; ".join(parts[1:]) + "."


def chosen_line(described: dict, noun: str) -> str:
    """What a fit that learned "none of these" from examples or unlabeled items chose (``OpenSet.describe``), in one
    sentence; the unlabeled items' own score is named when another one won."""
    auroc = described.get("auroc") or {}
    score = described["score"]
    learned = ([f"{described['n_other']} examples of other things"] if described.get("n_other") else []) + (
        [f"{described['n_pool']} unlabeled {noun}s mined for ones unlike the labeled"] if described.get("n_pool") else [])
    line = f"None of these (predict --reject auto): the {score} score"
    if score in auroc:
        line += f", AUROC {auroc[score]:.2f} on held-out classes"
    line += f"; learned from {' and '.join(learned)}"
    if score != "knn-pool" and "knn-pool" in auroc:
        line += f" (their score read {auroc['knn-pool']:.2f}, so it was not chosen)"
    return line + "."


def unit_rows(head, features) -> np.ndarray:
    """The head's normalisation of ``features``, each row scaled to unit length (cosine similarity space)."""
    z = np.asarray(head.normalise(features), dtype=np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def scores(head, features, bank: np.ndarray | None = None, which: tuple[str, ...] = SCORES,
           other_bank: np.ndarray | None = None, pool_bank: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each score of ``which`` for every row of ``features`` (``knn`` needs ``bank``, the labeled items' unit rows;
    ``knn-other`` also ``other_bank``, the unit rows of the examples of other things; ``knn-pool`` ``pool_bank``, the
    unit rows of the unlabeled items mined as unlike the labeled ones)."""
    logits = head.decision_function(features)
    if logits.shape[1] == 1:  # scikit-learn's two-class form: one logit for the second class
        logits = np.hstack([np.zeros_like(logits), logits])
    top = logits.max(axis=1)
    spread = np.exp(logits - top[:, None]).sum(axis=1)  # both scores from it, without scipy.special
    out = {}
    if "msp" in which:
        out["msp"] = 1.0 / spread  # the largest softmax probability
    if "energy" in which:
        out["energy"] = top + np.log(spread)  # log-sum-exp of the logits
    if bank is not None and any(s.startswith("knn") for s in which):
        rows = unit_rows(head, features)
        nearest = nearest_similarity(rows, bank)
        if "knn" in which:
            out["knn"] = nearest
        for name, unlike in (("knn-other", other_bank), ("knn-pool", pool_bank)):
            if name in which and unlike is not None:
                out[name] = nearest - nearest_similarity(rows, unlike)
    return out


def mine(bank: np.ndarray, pool: np.ndarray, share: float = POOL_SHARE) -> np.ndarray:
    """The unit rows of ``pool`` least like the labeled items' (``bank``): the ``share`` of it farthest from its
    nearest labeled item, then, once more, the share that scores lowest on ``knn-pool`` against those (each row
    against the others), which keeps items near other mined ones (an unlabeled class) over lone stragglers of the
    labeled classes."""
    n = max(MIN_OTHER, int(share * len(pool)))
    nearest = nearest_similarity(pool, bank)
    chosen = np.argsort(nearest, kind="stable")[:n]
    to_chosen = pool @ pool[chosen].T
    to_chosen[chosen, np.arange(n)] = -np.inf  # not itself
    return pool[np.argsort(nearest - to_chosen.max(axis=1), kind="stable")[:n]]


def nearest_similarity(rows: np.ndarray, bank: np.ndarray, chunk: int = 1024) -> np.ndarray:
    return np.concatenate([(rows[i:i + chunk] @ bank.T).max(axis=1) for i in range(0, len(rows), chunk)]) if len(
        rows) else np.zeros(0, np.float32)


@dataclass(frozen=True)
class OpenSet:
    """The chosen score, the labeled items' out-of-fold scores (thresholds are read from them), the labeled items'
    unit rows for ``knn``, and the evidence the choice was made on."""

    score: str
    known: np.ndarray  # out-of-fold scores of the labeled items, sorted
    bank: np.ndarray | None = None  # unit rows of the labeled items (knn, knn-other)
    auroc: dict = field(default_factory=dict)  # score -> mean AUROC of the evidence; {} when there was none
    held_out: int = 0  # how many classes were held out in turn (each in one fold) for the AUROCs (0: measured on other examples)
    other_bank: np.ndarray | None = None  # unit rows of the examples of other things (knn-other)
    n_other: int = 0  # examples of other things the choice was measured on
    pool_bank: np.ndarray | None = None  # unit rows of the unlabeled items mined as unlike the labeled ones (knn-pool)
    n_pool: int = 0  # unlabeled items mined from

    kind = "open-set"

    def threshold(self, rate: float) -> float:
        return float(np.quantile(self.known, rate))

    def known_scores(self, head, features) -> np.ndarray:
        return scores(head, features, self.bank, (self.score,), self.other_bank, self.pool_bank)[self.score]

    def is_known(self, known_scores, rate: float) -> np.ndarray:
        """Which of these scores belong to a trained class at this rejection rate."""
        return np.asarray(known_scores) >= self.threshold(rate)

    def accept(self, head, features, rate: float) -> tuple[np.ndarray, np.ndarray]:
        """Which rows belong to a trained class at this rejection rate, and their scores."""
        s = self.known_scores(head, features)
        return self.is_known(s, rate), s

    def describe(self) -> dict:
        """What a fit records (``metrics_["open_set"]``, ``fit --json``, the model card)."""
        return {"score": self.score, "auroc": {k: round(v, 4) for k, v in self.auroc.items()},
                "held_out": self.held_out, "n_other": self.n_other, "n_pool": self.n_pool, "n": int(len(self.known)),
                "threshold_at_default": round(self.threshold(DEFAULT_RATE), 6), "default_rate": DEFAULT_RATE}

    def save(self) -> tuple[dict, dict[str, np.ndarray]]:
        config = {"kind": self.kind, "score": self.score, "auroc": self.auroc, "held_out": self.held_out,
                  "n_other": self.n_other, "n_pool": self.n_pool}
        tensors = {"known": np.asarray(self.known, np.float32)}
        for name in ("bank", "other_bank", "pool_bank"):
            if getattr(self, name) is not None:
                tensors[name] = np.ascontiguousarray(getattr(self, name), np.float32)
        return config, tensors

    @classmethod
    def load(cls, config: dict, tensors: dict, n_features: int | None = None) -> OpenSet:
        score, known, bank, other, pool = (config.get("score"), tensors.get("known"), tensors.get("bank"),
                                           tensors.get("other_bank"), tensors.get("pool_bank"))
        auroc = config.get("auroc") or {}
        banks = [b for b in (bank, other, pool) if b is not None]
        if score not in SCORES or known is None or np.asarray(known).ndim != 1 or not len(known) or (
                score.startswith("knn") and bank is None) or (score == "knn-other" and other is None) or (
                score == "knn-pool" and pool is None) or any(
                np.asarray(b).ndim != 2 or np.asarray(b).shape[1] != np.asarray(banks[0]).shape[1] for b in banks) \
                or not isinstance(auroc, dict):
            raise BundleError("The model folder's open-set part (open_set/) is damaged or was edited: restore it, or "
                              "refit the model.")
        as_rows = (lambda b: None if b is None else np.asarray(b, np.float32))  # noqa: E731
        return cls(score, np.sort(np.asarray(known, np.float32)), as_rows(bank),
                   {str(k): float(v) for k, v in auroc.items()}, int(config.get("held_out") or 0), as_rows(other),
                   int(config.get("n_other") or 0), as_rows(pool), int(config.get("n_pool") or 0))


def calibrate(fit, head, features, y: np.ndarray, *, seed: int = 0, other=None, pool=None) -> OpenSet | None:
    """The open-set score for a head fitted on ``features`` with labels ``y``: chosen on held-out classes and on
    ``other`` (features of examples of other things, at least :data:`MIN_OTHER`; fewer are ignored). ``pool``: the
    features of unlabeled items (at least :data:`MIN_POOL`; fewer are ignored), mined for ``knn-pool``.

    ``fit(rows, labels) -> head`` refits the head's recipe on other rows. None when a class has fewer than two
    items (no folds)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    y = np.asarray(y)
    counts = np.bincount(y)
    if len(counts) < 2 or counts.min() < 2:
        return None
    sparse = is_sparse(features)
    if other is not None and len(other.shape) and other.shape[0] < MIN_OTHER:
        other = None
    if pool is not None and (sparse or is_sparse(pool) or pool.shape[0] < MIN_POOL):
        pool = None
    if pool is not None and pool.shape[0] > MAX_POOL:
        pool = pool[sample_pool(list(range(pool.shape[0])), seed, MAX_POOL)]
    which = ("msp", "energy") if sparse else tuple(s for s in SCORES if (s != "knn-other" or other is not None) and (
        s != "knn-pool" or pool is not None))
    k = int(min(FOLDS, counts.min()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    other_splits = list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(other.shape[0]))) if (
        other is not None) else [None] * k
    held: list[int] = (np.random.default_rng(seed).permutation(len(counts))[:MAX_HELD_OUT].tolist()
                       if len(counts) >= 3 else [])
    known = {s: np.zeros(len(y), np.float32) for s in which}
    # two kinds of evidence, each averaged on its own: the examples of other things, and held-out classes (which
    # stand for unknowns unlike those examples)
    given: dict[str, list[float]] = {s: [] for s in which}
    aurocs: dict[str, list[float]] = {s: [] for s in which}
    for fold, ((train, test), other_split) in enumerate(zip(splits, other_splits)):
        fold_head = fit(features[train], y[train])
        if other_split is None:
            banks = _banks(fold_head, features[train], which, other, pool)
            for s, v in scores(fold_head, features[test], which=which, **banks).items():
                known[s][test] = v
        else:  # the fold's other examples are scored against the rest of them, as new ones will be
            other_train, other_test = other_split
            banks = _banks(fold_head, features[train], which, other[other_train], pool)
            a = scores(fold_head, features[test], which=which, **banks)
            b = scores(fold_head, other[other_test], which=which, **banks)
            for s in which:
                known[s][test] = a[s]
                given[s].append(_auroc(a[s], b[s]))
        for c in held[fold::k]:  # each held-out class in one fold: one head fit per class
            keep = train[y[train] != c]
            present = np.unique(y[keep])
            if len(present) < 2:
                continue
            without = fit(features[keep], np.searchsorted(present, y[keep]))
            seen, unseen = test[y[test] != c], np.flatnonzero(y == c)
            banks = _banks(without, features[keep], which, other, pool)
            a = scores(without, features[seen], which=which, **banks)
            b = scores(without, features[unseen], which=which, **banks)
            for s in which:
                aurocs[s].append(_auroc(a[s], b[s]))
    auroc = {s: float(np.mean([np.mean(e[s]) for e in (given, aurocs) if e[s]])) for s in which
             if given[s] or aurocs[s]}
    chosen = max(auroc, key=lambda s: (auroc[s], s == "msp")) if auroc else "msp"  # a tie keeps the simplest
    return OpenSet(chosen, np.sort(known[chosen]), auroc=auroc, held_out=len(aurocs["msp"]),
                   n_other=0 if other is None else int(other.shape[0]), n_pool=0 if pool is None else int(pool.shape[0]),
                   **_banks(head, features, (chosen,), other, pool))


def _banks(head, labeled, which, other=None, pool=None) -> dict[str, np.ndarray | None]:
    """The unit rows ``which`` scores compare with, through ``head`` (``scores``' arguments): the labeled items', the
    examples of other things', and the unlabeled items mined as unlike the labeled ones (None where no score of
    ``which`` needs them)."""
    if not any(s.startswith("knn") for s in which):
        return {"bank": None, "other_bank": None, "pool_bank": None}
    bank = unit_rows(head, labeled)
    return {"bank": bank, "other_bank": unit_rows(head, other) if "knn-other" in which and other is not None else None,
            "pool_bank": mine(bank, unit_rows(head, pool)) if "knn-pool" in which and pool is not None else None}


def _auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(known)), np.zeros(len(unknown))], np.r_[known, unknown]))
