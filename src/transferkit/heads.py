"""Linear heads on features (scikit-learn's logistic regression), kept as plain arrays so a model folder stores them
as tensors and they predict exactly as scikit-learn does.

A head first normalises each feature row, then applies ``softmax(z @ coef.T + intercept)`` (scikit-learn's
one-logit sigmoid form for two classes). The normalisation:

- ``power``: ``sign(x) |x| ** power`` on every feature first. Non-negative features (pooled ReLU activations of an
  image network) are heavy-tailed; their square root is closer to Gaussian, which a linear head on a few examples
  needs (the power transform of the few-shot literature: Hu, Gripon & Pateux 2021; ``benchmarks/head_options.py``
  compares it with the raw features);
- ``norm``: ``"l2"``: centre on the training mean, then scale each row to unit length. Robust with 1-5 labels per
  class, where per-feature statistics of a handful of rows are noise;
  ``"standard"``: per-feature standardisation (transferkit 0.1's head; kept for the models it wrote); ``"none"``: the
  rows as they are (TF-IDF rows, already unit length; a fine-tuned network's own classifier);
- ``unit_rows``: each row (each block's part of it) scaled to unit length before anything else, as the members of a
  ``Concat`` are: the one-network student (``distill``) sees its backbone's features as its teacher saw them;
- ``blocks``: the widths of consecutive column blocks (the members of a ``Concat``). Each block is normalised and
  fitted on its own and the head averages the blocks' logits: an ensemble of one head per backbone, which is still
  one linear map on the normalised rows (so it saves, exports and predicts like any other head).

A head of one class per item may also carry a **nearest-neighbour vote** (``neighbours``): normalised rows of items
it was fitted around (labeled and unlabeled ones) and each row's class probabilities. Its probabilities are then the
mean of the softmax and the mean probabilities of each item's ``NEIGHBOURS`` most similar rows (a kNN classifier
over labels spread to unlabeled items: Zhou et al. 2004, as scikit-learn's ``LabelSpreading`` predicts), which
carries what a linear map on few labels cannot: the local structure of the unlabeled items (``distill``).

Classes are re-weighted when they are imbalanced. ``cross_val_proba`` gives out-of-fold probabilities for every
labeled row: the honest estimate a fit reports.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

IMBALANCE_RATIO = 1.5  # largest class / smallest class above which classes are re-weighted
NORMS = ("l2", "standard", "none")
OUTPUTS = ("softmax", "sigmoid", "identity")
POWER = 0.5  # the power transform of non-negative features ("auto"); other features are used as they are
C_DEFAULT = 10.0  # inverse regularisation of the head on features as they are (centred, unit length)
C_POWER = 30.0  # ... and on power-transformed ones: 1-4 points above C = 3 or 10 there (benchmarks/head_options.py)
ROWS_AT_ONCE = 2048  # rows a head normalises at once when it predicts (bounded memory for a large pool)
NEIGHBOURS = 10  # the rows a nearest-neighbour vote averages (scikit-learn's LabelSpreading default)
TOLERANCE = 1e-4
MAX_ITER = 1000
# The temperature that calibrates the default head's out-of-fold probabilities, by its power transform: the median
# of the temperatures fitted to the folds on seeds 5-9 of the few-shot suite, which its tables do not use (4 image
# tasks, the zoo's four backbones side by side, power 0.5; 3 text tasks, all-MiniLM-L6-v2, power 1; 2-20 labels per
# class; benchmarks/estimate_bias.py). A fit draws the temperature toward it (``evaluate.fit_temperature``): a
# handful of held-out labels alone fit it badly. Other heads (another C or norm, sparse rows) have none.
TYPICAL_TEMPERATURE = {POWER: 0.69, 1.0: 0.31}


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
    power: float = 1.0
    blocks: tuple[int, ...] = ()  # widths of column blocks normalised and fitted apart; () is one block
    output: str = "softmax"  # softmax: one class; sigmoid: one yes/no per label (several labels); identity: numbers
    unit_rows: bool = False  # rows (per block) scaled to unit length before the power transform
    neighbours: np.ndarray | None = None  # normalised rows a nearest-neighbour vote reads (``vote_rows``), or None
    neighbour_proba: np.ndarray | None = None  # each of those rows' class probabilities (float32)

    kind = "linear-head"

    @classmethod
    def plain(cls, coef: np.ndarray, intercept: np.ndarray) -> LinearHead:
        d = coef.shape[1]
        return cls("none", np.zeros(d), np.ones(d), np.asarray(coef, np.float64), np.asarray(intercept, np.float64))

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[1])

    @property
    def typical_temperature(self) -> float | None:
        """The temperature this head's held-out probabilities typically need (``TYPICAL_TEMPERATURE``), if it is
        the default head on dense features; else None."""
        if self.norm != "l2" or self.C != default_C(self.power):
            return None
        return TYPICAL_TEMPERATURE.get(self.power)

    @property
    def bounds(self) -> list[tuple[int, int]]:
        """(start, stop) of each column block."""
        return block_bounds(self.blocks, self.n_features)

    def normalise(self, features):
        if is_sparse(features):
            if self.norm == "l2" or self.power != 1.0:
                raise ValueError("sparse features take a head without l2 normalisation or a power transform")
            return features
        x = power_transform(unit_blocks(np.asarray(features, dtype=np.float64), self.blocks) if self.unit_rows else
                            np.asarray(features, dtype=np.float64), self.power)
        if self.norm == "standard":
            return (x - self.mean) / self.scale
        if self.norm == "l2":
            x = unit_blocks(x - self.mean, self.blocks)
        return x

    def refit(self, features, y: np.ndarray, seed: int = 0) -> LinearHead:
        """A head with these settings (normalisation, power, blocks, C) fitted to other rows: ``y`` holds integer
        classes, a 0/1 matrix of labels (a ``sigmoid`` head) or numbers (an ``identity`` head)."""
        if self.output == "sigmoid":
            return fit_label_head(features, y, norm=self.norm, C=self.C, power=self.power, blocks=self.blocks,
                                  seed=seed)
        if self.output == "identity":
            return fit_number_head(features, y, norm=self.norm, power=self.power, blocks=self.blocks,
                                   alpha=1.0 / self.C if self.C else None)
        return fit_head(features, y, norm=self.norm, C=self.C, power=self.power, blocks=self.blocks,
                        unit_rows=self.unit_rows, seed=seed)

    def decision_function(self, features) -> np.ndarray:
        if is_sparse(features) and self.norm == "standard":  # fold the affine map in: rows stay sparse
            weight = self.coef / self.scale
            return np.asarray(features @ weight.T) + (self.intercept - weight @ self.mean)
        return np.asarray(self.normalise(features) @ self.coef.T) + self.intercept

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities (softmax), each label's probability (sigmoid), or the numbers (identity); dense rows
        ``ROWS_AT_ONCE`` at a time, so that a large pool's normalised copies never all exist at once."""
        n = features.shape[0]
        if n > ROWS_AT_ONCE and not is_sparse(features):
            return np.concatenate([self._proba(features[i:i + ROWS_AT_ONCE]) for i in range(0, n, ROWS_AT_ONCE)])
        return self._proba(features)

    def _proba(self, features) -> np.ndarray:
        if self.neighbours is not None:
            z = self.normalise(features)
            linear = logits_to_proba(np.asarray(z @ self.coef.T) + self.intercept)
            return (linear + neighbour_vote(self.neighbours, self.neighbour_proba, z)) / 2
        z = self.decision_function(features)
        if self.output == "sigmoid":
            return sigmoid(z)
        return z if self.output == "identity" else logits_to_proba(z)

    def with_neighbours(self, rows, proba: np.ndarray) -> LinearHead:
        """This head voting with ``rows`` (features, normalised here) and their class probabilities ``proba``."""
        if self.output != "softmax":
            raise ValueError("a nearest-neighbour vote is for heads of one class per item")
        return replace(self, neighbours=vote_rows(self.normalise(rows)), neighbour_proba=np.asarray(proba, np.float32))

    def as_linear(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) of one linear layer on the raw features that approximates this head: exact for
        ``standard`` and ``none``; for ``l2`` each block's row norm is replaced by its typical training value
        (``scale``), which is what a network classifier initialised from the head can carry. A power transform is
        not linear: such a head has no linear form."""
        if self.power != 1.0 or self.neighbours is not None or self.unit_rows:
            raise ValueError("a head on power-transformed features or with a nearest-neighbour vote has no linear "
                             "form; fit one with power=1")
        if self.norm in ("standard", "l2"):
            weight = self.coef / self.scale
        else:
            weight = self.coef
        return weight, self.intercept - weight @ (self.mean if self.norm != "none" else np.zeros(self.n_features))

    def save(self) -> tuple[dict, dict[str, np.ndarray]]:
        config = {"kind": self.kind, "norm": self.norm, "C": self.C, "class_weight": self.class_weight,
                  "power": self.power, "blocks": list(self.blocks), "n_features": self.n_features, "output": self.output,
                  "n_outputs": int(self.coef.shape[0])}
        if self.unit_rows:
            config["unit_rows"] = True
        tensors = {k: np.ascontiguousarray(getattr(self, k), dtype=np.float64)
                   for k in ("mean", "scale", "coef", "intercept")}
        if self.neighbours is not None:
            config["neighbours"] = int(len(self.neighbours))
            tensors["neighbours"] = np.ascontiguousarray(self.neighbours, dtype=np.float16)  # exact: ``vote_rows``
            tensors["neighbour_proba"] = np.ascontiguousarray(self.neighbour_proba, dtype=np.float32)
        return config, tensors

    @classmethod
    def load(cls, config: dict, tensors: dict) -> LinearHead:
        from .errors import BundleError

        missing = [k for k in ("mean", "scale", "coef", "intercept") if k not in tensors]
        if missing:
            raise BundleError(f"The head's weights lack {', '.join(missing)}: head/model.safetensors is missing or "
                              "damaged. Get a complete copy of the model folder, or refit.")
        arrays = {k: np.asarray(tensors[k], dtype=np.float64) for k in ("mean", "scale", "coef", "intercept")}
        if config.get("norm", "standard") not in NORMS:
            raise BundleError(f"Unknown head normalisation {config.get('norm')!r} in the model folder.")
        d = arrays["coef"].shape[1]
        if arrays["mean"].shape != (d,) or arrays["scale"].shape != (d,) or arrays["intercept"].shape[0] != arrays[
                "coef"].shape[0]:
            raise BundleError("The head's tensors do not fit together (the model folder was edited or is damaged).")
        blocks = tuple(int(b) for b in config.get("blocks") or ())
        power = config.get("power", 1.0)
        output = config.get("output", "softmax")
        unit_rows = config.get("unit_rows", False)
        if ((blocks and sum(blocks) != d) or not isinstance(power, (int, float)) or not power > 0 or output not in OUTPUTS
                or not isinstance(unit_rows, bool)):
            raise BundleError("The head's settings do not fit its tensors (the model folder was edited or is damaged).")
        vote = _saved_vote(config, tensors, d, arrays["coef"].shape[0], output)
        return cls(config.get("norm", "standard"), **arrays, C=config.get("C"), class_weight=config.get("class_weight"),
                   power=float(power), blocks=blocks, output=output, unit_rows=unit_rows, **vote)


def _saved_vote(config: dict, tensors: dict, d: int, n_outputs: int, output: str) -> dict:
    """A saved head's nearest-neighbour vote (``LinearHead.neighbours``), checked against its config and weights."""
    from .errors import BundleError

    n = config.get("neighbours")
    if n is None and "neighbours" not in tensors and "neighbour_proba" not in tensors:
        return {}
    rows, proba = tensors.get("neighbours"), tensors.get("neighbour_proba")
    n_classes = 2 if n_outputs == 1 else n_outputs
    if (rows is None or proba is None or isinstance(n, bool) or not isinstance(n, int) or output != "softmax"
            or np.shape(rows) != (n, d) or np.shape(proba) != (n, n_classes) or n < 1):
        raise BundleError("The head's nearest-neighbour vote does not fit its weights (the model folder was edited or "
                          "is damaged). Get a complete copy of the model folder, or refit.")
    return {"neighbours": np.asarray(rows, np.float32), "neighbour_proba": np.asarray(proba, np.float32)}


def vote_rows(rows) -> np.ndarray:
    """A vote's rows as a head keeps them: float32 arrays of float16 values, so a model folder stores them in half
    the bytes of float32 and the head in memory already votes with exactly what it stores. Rows of unit length per
    block lose nothing a vote of nearest items can tell (about three significant digits of each cosine)."""
    return np.asarray(rows, np.float16).astype(np.float32)


def neighbour_vote(rows: np.ndarray, proba: np.ndarray, items: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """For each of ``items`` (normalised like ``rows``), the mean of ``proba`` over its ``k`` most similar ``rows``
    (largest dot product: with rows of unit length per block, the nearest in Euclidean distance), each weighted by
    how much more similar it is than the next most similar row. The weights fall to zero at the edge of the ``k``,
    so the vote does not jump when two rows there trade places (rounding in another runtime: the ONNX export).
    ``LinearHead.predict_proba`` passes at most ``ROWS_AT_ONCE`` items at a time."""
    k = min(k + 1, len(rows))
    sim = np.asarray(items, np.float32) @ rows.T
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(sim, top, axis=1).astype(np.float64)
    weight = near - near.min(1, keepdims=True)
    total = weight.sum(1, keepdims=True)
    weight = np.where(total > 0, weight / np.where(total > 0, total, 1.0), 1.0 / k)
    return np.einsum("nk,nkc->nc", weight, proba[top])


def logits_to_proba(z: np.ndarray) -> np.ndarray:
    """Softmax over classes, or scikit-learn's two-class sigmoid of one logit."""
    if z.shape[1] == 1:
        p = sigmoid(z[:, 0])
        return np.stack([1.0 - p, p], axis=1)
    return softmax(z)


def is_sparse(features) -> bool:
    """Whether ``features`` is a scipy sparse matrix, without importing scipy.sparse, which a cold ``predict`` would
    pay for: no sparse matrix can exist before it is imported."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(features)


# softmax and sigmoid in numpy: importing scipy.special would lengthen every cold ``predict``.
def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def softmax(z: np.ndarray) -> np.ndarray:
    """The softmax of each row."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def block_bounds(blocks: tuple[int, ...], d: int) -> list[tuple[int, int]]:
    if not blocks:
        return [(0, d)]
    stops = np.cumsum(blocks).tolist()
    return list(zip([0, *stops[:-1]], stops))


def unit_blocks(x: np.ndarray, blocks: tuple[int, ...]) -> np.ndarray:
    """Each row's part in each block scaled to unit length."""
    out = np.array(x, dtype=np.float64)
    for start, stop in block_bounds(blocks, x.shape[1]):
        part = out[:, start:stop]
        out[:, start:stop] = part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    return out


def power_transform(x: np.ndarray, power: float) -> np.ndarray:
    return x if power == 1.0 else np.sign(x) * np.abs(x) ** power


def resolve_power(power: float | str, features) -> float:
    """``"auto"``: :data:`POWER` for dense features that are all >= 0 (pooled ReLU activations), else 1 (none)."""
    if power != "auto":
        return float(power)
    if is_sparse(features):
        return 1.0
    return POWER if float(np.min(features)) >= 0.0 else 1.0


def default_C(power: float) -> float:
    return C_POWER if power != 1.0 else C_DEFAULT


def class_weighting(y: np.ndarray) -> str | None:
    counts = Counter(np.asarray(y).tolist())
    return "balanced" if max(counts.values()) / min(counts.values()) > IMBALANCE_RATIO else None


def fit_head(features, y: np.ndarray, *, norm: str = "l2", C: float | None = None, power: float | str = 1.0,
             blocks: tuple[int, ...] = (), unit_rows: bool = False, seed: int = 0) -> LinearHead:
    """A logistic-regression head on integer labels ``y``: rows normalised as ``norm`` says after the ``power``
    transform (``"auto"``: :func:`resolve_power`) and, with ``unit_rows``, scaled to unit length before it; each block
    of ``blocks`` fitted on its own, inverse regularisation ``C`` (``None``: :func:`default_C`)."""
    y = np.asarray(y)
    power = resolve_power(power, features)
    C = float(C) if C is not None else default_C(power)
    head0, z = normaliser(features, norm, power, blocks, unit_rows)
    norm, mean, scale, blocks, d, power = (head0.norm, head0.mean, head0.scale, head0.blocks, head0.n_features,
                                           head0.power)
    weighting = class_weighting(y)
    bounds = block_bounds(blocks, d)
    coefs, intercepts = [], []
    for start, stop in bounds:  # one logistic regression per block; the head averages their logits
        block = z[:, start:stop] if blocks else z
        coef, intercept = _logistic(block, y, C, weighting, seed, _basis(block))
        coefs.append(coef / len(bounds))
        intercepts.append(intercept / len(bounds))
    return LinearHead(norm, mean, scale, np.concatenate(coefs, axis=1), np.sum(intercepts, axis=0), C, weighting,
                      power, blocks, unit_rows=head0.unit_rows)


def normaliser(features, norm: str, power: float, blocks: tuple[int, ...],
               unit_rows: bool = False) -> tuple[LinearHead, Any]:
    """A head with no weights yet that normalises as ``norm``, ``power``, ``blocks`` and ``unit_rows`` say, with its
    statistics taken from ``features``, and the normalised rows (sparse rows pass as they are)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    sparse = is_sparse(features)
    d = features.shape[1]
    blocks = tuple(int(b) for b in blocks) if len(blocks) > 1 else ()
    if blocks and sum(blocks) != d:
        raise ValueError(f"blocks {blocks} do not add up to the {d} features")
    if sparse and unit_rows:
        raise ValueError("sparse features take a head without unit_rows")
    if sparse:
        head = LinearHead("none", np.zeros(d), np.ones(d), np.zeros((1, d)), np.zeros(1))
        return head, features
    x = np.asarray(features, dtype=np.float64)
    x = power_transform(unit_blocks(x, blocks) if unit_rows else x, power)
    if norm == "standard":
        mean, scale = x.mean(0), x.std(0)
        scale = np.where(scale > 0, scale, 1.0)
    elif norm == "l2":
        mean = x.mean(0)
        scale = np.ones(d)
        for start, stop in block_bounds(blocks, d):  # only as_linear() reads it
            scale[start:stop] = float(np.median(np.linalg.norm(x[:, start:stop] - mean[start:stop], axis=1))) or 1.0
    else:
        mean, scale = np.zeros(d), np.ones(d)
    head = LinearHead(norm, mean, scale, np.zeros((1, d)), np.zeros(1), blocks=blocks)
    return replace(head, power=power, unit_rows=unit_rows), head.normalise(x)  # x is already transformed


def fit_label_head(features, Y: np.ndarray, *, norm: str = "l2", C: float | None = None, power: float | str = 1.0,
                   blocks: tuple[int, ...] = (), seed: int = 0) -> LinearHead:
    """Several labels per item: one logistic regression per column of the 0/1 matrix ``Y`` (one-vs-rest) on rows
    normalised as :func:`fit_head` does; the head's ``sigmoid`` output is each label's probability. A label that is
    on every row of ``features`` (or on none) gets its smoothed frequency as a constant."""
    Y = np.asarray(Y)
    power = resolve_power(power, features)
    C = float(C) if C is not None else default_C(power)
    head0, z = normaliser(features, norm, power, blocks)
    bounds = block_bounds(head0.blocks, head0.n_features)
    coef = np.zeros((Y.shape[1], head0.n_features))
    intercept = np.zeros(Y.shape[1])
    rows = [z[:, start:stop] if head0.blocks else z for start, stop in bounds]
    bases = [_basis(r) for r in rows]  # once per block, for every label
    for j in range(Y.shape[1]):
        y = Y[:, j]
        if y.min() == y.max():
            rate = (y.sum() + 0.5) / (len(y) + 1.0)
            intercept[j] = np.log(rate / (1 - rate))
            continue
        weighting = class_weighting(y)
        for (start, stop), block, basis in zip(bounds, rows, bases):
            c, b = _logistic(block, y, C, weighting, seed, basis)
            coef[j, start:stop] = c[0] / len(bounds)
            intercept[j] += b[0] / len(bounds)
    return replace(head0, coef=coef, intercept=intercept, C=C, output="sigmoid")


ALPHAS = tuple(10.0 ** np.arange(-3, 4.5, 0.5))  # the ridge penalties a number head chooses among


def fit_number_head(features, y: np.ndarray, *, norm: str = "l2", power: float | str = 1.0,
                    blocks: tuple[int, ...] = (), alpha: float | None = None) -> LinearHead:
    """Numbers: a ridge regression per block of rows normalised as :func:`fit_head` does, the blocks' predictions
    averaged; ``alpha``: the penalty, or None to choose it among ``ALPHAS`` by leave-one-out error (scikit-learn's
    ``RidgeCV``, exact and cheap). The head's ``identity`` output is the number; ``C`` records 1 / alpha."""
    from sklearn.linear_model import Ridge, RidgeCV

    y = np.asarray(y, dtype=np.float64)
    power = resolve_power(power, features)
    head0, z = normaliser(features, norm, power, blocks)
    bounds = block_bounds(head0.blocks, head0.n_features)
    coef = np.zeros((1, head0.n_features))
    intercept = np.zeros(1)
    alphas = []
    for start, stop in bounds:
        rows = z[:, start:stop] if head0.blocks else z
        model = (Ridge(alpha=alpha) if alpha is not None else RidgeCV(alphas=ALPHAS)).fit(rows, y)
        alphas.append(float(alpha if alpha is not None else model.alpha_))
        coef[0, start:stop] = model.coef_ / len(bounds)
        intercept[0] += float(model.intercept_) / len(bounds)
    return replace(head0, coef=coef, intercept=intercept, C=1.0 / float(np.mean(alphas)), output="identity")


def _basis(z) -> np.ndarray | None:
    """``_row_space`` of dense rows; None for sparse ones (fitted as they are)."""
    return None if is_sparse(z) else _row_space(z)


def _logistic(z, y: np.ndarray, C: float, weighting: str | None, seed: int, basis: np.ndarray | None):
    """(coef, intercept) of a logistic regression on ``z``, fitted in ``basis``, the span of its rows (``_basis``),
    where there is one."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)  # at this tolerance the last digits do not matter
        model = LogisticRegression(C=C, class_weight=weighting, max_iter=MAX_ITER, tol=TOLERANCE,
                                   random_state=seed).fit(z @ basis if basis is not None else z, y)
    coef = model.coef_ @ basis.T if basis is not None else model.coef_.copy()
    return coef, model.intercept_.copy()


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
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    class HeadFit(ClassifierMixin, BaseEstimator):  # made here: loading a model for inference imports no scikit-learn
        """``fit_head(features, y) -> head`` as an estimator; scikit-learn's cross-validation places each fold's
        probabilities by ``classes_`` when a class is missing from the fold's training part."""

        def __init__(self, fit_head=None) -> None:
            self.fit_head = fit_head

        def fit(self, X, y):
            self.classes_ = np.unique(y)
            self.head_ = self.fit_head(X, np.searchsorted(self.classes_, y))
            return self

        def predict_proba(self, X):
            return self.head_.predict_proba(X)

        def predict(self, X):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]

    y = np.asarray(y)  # (``fit`` goes in wrapped: clone copies a bound method's object, never a function)
    counts = np.bincount(y)
    k = int(max(2, min(folds, counts[counts > 0].min())))
    out = np.zeros((len(y), len(counts)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # "the least populated class has only n members"
        folds_ = StratifiedKFold(k, shuffle=True, random_state=seed)
        out[:, np.flatnonzero(counts)] = cross_val_predict(HeadFit(lambda a, b: fit(a, b)), features, y, cv=folds_,
                                                           method="predict_proba")
    return out, k

