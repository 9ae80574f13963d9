"""Metrics of a fitted classifier (images or texts) on labeled data: accuracy, macro-F1, per-class report,
confusion matrix, calibration (reliability bins and expected calibration error) and the most confident mistakes; for
a model of several labels or numbers, F1, mean average precision, R², MAE and RMSE with bootstrap intervals
(``label_metrics``, ``number_metrics``, ``evaluate_shape``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import NormalDist

import numpy as np

from .errors import BadInputError

RESAMPLES = 400  # bootstrap resamples behind every interval of a model of several labels or numbers


@dataclass
class Evaluation:
    classes: list[str]
    accuracy: float
    macro_f1: float
    per_class: list[dict]
    confusion_matrix: list[list[int]]
    n_examples: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ece: float = 0.0  # expected calibration error: mean |accuracy - confidence| over confidence bins, weighted
    calibration: list[dict] = field(default_factory=list)  # per bin: lower, upper, count, confidence, accuracy
    confident_errors: list[dict] = field(default_factory=list)  # the most confidently wrong examples
    modality: str = "image"
    interval: list[float] = field(default_factory=lambda: [0.0, 1.0])  # 95% Wilson interval of the accuracy
    notes: list[str] = field(default_factory=list)  # duplicates, copies of training items: what weakens the numbers
    label_free: dict | None = None  # what predict reads on these items without their labels (label_free_estimate)
    open_set: dict | None = None  # with ``reject``: how items of no trained class were told apart (open_set_metrics)

    def to_dict(self) -> dict:
        return asdict(self)


CALIBRATION_BINS = 10
N_CONFIDENT_ERRORS = 12


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error (Guo et al., 2017) and the reliability diagram's bins, equal-width in confidence."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        conf = float(confidence[mask].mean()) if n else None
        acc = float(correct[mask].mean()) if n else None
        if n:
            ece += n / len(confidence) * abs(acc - conf)
        rows.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n, "confidence": conf,
                     "accuracy": acc})
    return float(ece), rows


def evaluate(model, data, labels=None, reject=None, runtime_for=None) -> Evaluation:
    """Score ``model`` on labeled data: for images a folder, CSV, or paths with ``labels`` (unreadable files are
    listed, not scored); for texts a CSV / JSONL / folder of .txt, or texts with ``labels``.

    ``runtime_for(model, items)``, where given, is the predictor to score the items with once they are read (the
    CLI's runtime left to auto: ``loading.for_texts``), so that the data is read once.

    ``reject`` (``"auto"`` or a rate, as ``predict`` takes it): items of classes the model was not trained on are
    allowed, and ``open_set`` says how well they were told apart; the other metrics are over the trained classes'
    items."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    model = model.predictor() if hasattr(model, "predictor") else model  # an estimator, or a loaded Predictor
    labeled = model.read(data, labels, require_labels=True)
    if runtime_for is not None:
        model = runtime_for(model, list(labeled.items))
    if getattr(model, "kind", "class") != "class":
        if reject is not None:
            model.check_reject(reject)
        return evaluate_shape(model, labeled, data)
    items, truth, what = list(labeled.items), list(labeled.labels), f"{model.noun}s"
    notes = data_notes(model, labeled)
    classes = model.classes.tolist()
    unknown = sorted(set(map(repr, truth)) - set(map(repr, classes)))
    if unknown and reject is None:
        raise BadInputError(
            f"{data if isinstance(data, (str, Path)) else 'The data'} has classes the model was not trained on: "
            f"{', '.join(unknown[:5])}. The model knows: {', '.join(map(str, classes))}. To measure how well it "
            "rejects them, pass --reject auto."
        )
    open_set = None
    if reject is not None:
        from .openset import rejection_rate

        rate = rejection_rate(reject)
        proba, accepted, scores, ok, skipped = model.predict_open(items, rate)
        trained = np.array([c in classes for c, keep in zip(truth, ok) if keep], bool)
        open_set = open_set_metrics(accepted, scores, trained, proba.argmax(1) == np.array(
            [classes.index(c) if c in classes else -1 for c, keep in zip(truth, ok) if keep]), rate,
            model.open_set.score)
        if not trained.any():
            raise BadInputError(f"{data} has no readable {what} of the classes the model was trained on.")
        known = [bool(keep) and c in classes for c, keep in zip(truth, ok)]  # the rest is measured on these
        items, truth = [i for i, k in zip(items, known) if k], [c for c, k in zip(truth, known) if k]
        proba, ok = proba[trained], np.ones(len(items), bool)
    else:
        proba, ok, skipped = model.predict_items(items)
    if not ok.any():
        raise BadInputError(f"None of the {len(items)} {what} in {data} could be read.")
    y_true = np.array([classes.index(c) for c, keep in zip(truth, ok) if keep])
    y_pred = proba.argmax(1)
    idx = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    per_class = [
        {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support)
    ]
    confidence = proba.max(1)
    correct = y_pred == y_true
    ece, bins = calibration(confidence, correct)
    kept = [item for item, keep in zip(items, ok) if keep]
    wrong = np.flatnonzero(~correct)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:N_CONFIDENT_ERRORS]
    errors = [{"item": str(kept[i]), "true": classes[y_true[i]], "predicted": classes[y_pred[i]],
               "probability": float(confidence[i]), "probability_of_true": float(proba[i, y_true[i]])} for i in wrong]
    estimate = accuracy_estimate(correct)
    small = sample_size_note(estimate["n"], estimate["interval"], f"test {what}")
    return Evaluation(
        ece=ece, calibration=bins, confident_errors=errors, modality=model.modality,
        classes=classes,
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=idx, average="macro", zero_division=0)),
        per_class=per_class,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        n_examples=int(ok.sum()),
        interval=estimate["interval"],
        notes=[*notes, *([small] if small else [])],
        skipped=[(str(Path(p)), why) for p, why in skipped],
        label_free=model.label_free(proba),
        open_set=open_set,
    )


def data_notes(model, labeled) -> list[str]:
    """What weakens numbers measured on ``labeled`` test data: what reading it noticed, duplicates, and exact copies
    of the training items."""
    from .data.hygiene import content_keys, duplicate_notes, overlap

    items, what = list(labeled.items), f"{model.noun}s"
    keys = content_keys(items, model.item_key)
    notes = [*labeled.notes, *duplicate_notes(items, list(labeled.labels), keys, "test data")]
    copies = overlap(keys, set(model.train_digests))
    if copies:
        examples = ", ".join(str(items[i])[:60] for i in copies[:3])
        notes.append(f"{len(copies)} test {what} are exact copies of training {what} ({examples}): the numbers on "
                     "them say nothing about new data; remove them from the test set")
    return notes


def open_set_metrics(accepted: np.ndarray, scores: np.ndarray, trained: np.ndarray, correct: np.ndarray,
                     rate: float, score: str) -> dict:
    """How items of no trained class were told apart: the share of each group rejected, accuracy on the accepted
    items of trained classes, AUROC of the score (trained vs not) and the open-set accuracy (a trained class's item
    accepted and right, or another item rejected), each with its count."""
    from sklearn.metrics import roc_auc_score

    others = ~trained
    both = bool(trained.any() and others.any())
    right = np.where(trained, accepted & correct, ~accepted)
    return {"score": score, "rate": rate, "n_trained_classes": int(trained.sum()), "n_other": int(others.sum()),
            "trained_rejected": float(1 - accepted[trained].mean()) if trained.any() else None,
            "other_rejected": float(1 - accepted[others].mean()) if others.any() else None,
            "accuracy_accepted": float(correct[trained & accepted].mean()) if (trained & accepted).any() else None,
            "n_accepted": int((trained & accepted).sum()),
            "auroc": float(roc_auc_score(trained, scores)) if both else None,
            "open_set_accuracy": float(right.mean())}


def accuracy_estimate(correct, confidence: float = 0.95) -> dict:
    """Accuracy of a 0/1 vector with its Wilson score interval and sample size: a number shown to a user comes with
    how much it can be trusted (4 held-out examples give an interval of about 0.5 wide)."""
    correct = np.asarray(correct, dtype=float)
    n = int(correct.size)
    if n == 0:
        return {"accuracy": float("nan"), "interval": [0.0, 1.0], "n": 0}
    p = float(correct.mean())
    return {"accuracy": p, "interval": wilson_interval(p, n, confidence), "n": n}


# Below this many examples an accuracy comes with a note on how far it can be trusted: 100 examples measure an
# accuracy near 0.8 to about +-0.08.
FIRM_SAMPLE = 100


def sample_size_note(n: int, interval, examples: str, what: str = "accuracy") -> str | None:
    """What a user is told when ``what`` (an accuracy) rests on fewer than ``FIRM_SAMPLE`` ``examples`` (a plural
    noun): how wide its interval is and what would firm it up; None when the sample is large enough."""
    if n >= FIRM_SAMPLE:
        return None
    low, high = interval
    return (f"{n} {examples} measure {what} to about +-{(high - low) / 2:.2f}; more {examples} would make the "
            "number firmer")


def estimate_note(reported, noun: str) -> str | None:
    """``sample_size_note`` for the accuracy a fit reports (``FitReport.estimate``): its sample is the labels it
    cross-validated, or the held-out ``noun``s (image, text) of a validation split."""
    if reported is None:
        return None
    examples = f"held-out {noun}s" if reported.key == "val_accuracy" else "labels"
    what = {"micro_f1": "micro-F1", "r2": "R²"}.get(reported.key, "accuracy")
    return sample_size_note(reported.n or 0, reported.interval, examples, what)


def normal_quantile(p: float) -> float:
    """The standard normal distribution's ``p`` quantile, from the standard library: importing scipy.stats for one
    number would lengthen every cold ``predict``."""
    return NormalDist().inv_cdf(p)


def wilson_interval(p: float, n: int, confidence: float = 0.95) -> list[float]:
    """The Wilson score interval of a proportion ``p`` measured on ``n`` examples."""
    z = normal_quantile(0.5 + confidence / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


TEMPERATURE_BOUNDS = (0.05, 20.0)
# How far (sd of log temperature) a fitted temperature is expected to stray from its head's typical one
# (``LinearHead.typical_temperature``). Chosen on seeds 5-9 of the few-shot suite with each task's typical temperature
# taken from the other tasks (0.2-0.3 are within 0.1 point of each other; benchmarks/estimate_bias.py).
TEMPERATURE_PRIOR_SD = 0.25


def calibrated_accuracy(proba, y, typical: float | None = None) -> float:
    """The accuracy of held-out predictions read from their probabilities instead of counted right or wrong: the
    mean probability of the predicted class once the probabilities are temperature-scaled (one parameter, fitted by
    likelihood to the same labels). It estimates what the 0/1 count estimates, with less of the luck of a handful
    of examples in it: the average-confidence estimate of Guo et al. (2017) and Guillory et al. (2021)."""
    y = np.asarray(y)
    if len(y) == 0:
        return float("nan")
    return mean_confidence(proba, fit_temperature(proba, y, typical))


def fit_temperature(proba, y, typical: float | None = None, prior_sd: float = TEMPERATURE_PRIOR_SD) -> float:
    """The temperature that makes the probabilities ``proba`` most likely for the labels ``y`` (Guo et al. 2017),
    within ``TEMPERATURE_BOUNDS``. With ``typical`` (the temperature this kind of head usually needs) it is the
    most probable one a posteriori, under a log-normal prior around ``typical`` of sd ``prior_sd``: with a handful
    of labels the prior holds it, with hundreds the labels decide. Fitted to 4-20 labels alone it strays widely
    (0.05 to 20 on the few-shot suite at 2 labels per class), and so does every accuracy read with it."""
    from scipy.optimize import minimize_scalar

    def posterior(log_t: float) -> float:
        prior = 0.0 if typical is None else (log_t - np.log(typical)) ** 2 / (2 * prior_sd**2)
        return temperature_nll(proba, y, float(np.exp(log_t))) + prior

    return float(np.exp(minimize_scalar(posterior, bounds=tuple(np.log(TEMPERATURE_BOUNDS)), method="bounded").x))


def temperature_nll(proba, y, temperature: float) -> float:
    """The negative log-likelihood of the labels ``y`` under ``proba`` scaled by ``temperature`` (summed)."""
    log_p, y = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)), np.asarray(y)
    return float(-np.log(np.clip(_tempered(log_p, temperature)[np.arange(len(y)), y], 1e-12, 1.0)).sum())


def mean_confidence(proba, temperature: float = 1.0) -> float:
    """The mean probability of the predicted class once ``proba`` is scaled by ``temperature``."""
    return float(confidences(proba, temperature).mean())


def confidences(proba, temperature: float = 1.0) -> np.ndarray:
    """Each row's probability of its predicted class once ``proba`` is scaled by ``temperature``."""
    log_p = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))
    return _tempered(log_p, temperature).max(axis=1) if len(log_p) else np.zeros(0)


def _tempered(log_p: np.ndarray, temperature: float) -> np.ndarray:
    from .heads import softmax

    return softmax(log_p / temperature)


# How much a few-shot head's accuracy grows with its labels, in log-odds per unit of log(labels):
# logit(accuracy at n labels) - logit(accuracy at m) ~ LEARNING_CURVE_SLOPE * log(n / m). Fitted (least squares in
# accuracy) on seeds 5-9 of the few-shot suite, which its tables do not use: frozen features' cross-validated accuracy
# (read from the calibrated probabilities) against the test accuracy of the head on every label, 4 image and 3 text
# tasks at 2-20 labels per class, 140 samples (benchmarks/estimate_bias.py, README). Images alone give 0.75, texts
# alone 1.15; fitted on six tasks and judged on the seventh, the estimate is as close as with this one.
LEARNING_CURVE_SLOPE = 0.90


def up_the_curve(accuracy: float, folds: int, slope: float = LEARNING_CURVE_SLOPE) -> float:
    """An accuracy measured by heads trained on (folds - 1) / folds of the labels, moved to the head on all of them
    along a learning curve of ``slope`` (log-odds per unit of log labels). 0 and 1 stay where they are."""
    if not 0.0 < accuracy < 1.0:
        return float(accuracy)
    logit = np.log(accuracy / (1.0 - accuracy)) + slope * np.log(folds / (folds - 1))
    return float(1.0 / (1.0 + np.exp(-logit)))


def cv_estimate(proba, y, folds: int, confidence: float = 0.95, typical_temperature: float | None = None) -> dict:
    """The accuracy of a head fitted on every label, from its ``folds``-fold out-of-fold probabilities ``proba``.

    The held-out predictions' accuracy is read from their temperature-scaled probabilities (``calibrated_accuracy``:
    over the few-shot suite's held-out seeds, about a point closer to the test accuracy than the 0/1 count, two at
    2 labels per class). Each fold's head learned from (folds - 1) / folds of the labels, so with a few labels per
    class the folds read low (2 folds at 2 labels per class: heads that saw one example of each class). The
    accuracy and its Wilson interval are moved up the learning curve (``up_the_curve``): for 2 folds 0.50 reads
    0.65, for 5 folds 0.80 reads 0.83. ``measured`` (and ``measured_interval``) is what the folds scored, counted.
    ``temperature`` is the one fitted to the folds, drawn toward ``typical_temperature`` (the head's, when it has
    one; ``fit_temperature``; ``benchmarks/estimate_bias.py`` measures how far the estimate is from test accuracy).
    It also reads the model's accuracy on items without labels (``label_free_estimate``)."""
    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y)
    measured = accuracy_estimate(proba.argmax(axis=1) == y, confidence)
    temperature = fit_temperature(proba, y, typical_temperature) if len(y) else (typical_temperature or 1.0)
    read = mean_confidence(proba, temperature) if len(y) else float("nan")
    interval = wilson_interval(read, measured["n"], confidence) if measured["n"] else [0.0, 1.0]
    return {"accuracy": up_the_curve(read, folds), "interval": [up_the_curve(v, folds) for v in interval],
            "n": measured["n"], "folds": int(folds), "measured": measured["accuracy"],
            "measured_interval": measured["interval"], "calibrated": read, "temperature": temperature}


def tuned_estimate(frozen_proba, y, tuned_val_correct, frozen_val_correct, folds: int,
                   gain_prior: tuple[float, float] | None = None, confidence: float = 0.95,
                   typical_temperature: float | None = None) -> dict:
    """The accuracy of a tuned model, estimated with the frozen features as a control variate: their accuracy
    cross-validated over every label (``cv_estimate`` of their out-of-fold probabilities), plus tuning's gain over
    them. The paired difference on the validation split cancels most of a small split's noise, but 4-20 held-out
    texts still cannot measure a gain of a few points. With ``gain_prior`` (mean, sd: what tuning gained in
    transferkit's benchmarks) the gain is the posterior mean of the two, each weighted by its precision; the split's
    per-item variance is smoothed (one pseudo-disagreement) so that a few items on which both models agree are not
    taken as certainty. Without it, the split's gain alone. The interval adds the variances of the two parts.
    ``typical_temperature`` is the frozen head's (``cv_estimate``)."""
    cv = cv_estimate(frozen_proba, y, folds, confidence, typical_temperature)
    frozen = cv["accuracy"]
    d = np.asarray(tuned_val_correct, float) - np.asarray(frozen_val_correct, float)
    n = max(len(d), 1)
    split_gain = float(d.mean()) if len(d) else 0.0
    if gain_prior is None:
        gain, gain_var = split_gain, (d.var(ddof=1) if len(d) > 1 else 0.25) / n
    else:
        prior_mean, prior_sd = gain_prior
        split_var = (float(np.sum(d * d)) + 1.0) / (n + 1.0) / n
        weight = prior_sd**2 / (prior_sd**2 + split_var)
        gain = weight * split_gain + (1 - weight) * prior_mean
        gain_var = 1.0 / (1.0 / prior_sd**2 + 1.0 / split_var)
    point = float(np.clip(frozen + gain, 0.0, 1.0))
    half = float(normal_quantile(0.5 + confidence / 2) * np.sqrt(frozen * (1 - frozen) / max(cv["n"], 1) + gain_var))
    return {"accuracy": point, "interval": [max(0.0, point - half), min(1.0, point + half)], "n": cv["n"],
            "n_val": int(len(d)), "frozen_cv": cv["measured"], "frozen_estimate": frozen,
            "gain_on_split": split_gain, "gain": float(gain)}


# The fewest unlabeled items whose mean confidence is read as an accuracy (a handful of confidences says little).
LABEL_FREE_MIN_ITEMS = 20
# The fewest held-out items a trained network's temperature is fitted from (``val_temperature``; fewer, all of them
# right, would fit a temperature that calls the network certain).
VAL_TEMPERATURE_MIN_ITEMS = 50


def calibrated_confidences(proba, temperature: float | None) -> np.ndarray | None:
    """Each row's probability of its predicted class at the temperature the fit recorded (``FitReport.temperature``):
    fitted to the folds of a cross-validated head (frozen features, TF-IDF), to the held-out split of a trained
    network with its final weights (from ``VAL_TEMPERATURE_MIN_ITEMS`` items), or to the split of a tuned sentence
    encoder, drawn toward the text head's typical temperature. None when it recorded none: a network validated on
    fewer items, a model saved before transferkit recorded it."""
    return None if temperature is None else confidences(proba, temperature)


def label_free_estimate(item_confidences, at_fit, confidence: float = 0.95) -> dict | None:
    """The accuracy of a model on items without labels: the mean of its ``calibrated_confidences`` on them (the
    average-confidence estimate of Guillory et al. 2021). On the few-shot suite's test sets it is about as close to
    the test accuracy as the fit's estimate, closer from 10 labels per class; on shifted items (blurred, noisy,
    rotated images) it follows the accuracy down, which the fit's estimate cannot (benchmarks/shift.py).

    ``at_fit`` is the fit's estimate (``FitReport.estimate``). Returns the estimate, the number of items, the fit's
    estimate and interval, and ``below_fit``: the estimate
    is under the fit's 95% interval by more than the luck of which items came (``confidence``-level one-sided, from
    the spread of their confidences), a sign that these items are unlike the ones the model learned from; on
    20-image samples of unshifted test sets this warns 0.1% of the time instead of 6%. None without confidences,
    without a fit estimate, or for fewer than ``LABEL_FREE_MIN_ITEMS`` items."""
    if item_confidences is None or at_fit is None or len(item_confidences) < LABEL_FREE_MIN_ITEMS:
        return None
    read = np.asarray(item_confidences, dtype=np.float64)
    accuracy, n = float(read.mean()), int(len(read))
    luck = float(normal_quantile(confidence) * read.std(ddof=1) / np.sqrt(n))
    return {"accuracy": accuracy, "n": n, "at_fit": at_fit.value, "interval_at_fit": list(at_fit.interval),
            "below_fit": accuracy + luck < at_fit.interval[0]}


def label_free_over_batches(batches: list, at_fit) -> dict | None:
    """``label_free_estimate`` over the ``calibrated_confidences`` of batches predicted one after another (bulk
    prediction keeps one float per item, never the probabilities); None entries are a model without a temperature."""
    known = [b for b in batches if b is not None]
    return label_free_estimate(np.concatenate(known), at_fit) if known else None


def label_free_lines(estimate: dict | None, noun: str) -> list[str]:
    """What a user is told of ``label_free_estimate`` over their ``noun``s (image, text)."""
    if estimate is None:
        return []
    lines = [f"Estimated accuracy on these {estimate['n']} {noun}s: {estimate['accuracy']:.3f}, read from the "
             f"model's confidence (no labels needed; the fit estimated {estimate['at_fit']:.3f})."]
    if estimate["below_fit"]:
        low, high = estimate["interval_at_fit"]
        lines.append(f"Warning: that is below the fit's 95% interval ({low:.2f}-{high:.2f}): these {noun}s are "
                     f"probably unlike the ones the model learned from (other sources, quality or classes), or the "
                     f"fit's estimate was too high. Label some of them and measure (a test set, or `transferkit "
                     "evaluate`), or add them to the training data and fit again.")
    return lines


def significantly_better(a_correct, b_correct, alpha: float = 0.05) -> bool:
    """Whether ``a`` is right significantly more often than ``b`` on the same examples: an exact one-sided sign test
    on the examples where they disagree (McNemar's exact test). With a handful of examples it never is."""
    from scipy.stats import binomtest

    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    wins, losses = int((a & ~b).sum()), int((~a & b).sum())
    if wins + losses == 0:
        return False
    return binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue < alpha


def validation_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy and macro-F1 of integer predictions, as the strategies report them on their validation split."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "val_accuracy": float(accuracy_score(y_true, y_pred)),
        "val_macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=list(range(n_classes)), zero_division=0)),
    }


# -- several labels and numbers: metrics -----------------------------------------------------------------------------

def interval(statistic: Callable[[np.ndarray], float], n: int, seed: int = 0) -> list[float]:
    """The 95% percentile-bootstrap interval of ``statistic(rows)`` over ``n`` items resampled with replacement."""
    from scipy.stats import bootstrap

    if n < 3:
        return [float("nan"), float("nan")]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # degenerate resamples (one class, a constant target) give NaN: fine
        result = bootstrap((np.arange(n),), lambda rows: statistic(rows.astype(int)), vectorized=False,
                           n_resamples=RESAMPLES, method="percentile", random_state=seed)
    low, high = result.confidence_interval
    return [float(low), float(high)]


def label_metrics(Y: np.ndarray, P: np.ndarray, predicted: np.ndarray, names, seed: int = 0) -> dict:
    """Several labels: micro / macro F1, mean average precision (labels with a positive), subset accuracy, each with
    its 95% interval, and each label's precision, recall, F1 and support."""
    from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support

    Y, P, predicted = np.asarray(Y), np.asarray(P), np.asarray(predicted).astype(int)
    has = Y.sum(0) > 0

    def micro(rows):
        return f1_score(Y[rows], predicted[rows], average="micro", zero_division=0)

    def macro(rows):
        return f1_score(Y[rows], predicted[rows], average="macro", zero_division=0)

    def mean_ap(rows):
        keep = Y[rows].sum(0) > 0
        return average_precision_score(Y[rows][:, keep], P[rows][:, keep], average="macro") if keep.any() else np.nan

    def subset(rows):
        return float(np.mean((Y[rows] == predicted[rows]).all(1)))

    n = len(Y)
    out: dict = {"n": n}
    for key, statistic in (("micro_f1", micro), ("macro_f1", macro), ("mean_ap", mean_ap),
                           ("subset_accuracy", subset)):
        out[key] = float(statistic(np.arange(n)))
        out[f"{key}_interval"] = interval(statistic, n, seed)
    precision, recall, f1, support = precision_recall_fscore_support(Y, predicted, average=None, zero_division=0)
    out["per_label"] = [{"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s),
                         "predicted": int(predicted[:, j].sum())}
                        for j, (name, p, r, f, s) in enumerate(zip(names, precision, recall, f1, support))]
    out["labels_with_support"] = int(has.sum())
    return out


def number_metrics(y: np.ndarray, predicted: np.ndarray, seed: int = 0) -> dict:
    """Numbers: R², mean absolute error and root mean squared error, each with its 95% interval."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, predicted = np.asarray(y, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    statistics = {"r2": lambda rows: r2_score(y[rows], predicted[rows]),
                  "mae": lambda rows: mean_absolute_error(y[rows], predicted[rows]),
                  "rmse": lambda rows: float(np.sqrt(mean_squared_error(y[rows], predicted[rows])))}
    out: dict = {"n": len(y)}
    for key, statistic in statistics.items():
        out[key] = float(statistic(np.arange(len(y))))
        out[f"{key}_interval"] = interval(statistic, len(y), seed)
    out["target_range"] = [float(y.min()), float(y.max())]
    return out


# -- measuring a saved model on labeled data -------------------------------------------------------------------------

@dataclass
class ShapeEvaluation:
    """A model of several labels or of numbers measured on labeled data: ``metrics`` (``label_metrics`` or
    ``number_metrics``) over the readable items, and what weakens them (``notes``)."""

    kind: str
    metrics: dict
    n_examples: int
    modality: str
    labels: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    points: list = field(default_factory=list)  # numbers: [true, predicted] of each item (the report's plot)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_shape(model, labeled, data) -> ShapeEvaluation:
    """``evaluate`` for a model of several labels or of numbers (a loaded predictor)."""
    from .targets import resolve

    target = model.target or {}
    resolved = resolve(labeled, model.kind, target.get("separator"), training=False)
    items = list(resolved.data.items)
    notes = data_notes(model, resolved.data)
    names = model.classes.tolist()
    if model.kind == "labels":
        unknown = sorted({repr(n) for n in resolved.names} - {repr(n) for n in names})
        if unknown:
            raise BadInputError(f"{data} has labels the model was not trained on: {', '.join(unknown[:5])}. The "
                                f"model knows: {', '.join(map(str, names))}. Remove them, or refit with them.")
    outputs, ok, skipped = model.predict_items(items)
    if not ok.any():
        raise BadInputError(f"None of the {len(items)} {model.noun}s in {data} could be read.")
    skipped = [(str(p), why) for p, why in skipped]
    if model.kind == "labels":
        Y = replace(resolved, names=tuple(names)).indicator()[ok]  # columns in the model's order
        metrics = label_metrics(Y, outputs, outputs >= model.thresholds, names)
        return ShapeEvaluation("labels", metrics, int(ok.sum()), model.modality, names, skipped, notes)
    truth = resolved.values()[ok]
    metrics = number_metrics(truth, outputs[:, 0])
    return ShapeEvaluation("number", metrics, int(ok.sum()), model.modality, [], skipped, notes,
                           [[float(t), float(p)] for t, p in zip(truth, outputs[:, 0])])
