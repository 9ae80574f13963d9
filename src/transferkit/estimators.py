"""ImageClassifier and TextClassifier: scikit-learn style estimators over one pipeline, featurizer -> head.

Both are a :class:`Classifier`; a subclass only says how its data is read and which featurizer it starts from. The
constructor only stores its arguments; ``fit`` learns ``classes_``, ``featurizer_``, ``head_``, ``metrics_`` and
``reason_``; calling ``predict`` before ``fit`` raises :class:`~transferkit.errors.NotFittedError`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .data.hygiene import content_keys, duplicate_notes
from .data.labeled import Labeled, check_trainable
from .errors import BadInputError, NotFittedError
from .runtime import PRECISIONS, check_precision
from .strategies import FitRun, Problem, Strategy, make_strategy
from .zoo import DEFAULTS


class Classifier(ClassifierMixin, BaseEstimator):
    """The pipeline both classifiers share: read labeled items, featurize (cached), fit a strategy, predict."""

    modality: ClassVar[str]
    noun: ClassVar[str]
    # what a model folder keeps of the settings: how to run it. precision stays a policy ("auto" by default), resolved
    # by the machine that runs the model, never the resolved path of the machine that fitted it
    inference_params: ClassVar[tuple[str, ...]] = ("batch_size", "precision")

    # -- what subclasses say ---------------------------------------------------------------------------------------
    def _read(self, X, y=None, *, require_labels: bool = False) -> Labeled:
        raise NotImplementedError

    def _featurizer(self):
        raise NotImplementedError

    def _items(self, X) -> list:
        """Items to predict from what a user passes (a path, a folder, a list)."""
        raise NotImplementedError

    def _run(self) -> FitRun:
        return FitRun(seed=self.seed, val_fraction=self.val_fraction, batch_size=self.batch_size,
                      precision=self.precision, cache_dir=self.cache_dir, progress=self.verbose)

    # -- learning --------------------------------------------------------------------------------------------------
    def fit(self, X, y: Sequence | None = None, *, labels: Sequence | None = None) -> Classifier:
        """Fit on labeled data (a folder, a table, or items with ``y``); ``labels=`` is another name for ``y``."""
        if labels is not None:
            if y is not None:
                raise BadInputError("Pass the labels once: either y= or labels=, not both.")
            y = labels
        strategy = make_strategy(self.strategy)
        check_precision(self.precision)
        _check_seed(self.seed)
        data = self._read(X, y, require_labels=True)
        check_trainable(data, noun=self.noun)
        if self.verbose:
            self._say(f"{self.noun.capitalize()} data: {len(data)} {self.noun}s in {len(data.classes)} classes from "
                      f"{data.origin}")
        featurizer = self._featurizer()
        keys = content_keys(data.items, featurizer.item_key)
        data = Labeled(data.items, data.labels, data.origin,
                       (*data.notes, *duplicate_notes(data.items, data.labels, keys, "training data")))
        start = time.perf_counter()
        fitted = strategy.fit(Problem(featurizer, data, data.classes, self._run()))
        fitted.metrics["fit_seconds"] = time.perf_counter() - start
        fitted.metrics[f"n_{self.noun}s"] = len(data)
        self.classes_ = np.array(data.classes)
        self.featurizer_ = fitted.featurizer
        self.head_ = fitted.head
        self.metrics_ = fitted.metrics
        self.reason_ = fitted.reason
        self.strategy_ = strategy.name
        self.skipped_ = list(fitted.skipped)
        self.notes_ = list(data.notes)
        self.train_digests_ = sorted({k[:16] for k in keys if k is not None})
        if self.verbose:
            for note in data.notes:
                self._say(f"Note: {data.origin}: {note}.")
            self._say(fitted.reason)
            if fitted.skipped:
                self._say(f"Skipped {len(fitted.skipped)} unreadable file(s):")
                for item, why in fitted.skipped[:10]:
                    self._say(f"  {item}: {why}")
        return self

    # -- predicting ------------------------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        self._check_fitted()
        proba, _, skipped = self.predict_items(self._items(X))
        if skipped:
            listed = "; ".join(f"{p}: {why}" for p, why in skipped[:5])
            raise BadInputError(f"Cannot predict {len(skipped)} unreadable input(s): {listed}.")
        return proba

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def predict_items(self, items: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
        """Probabilities for the readable items, a mask of which were readable, and why the others were not."""
        from .features import extract

        self._check_fitted()
        extraction = extract(self.featurizer_, list(items), batch_size=self.batch_size, cache_dir=self.cache_dir,
                             use_cache=not self.featurizer_.tuned, progress=self.verbose and len(items) > 256,
                             description="Predicting")
        if not extraction.ok.any():  # nothing readable: no rows to predict, and no row of the wrong width
            return np.zeros((0, len(self.classes_))), extraction.ok, extraction.skipped
        return self.head_.predict_proba(extraction.features), extraction.ok, extraction.skipped

    predict_files = predict_items  # the name transferkit 0.1 used

    def score(self, X, y: Sequence | None = None, sample_weight=None) -> float:
        """Accuracy on labeled data: a folder or table with labels, or items with ``y``."""
        data = self._read(X, y, require_labels=True)
        return float(np.mean(self.predict(list(data.items)) == np.array(data.labels)))

    def embed(self, X) -> np.ndarray:
        """The features the head sees."""
        from .features import extract

        self._check_fitted()
        return extract(self.featurizer_, self._items(X), batch_size=self.batch_size, cache_dir=self.cache_dir,
                       use_cache=not self.featurizer_.tuned).features

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet. Call fit(data) first, or load a model "
                                 f"with {type(self).__name__}.load(path).")

    def _say(self, message: str) -> None:
        print(message, file=sys.stderr)

    # -- saving ----------------------------------------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the model folder (components: featurizer, head), atomically. In a distributed run only rank 0
        writes. An existing model folder is replaced only with ``overwrite`` (the default here; the CLI asks)."""
        from .bundle import TASKS, save_model
        from .runtime import is_primary_process

        self._check_fitted()
        if not is_primary_process():
            return Path(path)
        document = {"task": TASKS[self.modality], "modality": self.modality, "classes": self.classes_.tolist(),
                    "inference": {k: getattr(self, k) for k in self.inference_params}}
        head_config, head_tensors = self.head_.save()
        components = {"featurizer": self.featurizer_.save(),
                      "head": ({**head_config, "classes": self.classes_.tolist()}, head_tensors)}
        report = {"strategy": self.strategy_, "reason": self.reason_, "metrics": self.metrics_,
                  "skipped": [[str(p), why] for p, why in self.skipped_], "notes": self.notes_,
                  "fit_params": _describe_params(self), "train_digests": self.train_digests_}
        return save_model(path, document, components, report, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, **overrides) -> Classifier:
        """Rebuild a saved model (this format or transferkit 0.1's); it predicts exactly as the one that was saved.

        Only inference settings are read from the folder, each checked; ``overrides`` (e.g. ``verbose=False``,
        ``tta=True``) set constructor parameters of the loaded estimator.
        """
        from .bundle import load_model_parts

        document, components, report = load_model_parts(path)
        if document.get("modality") != cls.modality:
            raise BadInputError(f"{path} holds a {document.get('modality')} model; load it with "
                                f"{'ImageClassifier' if document.get('modality') == 'image' else 'TextClassifier'}, "
                                "or with transferkit.load_model, which picks the class.")
        model = cls(**_inference_settings(cls, document.get("inference") or {}, path), **overrides)
        featurizer, head = _components(components, path, model)
        _check_classes(document.get("classes"), head, components["head"][0], path)
        model.classes_ = np.array(document["classes"])
        model.featurizer_ = featurizer
        model.head_ = head
        model.metrics_ = report.get("metrics") or {}
        model.reason_ = report.get("reason", "")
        model.strategy_ = report.get("strategy")
        model.skipped_ = [(Path(p), why) for p, why in report.get("skipped") or []]
        model.notes_ = list(report.get("notes") or [])
        digests = report.get("train_digests") or []
        model.train_digests_ = [d for d in digests if isinstance(d, str)]
        return model


def _check_seed(seed) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2 ** 32:
        raise BadInputError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}.")


def _inference_settings(cls, inference: dict, path) -> dict:
    """The folder's inference settings that this class takes, each checked (anything else in the folder is left)."""
    from .errors import BundleError

    out = {}
    for key in cls.inference_params:
        if key not in inference:
            continue
        value = inference[key]
        if key == "batch_size" and not (isinstance(value, int) and 1 <= value <= 4096):
            raise BundleError(f"{path}: inference batch_size {value!r} is not a number from 1 to 4096.")
        if key == "precision" and value not in PRECISIONS:
            raise BundleError(f"{path}: inference precision {value!r} is not one of {', '.join(PRECISIONS)}.")
        if key == "tta" and not isinstance(value, bool):
            raise BundleError(f"{path}: inference tta {value!r} is not true or false.")
        if key.endswith("_column") and not (value is None or (isinstance(value, str) and len(value) < 256)):
            raise BundleError(f"{path}: inference {key} {value!r} is not a column name.")
        if key == "long_text" and value not in ("truncate", "chunk"):
            raise BundleError(f"{path}: inference long_text {value!r} is not truncate or chunk.")
        out[key] = value
    return out


def _components(components: dict, path, model):
    from .errors import BundleError
    from .featurizers import load_featurizer
    from .heads import LinearHead

    if set(components) != {"featurizer", "head"}:
        raise BundleError(f"{path} lists components {sorted(components)}; this transferkit reads a featurizer and "
                          "a head.")
    featurizer = load_featurizer(*components["featurizer"], precision=model.precision)
    if featurizer.modality != model.modality:
        raise BundleError(f"{path}: its featurizer reads {featurizer.modality}s, but the folder says it is a "
                          f"{model.modality} model. The folder was edited or is damaged.")
    head_config, head_tensors = components["head"]
    if head_config.get("kind") != LinearHead.kind:
        raise BundleError(f"{path}: unknown head kind {head_config.get('kind')!r}.")
    head = LinearHead.load(head_config, head_tensors)
    dim = featurizer.dim
    if dim and head.n_features != dim:
        raise BundleError(f"{path}: the head takes {head.n_features} features but the featurizer "
                          f"({featurizer.name}) gives {dim}. The folder was edited or is damaged; refit the model.")
    return featurizer, head


def _check_classes(classes, head, head_config: dict, path) -> None:
    """The class list must be distinct names (or whole numbers), as many as the head predicts, and in the order the
    head learned them: an edited list would otherwise predict wrong labels without a word."""
    from .errors import BundleError

    if not isinstance(classes, list) or not classes or len(set(map(repr, classes))) != len(classes) or not (
            all(isinstance(c, str) for c in classes) or all(isinstance(c, int) for c in classes)):
        raise BundleError(f"{path}: the class list must be distinct names (or whole numbers); found {classes!r}.")
    outputs = head.coef.shape[0]
    if len(classes) != (2 if outputs == 1 else outputs):
        raise BundleError(f"{path} names {len(classes)} classes but its head predicts "
                          f"{2 if outputs == 1 else outputs}. The class list was edited; restore it or refit.")
    learned = head_config.get("classes")
    if learned is not None and learned != classes:
        raise BundleError(f"{path}: the class list {classes} is not the one the head learned ({learned}): it was "
                          "edited or reordered. Restore it, or refit the model.")


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
        or a strategy object with its own settings: ``Features(C=1)``, ``FineTune(unfreeze=2, epochs=8)``,
        ``Scratch(epochs=20)``, ``Auto(time_budget=60)``.
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
    """

    modality = "image"
    noun = "image"
    inference_params = ("batch_size", "precision", "tta", "path_column", "label_column")

    def __init__(self, backbone: str = DEFAULTS["image"], strategy: str | Strategy = "auto", *,
                 weights: str | None = None, seed: int = 0, val_fraction: float | None = None,
                 precision: str = "auto", batch_size: int = 32, tta: bool = False, input_size: int | None = None,
                 path_column: str | None = None, label_column: str | None = None, workdir: str | None = None,
                 resume: bool = False, cache_dir: str | None = None, verbose: bool = True) -> None:
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

    def _read(self, X, y=None, *, require_labels: bool = False) -> Labeled:
        from .data import read_images

        data = read_images(X, y, path_column=self.path_column, label_column=self.label_column)
        if require_labels and data.labels is None:
            raise BadInputError(f"{data.origin} has no labels: pass a folder of class subfolders, a CSV with a label "
                                "column, or y=.")
        return data

    def _featurizer(self):
        from .featurizers import ImageBackbone
        from .zoo import resolve

        return ImageBackbone.from_spec(resolve(self.backbone, "image"), weights=self.weights,
                                       input_size=self.input_size, precision=self.precision)

    def _run(self) -> FitRun:
        from dataclasses import replace

        return replace(super()._run(), workdir=self.workdir, resume=self.resume)

    def _items(self, X) -> list:
        return list(self._read(X).items)

    def predict_items(self, items: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
        proba, ok, skipped = super().predict_items(items)
        if self.tta and ok.any():  # the mirror image's probabilities, averaged in
            from .features import extract

            backbone: Any = self.featurizer_
            mirrored = extract(backbone.with_view("mirror"), [i for i, k in zip(items, ok) if k],
                               batch_size=self.batch_size, cache_dir=self.cache_dir,
                               use_cache=not self.featurizer_.tuned)
            proba = (proba + self.head_.predict_proba(mirrored.features)) / 2
        return proba, ok, skipped

    predict_files = predict_items

    @property
    def preprocessing_(self):
        return self.featurizer_.preprocessing


class TextClassifier(Classifier):
    """Reuse a pretrained text encoder (or word vectors) on a new, small labeled set of texts.

    Parameters
    ----------
    encoder: a zoo name (default ``all-MiniLM-L6-v2``, offline), a Hugging Face model name, a local model folder, or
        a word-vector file (GloVe text, word2vec binary or text, fastText ``.vec``).
    strategy: as for :class:`ImageClassifier`; for texts ``FineTune`` tunes the encoder on contrastive pairs
        (``FineTune(rounds=5, train_tokens=128, refit=True)``) and ``Scratch`` is TF-IDF.
    long_text: ``"truncate"`` (keep the first tokens of the encoder's window) or ``"chunk"`` (average the embeddings
        of every window).
    text_column, label_column: columns of a CSV / JSONL (found by name when ``None``).
    Other parameters as for :class:`ImageClassifier`.
    """

    modality = "text"
    noun = "text"
    inference_params = ("batch_size", "precision", "long_text", "text_column", "label_column")

    def __init__(self, encoder: str = DEFAULTS["text"], strategy: str | Strategy = "auto", *, seed: int = 0,
                 val_fraction: float | None = None, precision: str = "auto", batch_size: int = 32,
                 long_text: str = "truncate", text_column: str | None = None, label_column: str | None = None,
                 cache_dir: str | None = None, verbose: bool = True) -> None:
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

    def _read(self, X, y=None, *, require_labels: bool = False) -> Labeled:
        from .data import read_texts

        return read_texts(X, y, text_column=self.text_column, label_column=self.label_column,
                          require_labels=require_labels)

    def _featurizer(self):
        from .featurizers import text_featurizer
        from .zoo import resolve

        return text_featurizer(resolve(self.encoder, "text"), long_text=self.long_text, precision=self.precision)

    def _items(self, X) -> list:
        if isinstance(X, (str, Path)):
            if not Path(X).exists():
                raise BadInputError(f"{X!s:.60} is not a file or folder. To classify texts, pass a list of strings: "
                                    "predict([text, ...]).")
            return list(self._read(X).items)
        return ["" if t is None else str(t) for t in X]

    @property
    def vectorizer_(self):
        """The TF-IDF vectorizer of a ``scratch`` model (``None`` otherwise)."""
        return getattr(self.featurizer_, "vectorizer", None)


def load_model(path: str | Path, **overrides) -> Classifier:
    """Load any transferkit model folder as the estimator that wrote it."""
    from .bundle import TASKS, read_document

    document, _ = read_document(path)
    text = document.get("modality") == "text" or document.get("task") == TASKS["text"]
    cls = TextClassifier if text else ImageClassifier
    if cls is TextClassifier:
        overrides.pop("tta", None)
    return cls.load(path, **overrides)
