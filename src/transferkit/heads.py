"""Classical heads on features: a standardised, L2-regularised logistic regression (scikit-learn).

Regularisation strength is chosen by stratified cross-validation on the training data; classes are re-weighted
when they are imbalanced. The fitted head is kept as plain arrays (scaler, weights, bias) so a bundle stores it as
tensors, and it predicts exactly as scikit-learn does.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

IMBALANCE_RATIO = 1.5  # largest class / smallest class above which classes are re-weighted
C_GRID = np.logspace(-4, 1, 11)  # for standardised features; small-data optima sit well inside this range
TOLERANCE = 1e-3
MAX_ITER = 500
FEW_SHOT_C = float(C_GRID[len(C_GRID) // 2])  # when a class has a single example there is nothing to cross-validate


@dataclass(frozen=True)
class LinearHead:
    """``softmax(((x - mean) / scale) @ coef.T + intercept)``; binary heads use scikit-learn's one-row sigmoid form."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    C: float
    class_weight: str | None

    def decision_function(self, features) -> np.ndarray:
        import scipy.sparse

        if scipy.sparse.issparse(features):  # TF-IDF rows: fold the standardisation into the weights, stay sparse
            weight = self.coef / self.scale
            return np.asarray(features @ weight.T) + (self.intercept - weight @ self.mean)
        return ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict_proba(self, features) -> np.ndarray:
        z = self.decision_function(features)
        if self.coef.shape[0] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_tensors(self, prefix: str = "head.") -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": np.ascontiguousarray(getattr(self, k), dtype=np.float64) for k in ("mean", "scale", "coef", "intercept")}

    def config(self) -> dict:
        return {"C": self.C, "class_weight": self.class_weight}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], config: dict, prefix: str = "head.") -> LinearHead:
        return cls(**{k: np.asarray(tensors[f"{prefix}{k}"], dtype=np.float64) for k in ("mean", "scale", "coef", "intercept")},
                   C=float(config["C"]), class_weight=config.get("class_weight"))


def class_weighting(y: np.ndarray) -> str | None:
    counts = Counter(y.tolist())
    return "balanced" if max(counts.values()) / min(counts.values()) > IMBALANCE_RATIO else None


def fit_logistic_head(features: np.ndarray, y: np.ndarray, seed: int = 0, C: float | None = None) -> LinearHead:
    """Fit the head on integer labels ``y``; choose ``C`` by cross-validated log-loss unless it is given (or a class
    has a single example, where a middle-of-the-grid ``C`` is used)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    scaler = StandardScaler().fit(features)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    xs = (features - scaler.mean_) / scale
    weighting = class_weighting(y)
    basis = _row_space(xs)
    z = xs @ basis if basis is not None else xs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # "least populated class has only n members"
        warnings.simplefilter("ignore", category=ConvergenceWarning)  # at tol 1e-3 the last digits do not matter
        if C is None and np.bincount(y).min() < 2:
            C = FEW_SHOT_C
        if C is None:
            folds = int(min(5, np.bincount(y).min()))
            cv = StratifiedKFold(n_splits=max(folds, 2), shuffle=True, random_state=seed)
            search = LogisticRegressionCV(
                Cs=C_GRID, l1_ratios=(0.0,), cv=cv, scoring="neg_log_loss", class_weight=weighting,
                max_iter=MAX_ITER, tol=TOLERANCE, use_legacy_attributes=False, random_state=seed,
            ).fit(z, y)
            C = float(search.C_)
            model = search
        else:
            model = LogisticRegression(C=C, class_weight=weighting, max_iter=MAX_ITER, tol=TOLERANCE,
                                       random_state=seed).fit(z, y)
    coef = model.coef_ @ basis.T if basis is not None else model.coef_.copy()
    return LinearHead(scaler.mean_, scale, coef, model.intercept_.copy(), C, weighting)


def _row_space(xs: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis of the span of the (centred) training rows when there are fewer rows than features.

    An L2-regularised linear model's weights always lie in that span (representer theorem), so fitting in these
    <= n coordinates gives exactly the same model, many times faster when n is much smaller than the feature size.
    """
    n, d = xs.shape
    if n >= d:
        return None
    q, _ = np.linalg.qr(xs.T)  # d x n, orthonormal columns spanning the rows (a superset if rank-deficient)
    return q
