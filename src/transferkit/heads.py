"""Linear heads on features (scikit-learn's logistic regression), kept as plain arrays so a model folder stores them
as tensors and they predict exactly as scikit-learn does.

A head first normalises each feature row, then applies ``softmax(z @ coef.T + intercept)`` (scikit-learn's
one-logit sigmoid form for two classes):

- ``"l2"``: centre on the training mean, then scale each row to unit length. Robust with 1-5 labels per class,
  where per-feature statistics of a handful of rows are noise (measured: README, few-shot benchmark);
- ``"standard"``: per-feature standardisation (transferkit 0.1's head; kept for the models it wrote);
- ``"none"``: the rows as they are (TF-IDF rows, already unit length; a fine-tuned network's own classifier).

Classes are re-weighted when they are imbalanced. ``cross_val_proba`` gives out-of-fold probabilities for every
labeled row: the honest estimate a fit reports.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

IMBALANCE_RATIO = 1.5  # largest class / smallest class above which classes are re-weighted
NORMS = ("l2", "standard", "none")
TOLERANCE = 1e-4
MAX_ITER = 1000


@dataclass(frozen=True)
class LinearHead:
    """``softmax(normalise(x) @ coef.T + intercept)``; ``mean`` and ``scale`` parametrise the normalisation."""

    norm: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    C: float | None = None
    class_weight: str | None = None

    kind = "linear-head"

    @classmethod
    def plain(cls, coef: np.ndarray, intercept: np.ndarray) -> LinearHead:
        d = coef.shape[1]
        return cls("none", np.zeros(d), np.ones(d), np.asarray(coef, np.float64), np.asarray(intercept, np.float64))

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[1])

    def normalise(self, features):
        import scipy.sparse

        if scipy.sparse.issparse(features):
            if self.norm == "l2":
                raise ValueError("sparse features take a head without l2 normalisation")
            return features
        x = np.asarray(features, dtype=np.float64)
        if self.norm == "standard":
            return (x - self.mean) / self.scale
        if self.norm == "l2":
            x = x - self.mean
            return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def decision_function(self, features) -> np.ndarray:
        import scipy.sparse

        if scipy.sparse.issparse(features) and self.norm == "standard":  # fold the affine map in: rows stay sparse
            weight = self.coef / self.scale
            return np.asarray(features @ weight.T) + (self.intercept - weight @ self.mean)
        return np.asarray(self.normalise(features) @ self.coef.T) + self.intercept

    def predict_proba(self, features) -> np.ndarray:
        return logits_to_proba(self.decision_function(features))

    def as_linear(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) of one linear layer on the raw features that approximates this head: exact for
        ``standard`` and ``none``; for ``l2`` the row norm is replaced by its typical training value (``scale[0]``),
        which is what a network classifier initialised from the head can carry."""
        if self.norm == "standard":
            weight = self.coef / self.scale
        elif self.norm == "l2":
            weight = self.coef / float(self.scale[0])
        else:
            weight = self.coef
        return weight, self.intercept - weight @ (self.mean if self.norm != "none" else np.zeros(self.n_features))

    def save(self) -> tuple[dict, dict[str, np.ndarray]]:
        config = {"kind": self.kind, "norm": self.norm, "C": self.C, "class_weight": self.class_weight,
                  "n_features": self.n_features, "n_outputs": int(self.coef.shape[0])}
        return config, {k: np.ascontiguousarray(getattr(self, k), dtype=np.float64)
                        for k in ("mean", "scale", "coef", "intercept")}

    @classmethod
    def load(cls, config: dict, tensors: dict) -> LinearHead:
        from .errors import BundleError

        arrays = {k: np.asarray(tensors[k], dtype=np.float64) for k in ("mean", "scale", "coef", "intercept")}
        if config.get("norm", "standard") not in NORMS:
            raise BundleError(f"Unknown head normalisation {config.get('norm')!r} in the model folder.")
        d = arrays["coef"].shape[1]
        if arrays["mean"].shape != (d,) or arrays["scale"].shape != (d,) or arrays["intercept"].shape[0] != arrays[
                "coef"].shape[0]:
            raise BundleError("The head's tensors do not fit together (the model folder was edited or is damaged).")
        return cls(config.get("norm", "standard"), **arrays, C=config.get("C"), class_weight=config.get("class_weight"))


def logits_to_proba(z: np.ndarray) -> np.ndarray:
    if z.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_weighting(y: np.ndarray) -> str | None:
    counts = Counter(np.asarray(y).tolist())
    return "balanced" if max(counts.values()) / min(counts.values()) > IMBALANCE_RATIO else None


def fit_head(features, y: np.ndarray, *, norm: str = "l2", C: float = 10.0, seed: int = 0) -> LinearHead:
    """A logistic-regression head on integer labels ``y`` with the given normalisation and inverse regularisation."""
    import scipy.sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    y = np.asarray(y)
    sparse = scipy.sparse.issparse(features)
    if sparse:
        norm = "none"
        d = features.shape[1]
        mean, scale = np.zeros(d), np.ones(d)
    else:
        x = np.asarray(features, dtype=np.float64)
        d = x.shape[1]
        if norm == "standard":
            mean, scale = x.mean(0), x.std(0)
            scale = np.where(scale > 0, scale, 1.0)
        elif norm == "l2":
            mean = x.mean(0)
            centred_norms = np.linalg.norm(x - mean, axis=1)
            scale = np.full(d, float(np.median(centred_norms)) or 1.0)  # only as_linear() reads it
        else:
            mean, scale = np.zeros(d), np.ones(d)
    head0 = LinearHead(norm, mean, scale, np.zeros((1, d)), np.zeros(1))
    z = head0.normalise(features)
    weighting = class_weighting(y)
    basis = None if sparse else _row_space(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)  # at this tolerance the last digits do not matter
        model = LogisticRegression(C=C, class_weight=weighting, max_iter=MAX_ITER, tol=TOLERANCE,
                                   random_state=seed).fit(z @ basis if basis is not None else z, y)
    coef = model.coef_ @ basis.T if basis is not None else model.coef_.copy()
    return LinearHead(norm, mean, scale, coef, model.intercept_.copy(), float(C), weighting)


def _row_space(x: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis of the span of the training rows when there are fewer rows than features.

    An L2-regularised linear model's weights always lie in that span (representer theorem), so fitting in these
    <= n coordinates gives exactly the same model, many times faster when n is much smaller than the feature size.
    The intercept is not penalised, so the span of the rows themselves (not centred) is the one needed.
    """
    n, d = x.shape
    if n >= d:
        return None
    q, _ = np.linalg.qr(x.T)
    return q


def cross_val_proba(fit, features, y: np.ndarray, *, seed: int = 0, folds: int = 5) -> tuple[np.ndarray, int]:
    """Out-of-fold probabilities of ``fit(features, y) -> head`` for every row, and the number of folds used
    (stratified; at most ``folds``, at most the size of the smallest class, at least 2)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    n_classes = int(y.max()) + 1
    k = int(max(2, min(folds, np.bincount(y).min())))
    out = np.zeros((len(y), n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # "the least populated class has only n members"
        splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    for train, test in splits:
        present = np.unique(y[train])
        head = fit(features[train], np.searchsorted(present, y[train]))
        out[np.ix_(test, present)] = head.predict_proba(features[test])
    return out, k
