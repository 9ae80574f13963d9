"""Which pretrained model to start from, without fine-tuning any: transferability scores on frozen features.

- LogME (You et al., ICML 2021): the log marginal evidence of a Bayesian linear model from the features to each
  class's one-hot target, with its prior and noise precisions fitted by evidence maximisation; averaged over
  classes and divided by the number of examples. Higher is better; comparable across models on the same data.
- k-nearest-neighbour accuracy, cross-validated (stratified folds, cosine distance on the features): a plain,
  assumption-free check of how well the features group the classes.

Both run on the features the cache already holds (the same cache ``fit`` uses), so ranking costs one extraction
per model, and nothing when the features are cached.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np


def logme(features: np.ndarray, y: np.ndarray, max_iter: int = 50, tol: float = 1e-3) -> float:
    """LogME score of ``features`` (n x d) for integer labels ``y``."""
    f = np.asarray(features, dtype=np.float64)
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # f = u diag(s) vt; eigenvalues of f'f are s**2 (and d - r zeros)
    per_class = [class_evidence(u, s, f.shape[1], (y == k).astype(np.float64), max_iter, tol)[0] for k in np.unique(y)]
    return float(np.mean(per_class)) / f.shape[0]


def class_evidence(u: np.ndarray, s: np.ndarray, d: int, t: np.ndarray, max_iter: int = 50,
                   tol: float = 1e-3) -> tuple[float, float, float]:
    """(log evidence, alpha, beta) of ``t = f m + noise``, ``m ~ N(0, 1/alpha)``, noise ``~ N(0, 1/beta)``, with
    alpha and beta at the evidence maximum (MacKay's fixed-point updates), from the SVD of the features."""
    n = len(t)
    z = u.T @ t  # the target in the basis of the features' left singular vectors
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma, m2, res2 = _posterior(s, t, z, alpha, beta)
        new_alpha, new_beta = gamma / (m2 + 1e-12), max(n - gamma, 1e-12) / (res2 + 1e-12)
        done = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta) < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return log_evidence(s, d, t, z, alpha, beta), alpha, beta


def _posterior(s: np.ndarray, t: np.ndarray, z: np.ndarray, alpha: float, beta: float) -> tuple[float, float, float]:
    """(effective number of parameters gamma, |m|^2 of the posterior mean, |t - f m|^2)."""
    shrink = alpha + beta * s**2
    outside = float(t @ t - z @ z)  # the part of the target no linear map of the features can reach
    m2 = float(((beta * s * z / shrink) ** 2).sum())
    res2 = outside + float(((alpha * z / shrink) ** 2).sum())
    return float((beta * s**2 / shrink).sum()), m2, res2


def log_evidence(s: np.ndarray, d: int, t: np.ndarray, z: np.ndarray, alpha: float, beta: float) -> float:
    """log p(t | alpha, beta) = log N(t; 0, I/beta + f f'/alpha), in closed form from the SVD."""
    n = len(t)
    shrink = alpha + beta * s**2
    _, m2, res2 = _posterior(s, t, z, alpha, beta)
    log_det = float(np.log(shrink).sum()) + (d - len(s)) * np.log(alpha)
    return float(d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * log_det - beta / 2 * res2 - alpha / 2 * m2
                 - n / 2 * np.log(2 * np.pi))


def knn_cv_accuracy(features: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour vote (cosine distance, k up to 5)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = int(max(2, min(5, np.bincount(y).min())))
    train_size = len(y) * (folds - 1) // folds
    knn = KNeighborsClassifier(n_neighbors=int(max(1, min(5, train_size // len(np.unique(y))))), metric="cosine")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(knn, features, y, cv=cv).mean())


@dataclass
class Ranking:
    model: str
    logme: float
    knn_accuracy: float
    seconds: float
    feature_dim: int
    n_examples: int
    cached: bool  # whether every feature came from the cache

    def to_dict(self) -> dict:
        return asdict(self)


def score_features(name: str, features: np.ndarray, y: np.ndarray, seconds_so_far: float, cached: bool,
                   seed: int = 0) -> Ranking:
    start = time.perf_counter()
    score = logme(features, y)
    knn = knn_cv_accuracy(features, y, seed)
    return Ranking(name, score, knn, seconds_so_far + time.perf_counter() - start, int(features.shape[1]),
                   int(len(y)), cached)


def rank_models(data, names: list[str] | None = None, *, modality: str | None = None, cache_dir=None,
                precision: str = "auto", batch_size: int = 32, progress: bool = True, seed: int = 0,
                **read_options) -> list[Ranking]:
    """Rank pretrained models (image backbones, or text encoders and word-vector files) on labeled data, best LogME
    first: ``names``, or every offline model of the zoo for the data's modality (detected unless given).
    ``read_options`` go to the reader (``text_column``, ``label_column`` for tables of texts)."""
    from .data import check_trainable, is_text_source
    from .estimators import ImageClassifier, TextClassifier
    from .features import extract
    from .zoo import list_models

    modality = modality or ("text" if is_text_source(data) else "image")
    names = names or [m.name for m in list_models(modality=modality) if m.offline]
    cls = ImageClassifier if modality == "image" else TextClassifier
    settings = {"precision": precision, "batch_size": batch_size, "cache_dir": cache_dir, **read_options}
    labeled = cls(**settings)._read(data, require_labels=True)
    check_trainable(labeled, noun=cls.noun)
    classes = labeled.classes
    out = []
    for name in names:
        start = time.perf_counter()
        featurizer = cls(name, **settings)._featurizer()
        extraction = extract(featurizer, labeled.items, batch_size=batch_size, cache_dir=cache_dir,
                             progress=progress, description=f"Features of {featurizer.name}")
        y = np.array([classes.index(c) for c, ok in zip(labeled.labels, extraction.ok) if ok])
        out.append(score_features(featurizer.name, extraction.features, y, time.perf_counter() - start,
                                  extraction.n_computed == 0, seed))
    return sorted(out, key=lambda r: -r.logme)
