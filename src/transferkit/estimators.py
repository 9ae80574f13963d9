"""ImageClassifier and TextClassifier: scikit-learn style estimators over one pipeline, featurizer -> head.

Both are a :class:`Classifier`; a subclass only says how its data is read and which featurizer it starts from. The
constructor only stores its arguments; ``fit`` learns ``classes_``, ``featurizer_``, ``head_`` and ``report_`` (a
:class:`~transferkit.fitreport.FitReport`: the estimate, how it was measured, ``reason_``, ``metrics_``); calling
``predict`` before ``fit`` raises :class:`~transferkit.errors.NotFittedError`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .data.hygiene import content_keys, duplicate_notes
from .data.labeled import Labeled, check_trainable, sample_pool, validation_fraction
from .errors import BadInputError
from .fitreport import FitReport
from .predictor import SETTINGS, Predictor, check_settings, default, not_fitted, read
from .strategies import FitRun, Problem, Strategy, make_strategy
from .targets import Resolved, resolve
from .unlabeled import MAX_ITEMS
from .zoo import DEFAULTS


class Classifier(ClassifierMixin, BaseEstimator):
    """The pipeline both classifiers share: read labeled items, featurize (cached), fit a strategy, predict."""

    modality: ClassVar[str]
    noun: ClassVar[str]

    # -- what subclasses say ---------------------------------------------------------------------------------------
    def _featurizer(self):
        raise NotImplementedError

    def _read(self, X, y=None, *, require_labels: bool = False) -> Labeled:
        columns = {k: getattr(self, k) for k in SETTINGS[self.modality] if k.endswith("_column")}
        task = getattr(self, "target_", None) or {"kind": getattr(self, "task", "auto")}
        return read(self.modality, X, y, require_labels=require_labels, several_labels=task["kind"] == "labels",
                    **columns)

    def _run(self) -> FitRun:
        return FitRun(seed=self.seed, val_fraction=self.val_fraction, batch_size=self.batch_size,
                      precision=self.precision, cache_dir=self.cache_dir, progress=self.verbose)

    # -- learning --------------------------------------------------------------------------------------------------
    def fit(self, X, y: Sequence | None = None, *, labels: Sequence | None = None, X_unlabeled=None,
            X_other=None, unlabeled_has_others: bool = False) -> Classifier:
        """Fit on labeled data (a folder, a table, or items with ``y``); ``labels=`` is another name for ``y``.

        ``X_unlabeled``: items without labels (a folder, a table, a text file of lines, a list), which the head on
        frozen features learns from where the evidence says so (``transferkit.unlabeled``). Unreadable ones are
        skipped and counted; a copy of a labeled item (the same content) is counted once, as labeled.
        ``unlabeled_has_others``: the unlabeled items may hold things of no labeled class (a camera trap's other
        animals, yesterday's traffic); the open-set part then mines them for such items (``openset``, ``knn-pool``).
        Leave it off for a pool of the labeled classes alone: mined, their stragglers would be rejected.
        ``X_other``: examples of things that belong to none of the classes (read like ``X_unlabeled``): how the model
        tells such items (``predict(..., reject="auto")``) is chosen and sharpened on them (``openset``)."""
        if labels is not None:
            if y is not None:
                raise BadInputError("Pass the labels once: either y= or labels=, not both.")
            y = labels
        if unlabeled_has_others and X_unlabeled is None:
            raise BadInputError("unlabeled_has_others says what the unlabeled items hold: give them too "
                                "(X_unlabeled=..., fit --unlabeled DIR).")
        strategy = make_strategy(self.strategy)
        check_settings(self.modality, {k: getattr(self, k) for k in SETTINGS[self.modality]}, type(self).__name__)
        _check_seed(self.seed)
        if self.val_fraction is not None:
            validation_fraction([], self.val_fraction)  # every strategy: checked before any data is read
        resolved = resolve(self._read(X, y, require_labels=True), self.task, self.separator)
        if resolved.kind != "class":
            return self._fit_shape(resolved, strategy, X_unlabeled, X_other)
        if self.min_precision is not None:
            raise BadInputError("min_precision sets the thresholds of several labels per item; these labels give one "
                                "class per item (task='labels' reads several).")
        data = resolved.data
        check_trainable(data, noun=self.noun)
        if self.verbose:
            self._say(f"{self.noun.capitalize()} data: {len(data)} {self.noun}s in {len(data.classes)} classes from "
                      f"{data.origin}")
        featurizer = self._featurizer()
        keys = content_keys(data.items, featurizer.item_key)
        data = Labeled(data.items, data.labels, data.origin,
                       (*data.notes, *duplicate_notes(data.items, data.labels, keys, "training data")))
        unlabeled, pool_notes = self._unlabeled(X_unlabeled, featurizer, keys)
        data = Labeled(data.items, data.labels, data.origin, (*data.notes, *pool_notes))
        start = time.perf_counter()
        fitted = strategy.fit(Problem(featurizer, data, data.classes, self._run(), unlabeled))
        self.open_set_ = self._open_set(fitted, data, X_other, keys, unlabeled_has_others)
        if self.open_set_ is not None:
            fitted.metrics["open_set"] = self.open_set_.describe()
        fitted.metrics["class_counts"] = {str(c): int(n) for c, n in zip(*np.unique(np.asarray(data.labels, dtype=str),
                                                                                    return_counts=True))}
        self._keep(fitted, strategy.name, data, data.classes, {"kind": "class"}, data.notes, keys, start)
        return self

    def _fit_shape(self, resolved: Resolved, strategy: Strategy, X_unlabeled, X_other) -> Classifier:
        """Several labels per item, or numbers: a head on the frozen features (``shapes``)."""
        from .shapes import auto_tunes, fit_shape

        what = "several labels per item" if resolved.kind == "labels" else "numbers"
        tunes = strategy.name == "finetune"  # the network's own weights, tuned for the shape
        if strategy.name not in ("auto", "features") and not tunes:
            raise BadInputError(f"For {what}, use strategy='auto', 'features' or 'finetune' (strategy "
                                f"{strategy.name!r} is for one class per {self.noun}).")
        for given, name in ((X_unlabeled, "unlabeled items"), (X_other, "examples of other things")):
            if given is not None:
                raise BadInputError(f"For {what}, {name} are not used yet; fit without them.")
        if self.min_precision is not None and (resolved.kind != "labels" or not isinstance(
                self.min_precision, (int, float)) or isinstance(self.min_precision, bool)
                or not 0 < self.min_precision < 1):
            raise BadInputError(f"min_precision is a precision between 0 and 1 for several labels per item; got "
                                f"{self.min_precision!r} for {what}.")
        data = resolved.data
        featurizer = self._featurizer()
        why_tune = auto_tunes(resolved, self.modality) if strategy.name == "auto" else None
        budget = getattr(strategy, "time_budget", None)
        if why_tune is not None and budget is not None:
            from .finetune.tuners import ContrastiveTuner
            from .strategies import CONTRASTIVE_TEXTS_PER_SECOND

            if ContrastiveTuner().rounds * len(data) / CONTRASTIVE_TEXTS_PER_SECOND > budget:
                why_tune = None  # over the budget: the head on frozen features, which needs no tuning
        if why_tune is not None:
            from .strategies import FineTune

            strategy, tunes = FineTune(), True
        companions = featurizer.companions() if strategy.name == "auto" and getattr(strategy, "ensemble", True) else []
        if companions:  # as auto does for classes: the zoo's offline backbones side by side
            from .featurizers import Concat

            featurizer = Concat([featurizer, *companions])
        keys = content_keys(data.items, featurizer.item_key)
        notes = (*data.notes, *duplicate_notes(data.items, data.labels, keys, "training data"))
        if self.verbose:
            self._say(f"{self.noun.capitalize()} data: {len(data)} {self.noun}s, {what}"
                      + (f" ({len(resolved.names)} labels)" if resolved.names else "") + f", from {data.origin}")
        start = time.perf_counter()
        if tunes:
            from .shapes import finetune_shape

            tuner = strategy.tuner_for(featurizer)  # type: ignore[attr-defined]  # FineTune's checked tuner
            fitted, thresholds = finetune_shape(featurizer, resolved, self._run(), tuner,
                                                min_precision=self.min_precision)
            if why_tune:
                fitted.reason = f"{fitted.reason}; {why_tune}"
        else:
            fitted, thresholds = fit_shape(featurizer, resolved, self._run(), min_precision=self.min_precision)
        if resolved.kind == "labels":
            counts = resolved.indicator().sum(0)
            fitted.metrics["class_counts"] = {str(n): int(c) for n, c in zip(resolved.names, counts)}
        self.open_set_ = None
        target = {"kind": resolved.kind, "separator": resolved.separator,
                  "thresholds": None if thresholds is None else [float(t) for t in thresholds]}
        self._keep(fitted, "finetune" if tunes else "features", data, resolved.names, target, notes, keys, start)
        return self

    def _keep(self, fitted, strategy: str, data: Labeled, classes, target: dict, notes, keys, start: float) -> None:
        """The fitted parts, the report (with the fit's time and size), and what the user is told of them."""
        fitted.metrics["fit_seconds"] = time.perf_counter() - start
        fitted.metrics[f"n_{self.noun}s"] = len(data)
        self.classes_ = np.array(classes)
        self.target_: dict = target
        self.featurizer_ = fitted.featurizer
        self.head_ = fitted.head
        self.report_ = FitReport(strategy, fitted.reason, fitted.metrics, tuple(fitted.skipped), tuple(notes),
                                 tuple(sorted({k[:16] for k in keys if k is not None})))
        if self.verbose:
            for note in notes:
                self._say(f"Note: {data.origin}: {note}.")
            self._say(fitted.reason)
            if fitted.skipped:
                self._say(f"Skipped {len(fitted.skipped)} unreadable file(s):")
                for item, why in fitted.skipped[:10]:
                    self._say(f"  {item}: {why}")

    def _open_set(self, fitted, data: Labeled, X_other, labeled_keys, mine_pool: bool = False):
        """How the fitted model tells an item of no trained class (``openset.calibrate``), from the labeled items'
        features (read from the cache for a frozen featurizer), those of the examples of other things, and, with
        ``mine_pool``, the unlabeled items' where the strategy read them."""
        from .features import extract
        from .openset import MIN_OTHER, calibrate

        options = {"batch_size": self.batch_size, "cache_dir": self.cache_dir, "use_cache": not fitted.featurizer.tuned}
        features, y = fitted.features, fitted.y
        if features is None or y is None:  # a strategy that did not keep them (a tuned network, TF-IDF)
            extraction = extract(fitted.featurizer, list(data.items), **options)
            index = {c: i for i, c in enumerate(data.classes)}
            features = extraction.features
            y = np.array([index[c] for c, ok in zip(data.labels, extraction.ok) if ok])
        if len(np.unique(y)) != len(data.classes):
            return None
        other = None
        if X_other is not None:
            items = list(self._read(X_other).items)
            copies = set(content_keys(items, fitted.featurizer.item_key)) & {k for k in labeled_keys if k is not None}
            if copies:
                raise BadInputError(f"{X_other}: {len(copies)} example(s) of other things are copies of labeled items: "
                                    "an item cannot be both; remove them from one of the two.")
            other = extract(fitted.featurizer, items, **options).features if items else None
            if other is None or other.shape[0] < MIN_OTHER:
                raise BadInputError(f"{X_other}: {0 if other is None else other.shape[0]} readable example(s) of other "
                                    f"things; give at least {MIN_OTHER}, or leave them out (held-out classes stand in "
                                    "for them).")
        head, seed = fitted.head, self.seed
        pool = fitted.pool.features if mine_pool and fitted.pool is not None and fitted.pool.ok.any() else None
        return calibrate(lambda rows, labels: head.refit(rows, labels, seed), head, features, y, seed=seed, other=other,
                         pool=pool)

    def _unlabeled(self, X_unlabeled, featurizer, labeled_keys) -> tuple[tuple, list[str]]:
        """The unlabeled items once each, none a copy of a labeled one, and what the user is told about them."""
        if X_unlabeled is None:
            return (), []
        pool = self._read(X_unlabeled)
        sampled = sample_pool(list(pool.items), self.seed, MAX_ITEMS)
        notes = [f"{len(sampled)} of the {len(pool.items)} unlabeled {self.noun}s from {pool.origin} are learned from "
                 f"(a random sample drawn with the fit's seed; at most {MAX_ITEMS})"] if len(sampled) < len(pool) else []
        known, kept, copies = set(k for k in labeled_keys if k is not None), [], 0
        for item, key in zip(sampled, content_keys(sampled, featurizer.item_key)):
            if key is not None and key in known:
                copies += 1
                continue
            if key is not None:
                known.add(key)
            kept.append(item)
        if copies:
            notes.append(f"{copies} unlabeled {self.noun}(s) from {pool.origin} were copies of labeled ones or of each "
                         "other: each is counted once")
        if self.verbose:
            self._say(f"Unlabeled {self.noun}s: {len(kept)} from {pool.origin}"
                      + (f" (sampled from {len(pool)})" if len(sampled) < len(pool) else ""))
        return tuple(kept), notes

    # -- predicting ------------------------------------------------------------------------------------------------
    def predictor(self) -> Predictor:
        """The fitted model for inference, with this estimator's current settings (``tta``, ``batch_size``, ...)."""
        self._check_fitted()
        settings = {k: getattr(self, k) for k in SETTINGS[self.modality]}
        return Predictor(self.modality, self.featurizer_, self.head_, self.classes_, settings, self.report_,
                         self.cache_dir, self.verbose, open_set=getattr(self, "open_set_", None),
                         target=getattr(self, "target_", None) or {"kind": "class"})

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_`` (several labels per item: each label's
        probability)."""
        return self.predictor().predict_proba(X)

    def predict(self, X, *, reject=None, unknown: str = "unknown") -> np.ndarray:
        """The most probable class of each item (several labels per item: a tuple of the labels it carries; numbers:
        the number); with ``reject`` (``"auto"``, or the share of items from the trained
        classes that may be rejected, e.g. 0.05), ``unknown`` for an item that belongs to none of them."""
        return self.predictor().predict(X, reject=reject, unknown=unknown)

    def predict_items(self, items: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
        """Probabilities for the readable items, a mask of which were readable, and why the others were not."""
        return self.predictor().predict_items(items)

    def estimate_accuracy(self, X) -> dict | None:
        """The accuracy on unlabeled ``X``, read from the model's confidence; ``below_fit`` says these items look
        unlike the training ones (``evaluate.label_free_estimate``)."""
        return self.predictor().estimate_accuracy(X)

    predict_files = predict_items  # the name transferkit 0.1 used

    def score(self, X, y: Sequence | None = None, sample_weight=None) -> float:
        """On labeled data (a folder or table with labels, or items with ``y``): accuracy; for several labels per
        item the share of items whose whole set of labels is right; for numbers R²."""
        self._check_fitted()
        target = getattr(self, "target_", None) or {"kind": "class"}
        data = resolve(self._read(X, y, require_labels=True), target["kind"], target.get("separator"),
                       training=False).data
        predicted = self.predict(list(data.items))
        if target["kind"] == "number":
            from sklearn.metrics import r2_score

            return float(r2_score(np.asarray(data.labels, dtype=float), predicted.astype(float)))
        return float(np.mean([tuple(p) == tuple(t) if target["kind"] == "labels" else p == t
                              for p, t in zip(predicted, data.labels)]))

    def embed(self, X) -> np.ndarray:
        """The features the head sees."""
        from .features import extract

        predictor = self.predictor()
        return extract(self.featurizer_, predictor.items(X), batch_size=self.batch_size, cache_dir=self.cache_dir,
                       use_cache=not self.featurizer_.tuned).features

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise not_fitted(type(self).__name__)

    def _say(self, message: str) -> None:
        print(message, file=sys.stderr)

    # -- saving ----------------------------------------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the model folder (components: featurizer, head), atomically. In a distributed run only rank 0
        writes. An existing model folder is replaced only with ``overwrite`` (the default here; the CLI asks)."""
        from .bundle import save_model
        from .predictor import TASKS
        from .runtime import is_primary_process

        self._check_fitted()
        if not is_primary_process():
            return Path(path)
        document = {"task": TASKS[self.modality], "modality": self.modality, "classes": self.classes_.tolist(),
                    "target": getattr(self, "target_", None) or {"kind": "class"},
                    "inference": {k: getattr(self, k) for k in SETTINGS[self.modality]}}
        head_config, head_tensors = self.head_.save()
        components = {"featurizer": self.featurizer_.save(),
                      "head": ({**head_config, "classes": self.classes_.tolist()}, head_tensors)}
        if getattr(self, "open_set_", None) is not None:
            components["open_set"] = self.open_set_.save()
        report = {**self.report_.to_dict(), "fit_params": _describe_params(self)}
        return save_model(path, document, components, report, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, **overrides) -> Classifier:
        """Rebuild a saved model (this format or transferkit 0.1's); it predicts exactly as the one that was saved.

        Only inference settings are read from the folder, each checked; ``overrides`` (e.g. ``verbose=False``,
        ``tta=True``) set constructor parameters of the loaded estimator.
        """
        settings = {k: v for k, v in overrides.items() if k in SETTINGS[cls.modality]}
        predictor = Predictor.load(path, modality=cls.modality, **settings)
        model = cls(**{**predictor.settings, **overrides})
        model.classes_ = predictor.classes
        model.featurizer_ = predictor.featurizer
        model.head_ = predictor.head
        model.open_set_ = predictor.open_set
        model.target_ = predictor.target
        model.report_ = replace(predictor.report, skipped=tuple((Path(p), why) for p, why in predictor.report.skipped))
        return model

    # -- what the fit reported (report_), by the names scikit-learn users look for -------------------------------------
    @property
    def metrics_(self) -> dict:
        """Every measurement of the fit as recorded (``report_`` reads them: its ``estimate``, ``temperature``)."""
        return self.report_.metrics

    @property
    def reason_(self) -> str:
        return self.report_.reason

    @property
    def strategy_(self) -> str | None:
        return self.report_.strategy

    @property
    def skipped_(self) -> list:
        return list(self.report_.skipped)

    @property
    def notes_(self) -> list[str]:
        return list(self.report_.notes)

    @property
    def train_digests_(self) -> list[str]:
        return list(self.report_.train_digests)


def _check_seed(seed) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2 ** 32:
        raise BadInputError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}.")


def _describe_params(model) -> dict:
    params = {}
    for key, value in model.get_params(deep=False).items():
        params[key] = repr(value) if isinstance(value, Strategy) else value
    return params


class ImageClassifier(Classifier):
    """Reuse a pretrained image network on a new, small labeled dataset.

    Parameters
    ----------
    backbone: a zoo name (``transferkit models``), an alias such as ``"lite0"``, a local-zoo name, or any timm name.
    strategy: ``"auto"`` (default: measures, chooses and says why), ``"features"``, ``"finetune"``, ``"scratch"``,
        or a strategy object with its own settings: ``Features(C=1)``,
        ``FineTune(tuner=NetworkTuner(unfreeze=2, epochs=8))``, ``Scratch()``, ``Auto(time_budget=60)``.
    weights: a local weights file (safetensors or a state dict) to use instead of the backbone's own.
    seed: seeds the split, the head's cross-validation and training.
    val_fraction: share of each class held out to validate tuning; ``None``: 20 %, 10 % from 50 per class.
    precision: ``"auto"`` (bfloat16 where this machine runs it natively), ``"bf16"`` or ``"fp32"``.
    batch_size: images per batch when extracting features and predicting.
    tta: test-time augmentation at predict: average each image's probabilities with its mirror image's.
    input_size: resize images to this many pixels instead of the backbone's own input size.
    path_column, label_column: columns of a table (CSV / TSV / JSONL / DataFrame) of image paths (found by name, or
        by holding image file names, when ``None``).
    workdir, resume: where training checkpoints live; ``resume=True`` continues a killed fit from its last one.
    cache_dir: where features are cached (default ``$TRANSFERKIT_CACHE`` or ``~/.cache/transferkit``).
    verbose: progress bars and a line about what was done, on standard error.
    task: what a label is: ``"auto"`` (decides, and says how), ``"class"`` (one class per item), ``"labels"`` (several
        per item: lists, cells split at ``separator``, or an item listed once per label), ``"number"`` (a regressor).
    separator: what splits several labels in a table cell (``auto`` looks for ``|`` and ``;``).
    min_precision: several labels per item: each label's threshold is the lowest that keeps this precision on
        out-of-fold predictions (default: the threshold with the best F1).
    """

    modality = "image"
    noun = "image"

    def __init__(self, backbone: str = DEFAULTS["image"], strategy: str | Strategy = "auto", *,
                 weights: str | None = None, seed: int = 0, val_fraction: float | None = None,
                 precision: str = default("image", "precision"), batch_size: int = default("image", "batch_size"),
                 tta: bool = default("image", "tta"), input_size: int | None = None,
                 path_column: str | None = default("image", "path_column"),
                 label_column: str | None = default("image", "label_column"), workdir: str | None = None,
                 resume: bool = False, cache_dir: str | None = None, verbose: bool = True, task: str = "auto",
                 separator: str | None = None, min_precision: float | None = None) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.weights = weights
        self.seed = seed
        self.val_fraction = val_fraction
        self.precision = precision
        self.batch_size = batch_size
        self.tta = tta
        self.input_size = input_size
        self.path_column = path_column
        self.label_column = label_column
        self.workdir = workdir
        self.resume = resume
        self.cache_dir = cache_dir
        self.verbose = verbose
        self.task = task
        self.separator = separator
        self.min_precision = min_precision

    def _featurizer(self):
        from .featurizers import ImageBackbone
        from .zoo import resolve

        return ImageBackbone.from_spec(resolve(self.backbone, "image"), weights=self.weights,
                                       input_size=self.input_size, precision=self.precision)

    def _run(self) -> FitRun:
        from dataclasses import replace

        return replace(super()._run(), workdir=self.workdir, resume=self.resume)

    @property
    def preprocessing_(self):
        return self.featurizer_.preprocessing


class TextClassifier(Classifier):
    """Reuse a pretrained text encoder (or word vectors) on a new, small labeled set of texts.

    Parameters
    ----------
    encoder: a zoo name (default ``all-MiniLM-L6-v2``, offline), a Hugging Face model name, a local model folder, or
        a word-vector file (GloVe text, word2vec binary or text, fastText ``.vec``).
    strategy: as for :class:`ImageClassifier`; for texts ``FineTune`` tunes the encoder contrastively
        (``FineTune(tuner=ContrastiveTuner(loss="batch", rounds=20))``) and ``Scratch`` is TF-IDF.
    long_text: ``"truncate"`` (keep the first tokens of the encoder's window) or ``"chunk"`` (average the embeddings
        of every window).
    text_column, label_column: columns of a CSV / JSONL (found by name when ``None``).
    Other parameters as for :class:`ImageClassifier`.
    """

    modality = "text"
    noun = "text"

    def __init__(self, encoder: str = DEFAULTS["text"], strategy: str | Strategy = "auto", *, seed: int = 0,
                 val_fraction: float | None = None, precision: str = default("text", "precision"),
                 batch_size: int = default("text", "batch_size"), long_text: str = default("text", "long_text"),
                 text_column: str | None = default("text", "text_column"),
                 label_column: str | None = default("text", "label_column"), cache_dir: str | None = None,
                 verbose: bool = True, task: str = "auto", separator: str | None = None,
                 min_precision: float | None = None) -> None:
        self.encoder = encoder
        self.strategy = strategy
        self.seed = seed
        self.val_fraction = val_fraction
        self.precision = precision
        self.batch_size = batch_size
        self.long_text = long_text
        self.text_column = text_column
        self.label_column = label_column
        self.cache_dir = cache_dir
        self.verbose = verbose
        self.task = task
        self.separator = separator
        self.min_precision = min_precision

    def _featurizer(self):
        from .featurizers import text_featurizer
        from .zoo import resolve

        return text_featurizer(resolve(self.encoder, "text"), long_text=self.long_text, precision=self.precision)

    @property
    def vectorizer_(self):
        """The TF-IDF vectorizer of a ``scratch`` model (``None`` otherwise)."""
        return getattr(self.featurizer_, "vectorizer", None)


def load_model(path: str | Path, **overrides) -> Classifier:
    """Load any transferkit model folder (or ``hf://OWNER/NAME`` from the Hub) as the estimator that wrote it."""
    from .bundle import read_document
    from .predictor import TASKS
    from .share import local_model_path

    path = local_model_path(path)
    document, _ = read_document(path)
    text = document.get("modality") == "text" or document.get("task") == TASKS["text"]
    cls = TextClassifier if text else ImageClassifier
    if cls is TextClassifier:
        overrides.pop("tta", None)
    return cls.load(path, **overrides)
