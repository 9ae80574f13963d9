"""The strategies: how a classifier is made from a featurizer and labeled items, written once for images and texts.

- :class:`Features`: the pretrained featurizer frozen, a linear head on its (cached) features.
- :class:`FineTune`: the featurizer's own weights adapted by the tuner of its kind (image networks: Lightning,
  layer-wise; sentence encoders: contrastive pairs), then the head.
- :class:`Scratch`: the modality's no-transfer featurizer (images: the same network from random initialisation,
  trained; texts: TF-IDF learned from the training texts): the honest baseline.
- :class:`Auto`: measures, chooses among them, and says why.

Each strategy is a scikit-learn parameter object (``get_params``, ``set_params``, ``clone``): its own settings live
with it, and a tuner is a nested parameter, so ``ImageClassifier(strategy=FineTune(tuner=NetworkTuner()))`` shows
``strategy__tuner__unfreeze`` and grid search reaches it. ``fit(problem)`` returns a :class:`Fitted` with one line saying
what was done. Importing this module imports no torch.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from .data.labeled import Labeled, check_trainable, stratified_split, validation_fraction
from .errors import BadInputError
from .evaluate import accuracy_estimate, cv_estimate, significantly_better, tuned_estimate
from .finetune.tuners import SCRATCH, ContrastiveTuner, NetworkTuner, Tuner, tuner_for
from .fitreport import FitReport

if TYPE_CHECKING:
    from .featurizers import Featurizer
    from .heads import LinearHead

STRATEGIES = ("auto", "features", "finetune", "scratch")


@dataclass(frozen=True)
class FitRun:
    """How one fit runs (not what the model is): seeds, batches, precision, the cache, checkpoints, progress."""

    seed: int = 0
    val_fraction: float | None = None  # None: the adaptive rule of ``validation_fraction``
    batch_size: int = 32
    precision: str = "auto"
    cache_dir: str | None = None
    progress: bool = True
    workdir: str | None = None  # image networks: where training checkpoints live
    resume: bool = False


@dataclass
class Problem:
    """What a strategy learns from: the pretrained featurizer to start from and the labeled items."""

    featurizer: Featurizer
    data: Labeled
    classes: list[str]
    run: FitRun
    unlabeled: tuple = ()  # items without labels (none of them a copy of a labeled one): ``unlabeled.learn_from_pool``

    @property
    def noun(self) -> str:
        return self.featurizer.modality  # "image" or "text": what the messages call one item


@dataclass
class Fitted:
    featurizer: Featurizer
    head: LinearHead
    metrics: dict
    reason: str
    skipped: list = field(default_factory=list)
    # the labeled items' features through ``featurizer`` and their class indices, where the strategy has them (what
    # the open-set calibration reads; None: it extracts them again)
    features: Any = None
    y: np.ndarray | None = None
    # the unlabeled items' ``Extraction`` through ``featurizer``, where the strategy read them (what a student
    # learns from, and the open-set calibration mines)
    pool: Any = None

    @property
    def report(self) -> FitReport:
        return FitReport(metrics=self.metrics, reason=self.reason)


class Strategy(BaseEstimator):
    name: ClassVar[str]

    def fit(self, problem: Problem) -> Fitted:
        raise NotImplementedError


# -- the probe: frozen features and the head's cross-validated accuracy, shared by every strategy ------------------

@dataclass
class Probe:
    """A frozen featurizer's features of every readable item, the head on all of them, and its out-of-fold
    (cross-validated) predictions: the estimate a fit reports."""

    featurizer: Featurizer
    data: Labeled  # the readable items
    y: np.ndarray
    features: Any  # a dense array, or a sparse matrix (TF-IDF)
    head: LinearHead
    oof: np.ndarray  # out-of-fold probabilities, one row per readable item
    folds: int
    skipped: list
    info: dict
    _cache: dict = field(default_factory=dict, repr=False, compare=False)  # the split and its verdicts, made once

    @property
    def correct(self) -> np.ndarray:
        return self.oof.argmax(1) == self.y

    @property
    def cv_accuracy(self) -> float:
        return float(self.correct.mean())

    @cached_property
    def estimate(self) -> dict:
        """The accuracy of the head on every label, from the folds (``evaluate.cv_estimate``; computed once: it fits
        a temperature, drawn toward the one the head typically needs)."""
        return cv_estimate(self.oof, self.y, self.folds, typical_temperature=self.head.typical_temperature)

    def metrics(self, prefix: str = "") -> dict:
        """What the folds measured (``cv_accuracy``: counted; ``cv_calibrated``: read from their probabilities), the
        estimate drawn from it for the head on every label (``cv_estimate``) and the temperature fitted to the folds
        (``cv_temperature``: it reads the head's accuracy on unlabeled items, ``evaluate.label_free_estimate``)."""
        estimate = self.estimate
        return {f"{prefix}cv_accuracy": estimate["measured"], f"{prefix}cv_interval": estimate["measured_interval"],
                f"{prefix}cv_n": estimate["n"], f"{prefix}cv_folds": self.folds,
                f"{prefix}cv_calibrated": estimate["calibrated"],
                f"{prefix}cv_estimate": estimate["accuracy"], f"{prefix}cv_estimate_interval": estimate["interval"],
                f"{prefix}cv_temperature": estimate["temperature"]}

    def split(self, run: FitRun) -> tuple[np.ndarray, np.ndarray]:
        """The validation split a tuner uses on these items (stratified, ``validation_fraction`` of each class, the
        run's seed); computed once, however many of a fit's steps ask."""
        key = ("split", run.val_fraction, run.seed)
        if key not in self._cache:
            labels = self.data.labels
            self._cache[key] = stratified_split(labels, validation_fraction(labels, run.val_fraction), run.seed)
        return self._cache[key]

    def split_correct(self, features: Features, run: FitRun) -> np.ndarray:
        """Which items of that split the frozen representation's head (``features``' settings), fit on the rest,
        gets right: what tuning is compared with. Computed once per head settings."""
        key = ("correct", repr(features), run.val_fraction, run.seed)
        if key not in self._cache:
            train_idx, val_idx = self.split(run)
            head = features.fit_head(self.features[train_idx], self.y[train_idx], run.seed, self.featurizer.blocks)
            self._cache[key] = head.predict_proba(self.features[val_idx]).argmax(1) == self.y[val_idx]
        return self._cache[key]

    def summary(self) -> str:
        """The estimate as a fit's reason states it."""
        e = self.estimate
        low, high = e["interval"]
        return (f"estimated accuracy {e['accuracy']:.3f} (95% interval {low:.2f}-{high:.2f}, n={e['n']}): "
                f"{e['folds']}-fold cross-validated {e['measured']:.3f} ({e['calibrated']:.3f} read from its "
                f"temperature-scaled probabilities), each fold trained on {e['folds'] - 1}/{e['folds']} of the labels")


def run_probe(featurizer, data: Labeled, classes: list[str], run: FitRun, head_settings: Features) -> Probe:
    """Extract (cached) features, drop unreadable items, fit the head on all of them and cross-validate it."""
    from .features import extract
    from .heads import cross_val_proba

    noun = featurizer.modality
    if featurizer.learns_from_data:
        return _probe_learning_featurizer(featurizer, data, classes, run, head_settings)
    extraction = extract(featurizer, data.items, batch_size=run.batch_size, cache_dir=run.cache_dir,
                         progress=run.progress, description=f"Features of {featurizer.name}", onnx=True)
    readable = data.subset(np.flatnonzero(extraction.ok))
    _check_after_skipping(readable, classes, extraction.skipped, noun)
    y = readable.targets(classes)
    x = extraction.features
    blocks = featurizer.blocks
    oof, folds = cross_val_proba(lambda a, b: head_settings.fit_head(a, b, run.seed, blocks), x, y, seed=run.seed)
    head = head_settings.fit_head(x, y, run.seed, blocks)
    info = {"features_per_second": extraction.per_second, "n_features_computed": extraction.n_computed,
            "n_features_cached": extraction.n_cached, "n_overlong": extraction.n_overlong,
            "precision": getattr(featurizer, "resolved_precision", None)}
    return Probe(featurizer, readable, y, x, head, oof, folds, extraction.skipped, info)


def _probe_learning_featurizer(featurizer, data, classes, run, head_settings) -> Probe:
    """A featurizer that learns from the training items (TF-IDF) is refit inside every fold, so the estimate never
    sees the held-out texts' words."""
    from .heads import cross_val_proba

    y = data.targets(classes)
    items = np.array(data.items, dtype=object)

    class Fold:  # fit(features=item indices) -> a head-like object predicting from item indices
        def __init__(self, idx, target):
            self.featurizer = copy.deepcopy(featurizer).fit(list(items[idx]))
            self.head = head_settings.fit_head(self.featurizer.transform(list(items[idx])), target, run.seed)

        def predict_proba(self, idx):
            return self.head.predict_proba(self.featurizer.transform(list(items[idx])))

    index = np.arange(len(y))
    oof, folds = cross_val_proba(lambda idx, target: Fold(idx, target), index, y, seed=run.seed)
    final = copy.deepcopy(featurizer).fit(list(items))
    x = final.transform(list(items))
    head = head_settings.fit_head(x, y, run.seed)
    return Probe(final, data, y, x, head, oof, folds, [], {"vocabulary": final.dim})


def _use_pool(featurizer, head, x, y: np.ndarray, folds: int, problem: Problem):
    """(head, what the fit records, one sentence, the unlabeled items' extraction) after the head on
    ``featurizer``'s features ``x`` learns from the unlabeled items (``unlabeled.learn_from_pool``). Dense features
    only: TF-IDF (scratch) says it does not use them."""
    from .features import extract
    from .unlabeled import learn_from_pool

    run = problem.run
    start = time.perf_counter()
    pool = extract(featurizer, list(problem.unlabeled), batch_size=run.batch_size, cache_dir=run.cache_dir,
                   use_cache=not featurizer.tuned, progress=run.progress,
                   description=f"Features of the unlabeled {problem.noun}s", onnx=True)
    read = time.perf_counter()
    skipped = len(problem.unlabeled) - int(pool.ok.sum())
    if not pool.ok.any():
        return head, {"n": 0, "skipped": skipped, "used": False}, (
            f"none of the {len(problem.unlabeled)} unlabeled {problem.noun}s could be read"), pool
    # the pool's own clusters under a shift: measured to help frozen image features, to cost a tuned text encoder
    use = learn_from_pool(head, x, y, pool.features, seed=run.seed, folds=folds, vote=True,
                          clusters=featurizer.modality == "image" and not featurizer.tuned)
    seconds = {"features_seconds": round(read - start, 1), "learn_seconds": round(time.perf_counter() - read, 1)}
    return use.head, {**use.info, "skipped": skipped, "used": True, **seconds}, use.sentence, pool


def _check_after_skipping(data: Labeled, classes: list[str], skipped: list, noun: str) -> None:
    present = set(data.labels or ())
    empty = [c for c in classes if c not in present]
    if empty:
        example = f" (e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise BadInputError(f"Class {', '.join(repr(c) for c in empty)} has no readable {noun}s left after skipping "
                            f"{len(skipped)} unreadable file(s){example}. Fix or replace those files.")
    check_trainable(data, f"{data.origin} (after skipping unreadable {noun}s)", noun=noun)


def _estimate_text(correct: np.ndarray, how: str) -> str:
    e = accuracy_estimate(correct)
    return f"{how} accuracy {e['accuracy']:.3f} (95% interval {e['interval'][0]:.2f}-{e['interval'][1]:.2f}, n={e['n']})"


# -- the strategies -------------------------------------------------------------------------------------------------

class Features(Strategy):
    """The pretrained featurizer frozen; a logistic-regression head on its features (``heads``).

    ``norm``: how each feature row is normalised before the head (``"l2"``: centred, unit length; ``"standard"``:
    per-feature standardisation; ``"none"``). ``power``: the power transform first (``"auto"``: the square root of
    non-negative features, such as an image network's; ``1``: none). ``C``: the head's inverse regularisation
    strength (``None``: ``heads.default_C``, which depends on the power transform). The members of a side-by-side
    representation get one head each, their logits averaged.
    """

    name = "features"

    def __init__(self, norm: str = "l2", C: float | None = None, power: float | str = "auto") -> None:
        self.norm = norm
        self.C = C
        self.power = power

    def check(self) -> None:
        from .heads import NORMS

        if self.norm not in NORMS:
            raise BadInputError(f"Features.norm must be one of {', '.join(NORMS)}, got {self.norm!r}.")
        if self.C is not None and (not isinstance(self.C, (int, float)) or isinstance(self.C, bool) or not self.C > 0):
            raise BadInputError(f"Features.C must be a positive number (or None for the default), got {self.C!r}.")
        if self.power != "auto" and (not isinstance(self.power, (int, float)) or isinstance(self.power, bool)
                                     or not 0 < self.power <= 1):
            raise BadInputError(f"Features.power must be \"auto\" or a number in (0, 1], got {self.power!r}.")

    def fit_head(self, x, y, seed: int = 0, blocks: tuple[int, ...] = (), unit_rows: bool = False):
        from .heads import fit_head

        return fit_head(x, y, norm=self.norm, C=self.C, power=self.power, blocks=blocks, unit_rows=unit_rows,
                        seed=seed)

    def linear(self) -> Features:
        """The same settings without the power transform: the head a network's own linear classifier can start
        from (fine-tuning)."""
        return Features(norm=self.norm, C=self.C, power=1.0)

    def fit(self, problem: Problem) -> Fitted:
        self.check()
        probe = run_probe(problem.featurizer, problem.data, problem.classes, problem.run, self)
        return self.fitted_from(probe, problem)

    def fitted_from(self, probe: Probe, problem: Problem) -> Fitted:
        metrics = {**probe.metrics(), "n_train": len(probe.y), **probe.info, "head": self.get_params()}
        reason = f"features: {probe.featurizer.describe()} + logistic regression; {probe.summary()}"
        head, pool = probe.head, None
        if problem.unlabeled:
            head, pool_metrics, sentence, pool = _use_pool(probe.featurizer, head, probe.features, probe.y,
                                                           probe.folds, problem)
            metrics["unlabeled"] = pool_metrics
            reason = f"{reason}; {sentence}"
        return Fitted(probe.featurizer, head, metrics, reason, probe.skipped, probe.features, probe.y, pool)


class FineTune(Strategy):
    """Adapt the featurizer's own weights with the tuner of its kind, validated on a held-out split.

    ``tuner``: a :class:`~transferkit.finetune.tuners.NetworkTuner` (image networks) or
    :class:`~transferkit.finetune.tuners.ContrastiveTuner` (sentence encoders) with its options; ``None``: the
    featurizer kind's tuner with its defaults (``auto`` then picks how many stages to unfreeze). A tuner of another
    kind is an error that names the right one. ``features``: the head settings (a :class:`Features`) for the probe
    that starts and judges the tuning.
    """

    name = "finetune"

    def __init__(self, tuner: Tuner | None = None, features: Features | None = None) -> None:
        self.tuner = tuner
        self.features = features

    def tuner_for(self, featurizer, **defaults) -> NetworkTuner | ContrastiveTuner:
        """The checked tuner for ``featurizer``: the one given, or its kind's with ``defaults`` (auto's choices)."""
        return tuner_for(featurizer.kind, self.tuner, defaults=defaults)

    def fit(self, problem: Problem, probe: Probe | None = None, **tuner_defaults) -> Fitted:
        features = self.features or Features()
        features.check()
        tuner = self.tuner_for(problem.featurizer, **tuner_defaults)  # checked before any work is done
        probe = probe or run_probe(problem.featurizer, problem.data, problem.classes, problem.run, features)
        run = problem.run
        train_idx, val_idx = probe.split(run)
        # the estimate's control: the head whose folds the estimate starts from (probe.oof), on the same split, so
        # that tuning's gain is measured against it, not against a weaker head
        probe_val = probe.split_correct(features, run)
        if isinstance(tuner, NetworkTuner):
            from .finetune.network import tune_network

            # the network's linear classifier starts from the split's head without the power transform
            start = features.linear().fit_head(probe.features[train_idx], probe.y[train_idx], run.seed)
            tuned, head, info = tune_network(probe.featurizer, start, list(probe.data.items), probe.y, train_idx,
                                             val_idx, tuner, run=run)
            correct, temperature = _validated(tuned, head, [probe.data.items[i] for i in val_idx], probe.y[val_idx],
                                              run)
            info = {**info, **temperature}
            stages = "all" if tuner.unfreeze == "all" else f"top {info.get('trainable_stages')} of"
            what = (f"{stages} {info.get('stages')} stages retrained from a probe-initialised head (layer decay "
                    f"{tuner.layer_decay}), {info.get('epochs_run')} epochs")
        else:
            tuned, head, info, correct, x = _tune_encoder(probe, features, tuner, train_idx, val_idx, run)
            what = (f"validated with {info['pairs']} contrastive pairs from {len(train_idx)} texts"
                    + (f", then tuned on {info['refit_pairs']} pairs from all {len(probe.y)}" if "refit_pairs" in info
                       else ""))
        gain_prior = measured_gain(problem.featurizer.kind, tuner)
        estimate = tuned_estimate(probe.oof, probe.y, correct, probe_val, probe.folds, gain_prior,
                                  typical_temperature=probe.head.typical_temperature)
        metrics = {**info, "accuracy_estimate": estimate["accuracy"], "estimate_interval": estimate["interval"],
                   "val_accuracy": float(correct.mean()), "val_interval": accuracy_estimate(correct)["interval"],
                   "n_val": int(len(val_idx)), "n_train": int(len(train_idx)), "val_correct": correct.tolist(),
                   "probe_val_accuracy": float(probe_val.mean()), **probe.metrics("probe_"),
                   "tuner": tuner.to_dict()}
        low, high = estimate["interval"]
        reason = (f"finetune: {problem.featurizer.name}, {what}; estimated accuracy {estimate['accuracy']:.3f} (95% "
                  f"interval {low:.2f}-{high:.2f}): the frozen features' {estimate['frozen_estimate']:.3f} "
                  f"cross-validated over all {estimate['n']} labels ({estimate['frozen_cv']:.3f} as {probe.folds} "
                  f"folds measured it), {estimate['gain']:+.3f} from tuning ({estimate['gain_on_split']:+.3f} on the "
                  f"{estimate['n_val']} held out, {correct.mean():.3f} against {probe_val.mean():.3f}"
                  + (f"; {gain_prior[0]:+.3f} in transferkit's benchmarks" if gain_prior else "") + ")")
        if problem.unlabeled and not isinstance(tuner, NetworkTuner):  # the tuned encoder's head, on its embeddings
            head, metrics["unlabeled"], sentence, pool = _use_pool(tuned, head, x, probe.y, probe.folds, problem)
            return Fitted(tuned, head, metrics, f"{reason}; {sentence}", probe.skipped, pool=pool)
        return _pool_unused(Fitted(tuned, head, metrics, reason, probe.skipped), problem, "a tuned image network")


def _pool_unused(fitted: Fitted, problem: Problem, what: str) -> Fitted:
    """Say so when unlabeled items were given to a fit that does not learn from them."""
    if problem.unlabeled:
        fitted.metrics["unlabeled"] = {"n": len(problem.unlabeled), "used": False}
        fitted.reason += (f"; the {len(problem.unlabeled)} unlabeled {problem.noun}s are not used by {what} (only a "
                          "head on frozen features learns from them)")
    return fitted


def _validated(featurizer, head, items: list, y: np.ndarray, run: FitRun) -> tuple[np.ndarray, dict]:
    """Which validation items a trained network (its final weights: the model that is kept) gets right, and the
    temperature its probabilities on them fit (``val_temperature``: what the model's accuracy on unlabeled items is
    read with, ``evaluate.label_free_estimate``) when there are at least ``VAL_TEMPERATURE_MIN_ITEMS`` of them."""
    from .evaluate import VAL_TEMPERATURE_MIN_ITEMS, fit_temperature
    from .features import extract

    extraction = extract(featurizer, items, batch_size=run.batch_size, use_cache=False)
    proba, truth = head.predict_proba(extraction.features), y[extraction.ok]
    fitted = {"val_temperature": fit_temperature(proba, truth)} if len(truth) >= VAL_TEMPERATURE_MIN_ITEMS else {}
    return proba.argmax(1) == truth, fitted


def _tune_encoder(probe: Probe, features: Features, tuner: ContrastiveTuner, train_idx, val_idx, run: FitRun):
    """Contrastive tuning of a copy on the training split (validation), then of the final encoder on every label.
    The split's held-out texts give the temperature its confidence is read with (``val_temperature``)."""
    from .evaluate import fit_temperature
    from .features import extract
    from .finetune.contrastive import train_contrastive

    texts = list(probe.data.items)
    base = probe.featurizer
    encoder = tuned_copy(base)
    info = train_contrastive(encoder, [texts[i] for i in train_idx], probe.y[train_idx], tuner, seed=run.seed,
                             precision=run.precision, progress=run.progress)
    x = extract(encoder, texts, batch_size=run.batch_size, use_cache=False, progress=run.progress,
                description="Embedding with the tuned encoder").features
    head = features.fit_head(x[train_idx], probe.y[train_idx], run.seed)
    proba = head.predict_proba(x[val_idx])
    correct = proba.argmax(1) == probe.y[val_idx]
    if head.typical_temperature is not None:  # a handful of texts: drawn toward the head's typical temperature
        info["val_temperature"] = fit_temperature(proba, probe.y[val_idx], head.typical_temperature)
    if tuner.refit or needs_every_label(probe.y[train_idx], probe.y):
        # validated on the split; the final encoder learns from every label, as the heads do
        encoder = tuned_copy(base)
        refit = train_contrastive(encoder, texts, probe.y, tuner, seed=run.seed, precision=run.precision,
                                  progress=run.progress)
        info = {**info, "refit_pairs": refit["pairs"], "train_seconds": info["train_seconds"] + refit["train_seconds"]}
        x = extract(encoder, texts, batch_size=run.batch_size, use_cache=False, progress=run.progress,
                    description="Embedding with the final encoder").features
    head = features.fit_head(x, probe.y, run.seed)
    return encoder, head, info, correct, x


def needs_every_label(split: np.ndarray, every: np.ndarray) -> bool:
    """Whether the split a tuner validates on left a class with fewer than two texts (with two labels per class:
    one): such a class has no same-class pair to learn from, so the final encoder is tuned again on every label."""
    return bool(np.bincount(split, minlength=int(every.max()) + 1).min() < 2)


def tuned_copy(featurizer):
    """A copy of ``featurizer`` to tune: marked tuned, its digest (the feature cache's key) to be computed anew."""
    tuned = copy.deepcopy(featurizer)
    tuned.tuned, tuned._digest = True, None
    return tuned


class Scratch(Strategy):
    """No transfer: images train the same architecture from random initialisation with ``tuner`` (a
    :class:`~transferkit.finetune.tuners.NetworkTuner`, used as given; ``None``: ``NetworkTuner(**SCRATCH)``, every
    layer at one higher rate for longer); texts learn TF-IDF from the training texts alone (no tuner)."""

    name = "scratch"

    def __init__(self, tuner: NetworkTuner | None = None, features: Features | None = None) -> None:
        self.tuner = tuner
        self.features = features

    def fit(self, problem: Problem) -> Fitted:
        features = self.features or Features()
        fresh = problem.featurizer.scratch(problem.run.seed)
        if fresh.learns_from_data:
            if self.tuner is not None:
                raise BadInputError("Scratch(tuner=...) does not apply to texts: scratch learns TF-IDF, there is no "
                                    "network to train.")
            probe = run_probe(fresh, problem.data, problem.classes, problem.run, features)
            metrics = {**probe.metrics(), "n_train": len(probe.y), **probe.info}
            reason = (f"scratch: {probe.featurizer.describe()} + logistic regression, no pretrained knowledge; "
                      f"{probe.summary()}")
            return _pool_unused(Fitted(probe.featurizer, probe.head, metrics, reason), problem, "TF-IDF")
        from .finetune.network import tune_network

        tuner = tuner_for(fresh.kind, self.tuner, what="scratch", defaults=SCRATCH)
        assert isinstance(tuner, NetworkTuner)  # a network's kind has no other tuner (tuner_for checked the kind)
        if tuner.unfreeze != "all":
            raise BadInputError(f"scratch trains every layer from random initialisation: its tuner's unfreeze must be "
                                f"'all', got {tuner.unfreeze!r}.")
        data, skipped = _readable(fresh, problem)
        y = data.targets(problem.classes)
        run = problem.run
        train_idx, val_idx = stratified_split(data.labels, validation_fraction(data.labels, run.val_fraction), run.seed)
        tuned, head, info = tune_network(fresh, None, list(data.items), y, train_idx, val_idx, tuner, run=run,
                                         from_scratch=True)
        correct, temperature = _validated(tuned, head, [data.items[i] for i in val_idx], y[val_idx], run)
        metrics = {**info, **temperature, "val_accuracy": float(correct.mean()),
                   "val_interval": accuracy_estimate(correct)["interval"],
                   "n_val": int(len(val_idx)), "n_train": int(len(train_idx)), "tuner": tuner.to_dict()}
        reason = (f"scratch: {fresh.name} from random initialisation, {info.get('epochs_run')} epochs; "
                  + _estimate_text(correct, f"validation ({len(val_idx)} held out)"))
        return _pool_unused(Fitted(tuned, head, metrics, reason, skipped), problem, "a network trained from scratch")


def _readable(featurizer, problem: Problem) -> tuple[Labeled, list]:
    """The items a featurizer can read (decoding each once), and why the others were dropped."""
    from .featurizers import ItemError
    from .progress import progress_bar

    keep, skipped = [], []
    with progress_bar(f"Checking {problem.noun}s", total=len(problem.data), enabled=problem.run.progress) as advance:
        for i, item in enumerate(problem.data.items):
            try:
                featurizer.decode(item)
                keep.append(i)
            except ItemError as exc:
                skipped.append((item, exc.reason))
            advance(1)
    data = problem.data.subset(keep)
    _check_after_skipping(data, problem.classes, skipped, problem.noun)
    return data, skipped


# -- auto ---------------------------------------------------------------------------------------------------------

# frozen features whose cross-validated accuracy is at least this, at the low end of its 95% interval, leave little
# for tuning to win. The low end, not the point: 39 of 40 right (0.975) is as consistent with 0.87 as with 1.0, and
# on the suite's held-out seeds tuning still added 3 points on spam at 20 labels per class where the folds read 0.975.
AUTO_SEPARATED = 0.95
AUTO_SCRATCH_FROM = 50  # labels per class from which a no-transfer featurizer that needs no training is measured too


@dataclass(frozen=True)
class TuningPrior:
    """What transferkit's benchmarks measured for a tuner kind (README): the labels per class (smallest class) where
    tuning paid off, and whether it paid off reliably there. Reliable: the tuned model is kept unless validation
    shows the frozen features significantly better (a split of a few examples cannot show that, and should not undo
    what many measurements showed). Not reliable: the tuned model must beat the frozen features on validation.
    ``gain``, ``gain_sd``: the mean and standard deviation of tuning's gain in accuracy over the frozen features
    there, the prior of a tuned model's printed estimate (``evaluate.tuned_estimate``); None where not measured."""

    low: int
    high: int | None
    reliable: bool
    gain: float | None = None
    gain_sd: float | None = None


TUNING_PAYS = {
    "image-backbone": TuningPrior(50, None, reliable=False),  # above features at Fashion k=100, not on clip art
    # above frozen MiniLM on every text task, k = 2-20; +3.8 points (sd 3.5) over 12 fits of questions and spam at
    # k = 5 and 10, seeds 5-7, which the suite does not use (benchmarks/text_tuning.py, results/text-tuning.json)
    "sentence-encoder": TuningPrior(2, 64, reliable=True, gain=0.038, gain_sd=0.035),
}


def measured_gain(kind: str, tuner) -> tuple[float, float] | None:
    """(mean, sd) of what tuning gained over the frozen features in transferkit's benchmarks, where they measured it
    and ``tuner`` trains as the measured one did (its defaults; whether it refits on every label aside)."""
    prior = TUNING_PAYS.get(kind)
    if prior is None or prior.gain is None or prior.gain_sd is None:
        return None
    recipe = {k: v for k, v in asdict(type(tuner)()).items() if k != "refit"}
    if any(getattr(tuner, k) != v for k, v in recipe.items()):
        return None
    return prior.gain, prior.gain_sd


NETWORK_TRAIN_SLOWER_THAN_EXTRACTION = 5.0  # fine-tuning an image, against extracting its features, on a CPU
NETWORK_IMAGES_PER_SECOND = 25.0  # EfficientNet-Lite0 fine-tuning on 2 CPU cores, when nothing was measured
CONTRASTIVE_TEXTS_PER_SECOND = 50.0  # MiniLM, 128 tokens, one CPU thread: texts embedded and back-propagated


class Auto(Strategy):
    """Measure, choose and say why.

    1. The frozen features, cross-validated over every label; with ``ensemble`` also the zoo's other offline
       backbones side by side (``Concat``), kept unless one backbone alone cross-validates significantly better.
    2. Tuning where the labels per class are in the range where it paid off in the benchmarks, the frozen features do
       not already separate the classes, and it fits the time budget; the tuned model is kept only if it beats the
       frozen features on the same validation split (a tie keeps the simpler model).
    3. Text also measures TF-IDF from 50 labels per class.

    4. With unlabeled items and the backbones side by side kept, the default backbone alone learns the side-by-side
       head's labels of them (``distill``): kept unless held-out labels show it significantly worse, it predicts at
       one backbone's cost.

    ``time_budget``: seconds the extra extraction and tuning may take (estimated from this machine's measured speed);
    ``distill``: step 4 (False keeps the side-by-side teacher, at several backbones' cost per prediction);
    ``finetune``, ``features``: the settings used when those are chosen.
    """

    name = "auto"

    def __init__(self, time_budget: float | None = None, ensemble: bool = True, distill: bool = True,
                 finetune: FineTune | None = None, features: Features | None = None) -> None:
        self.time_budget = time_budget
        self.ensemble = ensemble
        self.distill = distill
        self.finetune = finetune
        self.features = features

    def fit(self, problem: Problem) -> Fitted:
        features = self.features or Features()
        features.check()
        finetune = self.finetune or FineTune(features=features)
        if self.time_budget is not None and not (isinstance(self.time_budget, (int, float)) and self.time_budget >= 0):
            raise BadInputError(f"time_budget must be a number of seconds (0 or more), got {self.time_budget!r}.")
        if self.finetune is not None and problem.featurizer.tunable:
            finetune.tuner_for(problem.featurizer)  # options that cannot apply are refused before any work
        probe = run_probe(problem.featurizer, problem.data, problem.classes, problem.run, features)
        frozen, frozen_why = self._frozen(problem, probe, features)
        fitted, choice, why = self._decide(problem, probe, frozen, features, finetune)
        why = f"{frozen_why}; {why}" if frozen_why else why
        if choice == "features" and frozen is not probe and self.distill:
            fitted = _distilled(problem, probe, frozen, fitted, features)
        fitted.metrics["auto_choice"] = choice
        fitted.metrics["auto_reason"] = why
        fitted.reason = f"auto chose {choice}: {why}. {fitted.reason}"
        return fitted

    def _frozen(self, problem: Problem, probe: Probe, features: Features) -> tuple[Probe, str]:
        """The best frozen representation: the featurizer alone, or side by side with its zoo companions."""
        if not self.ensemble:
            return probe, ""
        companions = problem.featurizer.companions()
        if not companions:
            return probe, ""
        from .featurizers import Concat

        measured = probe.info.get("features_per_second")
        if self.time_budget is not None and measured:
            estimate = len(probe.y) * len(companions) * ENSEMBLE_COST_PER_MEMBER / measured
            if estimate > self.time_budget:
                return probe, (f"the zoo's other backbones would take about {estimate:.0f} s to add, over the "
                               f"{self.time_budget:.0f} s budget")
        ensemble = Concat([problem.featurizer, *companions])
        both = run_probe(ensemble, problem.data, problem.classes, problem.run, features)
        single, combined = probe.cv_accuracy, both.cv_accuracy
        if significantly_better(probe.correct, both.correct):
            return probe, (f"{problem.featurizer.name} alone cross-validates at {single:.3f}, significantly above the "
                           f"zoo's backbones side by side ({combined:.3f})")
        return both, (f"{len(companions) + 1} zoo backbones side by side cross-validate at {combined:.3f}, "
                      f"{problem.featurizer.name} alone at {single:.3f} (side by side is kept unless the single "
                      "backbone is significantly better: it measured 0-7 points better on every benchmark task)")

    def _decide(self, problem: Problem, probe: Probe, frozen: Probe, features: Features, finetune: FineTune):
        per_class = int(np.bincount(frozen.y).min())
        cv = frozen.cv_accuracy
        kind = problem.featurizer.kind
        kept = features.fitted_from(frozen, problem)
        if per_class >= AUTO_SCRATCH_FROM and problem.featurizer.cheap_scratch:
            # a no-transfer featurizer that needs no training (TF-IDF) is cheap to measure, and with many labels the
            # words themselves can win (SpamAssassin from 16 labels per class, README)
            scratch = Scratch(features=features).fit(problem)
            scratch_cv = scratch.report.measure("cv_accuracy")
            if scratch_cv is not None and scratch_cv.value > cv:
                return scratch, "scratch", (f"with {per_class} labels per class TF-IDF reached "
                                            f"{scratch_cv.value:.3f} cross-validated, above the frozen "
                                            f"features' {cv:.3f}: the words themselves suffice")
        low = kept.report.measure("cv_accuracy").interval[0]  # the folds' 95% interval, as the kept fit reports it
        if low >= AUTO_SEPARATED:
            return kept, "features", (f"the frozen features already separate the classes ({cv:.3f} cross-validated "
                                      f"over {len(frozen.y)} labels, 95% interval from {low:.2f})")
        prior = TUNING_PAYS.get(kind)
        if prior is None:
            return kept, "features", f"a {kind} featurizer cannot be tuned"
        low, high = prior.low, prior.high
        if per_class < low or (high is not None and per_class > high):
            where = f"from {low}" if high is None else f"between {low} and {high}"
            return kept, "features", (f"the smallest class has {per_class} labels; tuning paid off {where} per class "
                                      "in transferkit's benchmarks")
        estimate = self._estimate_seconds(kind, probe, finetune)
        if self.time_budget is not None and estimate > self.time_budget:
            return kept, "features", (f"tuning would take about {estimate:.0f} s, over the {self.time_budget:.0f} s "
                                      "budget")
        unfreeze = None
        if kind == "image-backbone" and finetune.tuner is None:  # a tuner given is used as it is
            unfreeze = 4 if per_class < 200 else "all"
        start = time.perf_counter()
        tuned = finetune.fit(problem, probe=probe, **({"unfreeze": unfreeze} if unfreeze is not None else {}))
        tuned_correct = np.asarray(tuned.report.val_correct, bool)
        frozen_correct = frozen.split_correct(features, problem.run)
        tuned_val, frozen_val = tuned_correct.mean(), frozen_correct.mean()
        why = (f"{per_class} labels per class and frozen features at {cv:.3f} cross-validated leave room to tune "
               f"({time.perf_counter() - start:.0f} s)")
        if prior.reliable:
            if significantly_better(frozen_correct, tuned_correct):
                return kept, "features", (why + f"; but on validation the frozen features ({frozen_val:.3f}) were "
                                          f"significantly better than the tuned model ({tuned_val:.3f}), so they are "
                                          "kept")
            return tuned, "finetune", (why + f"; on validation {tuned_val:.3f} against {frozen_val:.3f} for the frozen "
                                       f"features (n={len(tuned_correct)}; kept unless significantly worse: tuning "
                                       "paid off at these sizes in every benchmark)")
        if tuned_val <= frozen_val:
            return kept, "features", (why + f"; but the tuned model reached {tuned_val:.3f} on validation, not above "
                                      f"the frozen features' {frozen_val:.3f} on the same split, so those are kept")
        return tuned, "finetune", why + f"; on validation {tuned_val:.3f} against {frozen_val:.3f} for the frozen features"

    @staticmethod
    def _estimate_seconds(kind: str, probe: Probe, finetune: FineTune) -> float:
        tuner = finetune.tuner_for(probe.featurizer)
        n = len(probe.y)
        if isinstance(tuner, NetworkTuner):
            measured = probe.info.get("features_per_second")
            speed = measured / NETWORK_TRAIN_SLOWER_THAN_EXTRACTION if measured else NETWORK_IMAGES_PER_SECOND
            return tuner.epochs * n / speed
        texts = tuner.rounds * n * tuner.epochs * (2 if tuner.refit else 1)  # each embedded ``rounds`` times
        return texts / CONTRASTIVE_TEXTS_PER_SECOND


def _distilled(problem: Problem, single: Probe, teacher: Probe, fitted: Fitted, features: Features) -> Fitted:
    """The side-by-side teacher's fit, or the default backbone's student of it when the teacher learned from
    unlabeled items (they moved its centre or self-trained it) and the student holds up on held-out labels
    (``distill``). A teacher that votes with its nearest items (``unlabeled.voting``) teaches with its vote, in the
    final fit and in each fold."""
    from .distill import distill
    from .features import extract
    from .unlabeled import adapt, voting

    usage = fitted.report.unlabeled or {}
    if not usage.get("used") or len(single.y) != len(teacher.y) or fitted.pool is None:
        return fitted
    if not (usage["centred"] or usage["self_training"]):
        # a student of a teacher the pool left unchanged would learn nothing the teacher does not know, with fewer
        # backbones to know it by
        return replace(fitted, metrics={**fitted.metrics, "student": {"kept": False, "distilled": False,
                                                                      "n_unlabeled": usage["n"]}},
                       reason=f"{fitted.reason}; the backbones side by side are kept rather than distilled into one "
                              "network: the unlabeled items changed nothing they learned")
    run = problem.run
    pool_teacher = fitted.pool  # the teacher's fit read them
    readable = [item for item, ok in zip(problem.unlabeled, pool_teacher.ok) if ok]
    pool_student = extract(single.featurizer, readable, batch_size=run.batch_size, cache_dir=run.cache_dir)
    if not pool_student.ok.all():
        return fitted
    seed, start = run.seed, time.perf_counter()
    # no typical temperature was measured for a student's head: its held-out labels alone fit the one its confidence
    # is read with
    # the student's rows are scaled to unit length first, as each backbone's are in the side-by-side teacher
    voted = bool((usage.get("vote") or {}).get("kept"))
    clusters = bool(usage.get("clusters"))

    def fold_teacher(head, x, y):  # each fold's teacher made as the final one was: adapted, voting where it votes
        adapted = adapt(head, x, y, pool_teacher.features, centred=usage["centred"],
                        self_training=usage["self_training"], seed=seed)
        return (voting(adapted, x, y, pool_teacher.features, centred=usage["centred"], clusters=clusters) if voted
                else adapted)

    result = distill(fitted.head, lambda rows, labels: features.fit_head(rows, labels, seed, unit_rows=True),
                     x_teacher=teacher.features, x_student=single.features, y=teacher.y,
                     pool_teacher=pool_teacher.features, pool_student=pool_student.features, adapt=fold_teacher,
                     centred=usage["centred"], clusters=clusters, seed=seed, folds=teacher.folds,
                     progress=run.progress)
    metrics = {**fitted.metrics, "student": {**result.info, "seconds": round(time.perf_counter() - start, 1)}}
    reason = f"{fitted.reason}; {result.sentence}"
    if result.head is None:
        return replace(fitted, metrics=metrics, reason=reason)
    info = result.info
    metrics.update({"student_estimate": info["student_estimate"], "student_interval": info["student_interval"],
                    "student_n": info["student_n"], "student_temperature": info["student_temperature"],
                    "teacher": teacher.featurizer.name})
    return Fitted(single.featurizer, result.head, metrics, reason, fitted.skipped, single.features, single.y,
                  pool_student)


ENSEMBLE_COST_PER_MEMBER = 1.3  # the zoo's other backbones cost about 1.3 times the default one each (240-260 px)


def make_strategy(strategy: str | Strategy) -> Strategy:
    """A strategy object from its name, or the object itself."""
    if isinstance(strategy, Strategy):
        return strategy
    table = {"auto": Auto, "features": Features, "finetune": FineTune, "scratch": Scratch}
    if strategy not in table:
        raise BadInputError(f"strategy must be one of {', '.join(STRATEGIES)} (or a strategy object such as "
                            f"FineTune(tuner=NetworkTuner(epochs=5))); got {strategy!r}.")
    return table[strategy]()


def strategy_from_options(name: str, tuning: dict, modality: str, time_budget: float | None = None,
                          distill: bool = True) -> Strategy:
    """The strategy for a strategy's name and tuning options given by name (the CLI's flags): options the strategy
    has no use for are errors, not ignored."""
    from .finetune.tuners import TUNERS, cli_options

    flags = ", ".join(o.flag for o in cli_options() if o.name in tuning)
    if name not in STRATEGIES:
        raise BadInputError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}.")
    if time_budget is not None and name != "auto":
        raise BadInputError("--time-budget applies to --strategy auto.")
    if not distill and name != "auto":
        raise BadInputError("--no-distill applies to --strategy auto (the only strategy that distills).")
    tuner = next(t for t in TUNERS.values() if t.modality == modality)
    if name == "features" or (name == "scratch" and "scratch" not in tuner.strategies):
        if tuning:
            what = "keeps it frozen" if name == "features" else f"learns TF-IDF for {modality}s"
            raise BadInputError(f"{flags} tune a network; --strategy {name} {what}. Use finetune or auto.")
        return Features() if name == "features" else Scratch()
    if name == "scratch":
        return Scratch(tuner=NetworkTuner(**{**SCRATCH, **tuning}).validated())  # the one tuner that has scratch
    finetune = FineTune(tuner=tuner(**tuning).validated() if tuning else None)
    return finetune if name == "finetune" else Auto(time_budget=time_budget, distill=distill,
                                                    finetune=finetune if tuning else None)
