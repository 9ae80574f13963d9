"""ImageClassifier and TextClassifier: scikit-learn style estimators composed of the zoo, data, features, heads
and training engines.

The constructor only stores its arguments; ``fit`` learns ``classes_``, ``network_``, ``head_`` and ``metrics_``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from . import bundle as _bundle
from .data import LabeledImages, check_trainable, read_images
from .errors import BadInputError, NotFittedError
from .features import FeatureExtractor
from .finetune import TrainConfig
from .finetune.engine import is_primary_process
from .heads import LinearHead
from .preprocessing import Preprocessing
from .strategies import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    FITTERS,
    STRATEGIES,
    FitContext,
    Fitted,
    model_key,
)
from .finetune.contrastive import ContrastiveConfig
from .zoo import DEFAULT_BACKBONE, DEFAULT_TEXT_ENCODER, ModelSpec, create_backbone, resolve, resolve_text_encoder

TASK = "image-classification"


class ImageClassifier(ClassifierMixin, BaseEstimator):
    """Reuse a pretrained image network on a new, small labeled dataset.

    Parameters
    ----------
    backbone: a zoo name (``transferkit models``), an alias such as ``"lite0"``, or any timm model name.
    strategy: ``"auto"`` (the default: decides between features and finetune and says why), ``"features"`` (frozen
        backbone + logistic regression), ``"finetune"`` (probe-initialised head, top stages retrained) or
        ``"scratch"`` (random init).
    weights: a local weights file (safetensors or a state dict) to use instead of the backbone's own.
    seed: seeds the split, the head's cross-validation and training.
    val_fraction: share of each class held out to validate (and, for networks, to stop early); ``None`` (default):
        20 %, or 10 % when every class has at least 50 labeled images.
    precision: ``"auto"`` (bfloat16 autocast where the CPU or GPU supports it), ``"bf16"`` or ``"fp32"``.
    epochs, lr, batch_size: training settings for networks (``finetune``, ``scratch``); ``None`` picks the strategy's
        default; ``batch_size`` also sets extraction batches.
    unfreeze: how many top stages ``finetune`` retrains (an int, or ``"all"``); the head always trains.
    layer_decay: each stage below the top trains at this fraction of the learning rate of the stage above.
    l2sp: strength of the L2-SP pull towards the pretrained weights (0 turns it off; try 0.01).
    bn_statistics: ``"frozen"`` keeps every BatchNorm layer's pretrained running statistics while fine-tuning
        (their scale and shift still train); ``"train"`` lets the retrained stages re-estimate them.
    time_budget: seconds ``auto`` may spend; over it, it keeps the frozen features.
    devices, num_nodes: train networks on several devices / machines with Lightning's DDP (launch with torchrun or
        SLURM for several nodes); only rank 0 writes the model folder.
    tta: test-time augmentation at predict: average the probabilities of each image and its mirror image.
    input_size: resize images to this many pixels instead of the backbone's own input size (e.g. small images and
        a network trained from scratch); stored with the model like the rest of its preprocessing.
    workdir, resume: where training checkpoints live; ``resume=True`` continues a killed fit from its last one.
    cache_dir: where features are cached (default ``$TRANSFERKIT_CACHE`` or ``~/.cache/transferkit``).
    verbose: progress bars and a line about what was done, on standard error.
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        strategy: str = "auto",
        *,
        weights: str | None = None,
        seed: int = 0,
        val_fraction: float | None = None,
        precision: str = "auto",
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int = 32,
        unfreeze: int | str = 3,
        layer_decay: float = 0.7,
        l2sp: float = 0.0,
        bn_statistics: str = "frozen",
        time_budget: float | None = None,
        devices: int = 1,
        num_nodes: int = 1,
        tta: bool = False,
        input_size: int | None = None,
        cache_dir: str | None = None,
        workdir: str | None = None,
        resume: bool = False,
        verbose: bool = True,
    ) -> None:
        self.input_size = input_size
        self.backbone = backbone
        self.strategy = strategy
        self.weights = weights
        self.seed = seed
        self.val_fraction = val_fraction
        self.precision = precision
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.unfreeze = unfreeze
        self.layer_decay = layer_decay
        self.l2sp = l2sp
        self.bn_statistics = bn_statistics
        self.time_budget = time_budget
        self.devices = devices
        self.num_nodes = num_nodes
        self.tta = tta
        self.cache_dir = cache_dir
        self.workdir = workdir
        self.resume = resume
        self.verbose = verbose

    # -- learning --------------------------------------------------------------------------------------------------
    def fit(self, X, y: Sequence | None = None, *, labels: Sequence | None = None) -> ImageClassifier:
        """Fit on a folder (``root/<class>/<image>``), a CSV of ``path,label``, or a list of paths with ``y``.

        ``labels=`` is accepted as another name for ``y``. Returns ``self``.
        """
        if labels is not None:
            if y is not None:
                raise BadInputError("Pass the labels once: either y= or labels=, not both.")
            y = labels
        if self.bn_statistics not in ("frozen", "train"):
            raise BadInputError(f"bn_statistics must be 'frozen' or 'train', got {self.bn_statistics!r}.")
        if self.strategy not in STRATEGIES:
            raise BadInputError(f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}.")
        data = read_images(X, y)
        check_trainable(data)
        spec = resolve(self.backbone)
        if self.input_size:
            spec = replace(spec, preprocessing=replace(spec.preprocessing, input_size=int(self.input_size)))
        ctx = FitContext(
            spec=spec, weights=str(self.weights) if self.weights else None, seed=self.seed,
            val_fraction=self.val_fraction, precision=self.precision, batch_size=self.batch_size,
            cache_dir=self.cache_dir, progress=self.verbose,
            train=TrainConfig(
                epochs=self.epochs or DEFAULT_EPOCHS.get(self.strategy, 1), lr=self.lr or DEFAULT_LR.get(self.strategy, 1e-3),
                batch_size=self.batch_size, precision=self.precision, devices=self.devices, num_nodes=self.num_nodes,
            ),
            unfreeze=_unfreeze(self.unfreeze), layer_decay=self.layer_decay, l2sp=self.l2sp,
            workdir=self.workdir, resume=self.resume, time_budget=self.time_budget, bn_statistics=self.bn_statistics,
        )
        classes = data.classes
        start = time.perf_counter()
        fitted = FITTERS[self.strategy](data, classes, ctx)
        fitted.metrics["fit_seconds"] = time.perf_counter() - start
        self._set_fitted(spec, spec.preprocessing, classes, fitted, self.strategy)
        if self.verbose:
            self._say(fitted.reason)
            if fitted.skipped:
                self._say(f"Skipped {len(fitted.skipped)} unreadable file(s):")
                for path, why in fitted.skipped[:10]:
                    self._say(f"  {path}: {why}")
        return self

    def _set_fitted(self, spec: ModelSpec, pre: Preprocessing, classes: list[str], fitted: Fitted, strategy: str) -> None:
        self.spec_ = spec
        self.preprocessing_ = pre
        self.classes_ = np.array(classes)
        self.network_ = fitted.network.eval()
        self.network_classes_ = fitted.network_classes
        self.head_ = fitted.head
        self.metrics_ = fitted.metrics
        self.skipped_ = fitted.skipped
        self.reason_ = fitted.reason
        self.strategy_ = strategy
        self._extractors = {}

    # -- predicting ------------------------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        self._check_fitted()
        proba, ok, skipped = self.predict_files(_paths(X))
        if skipped:
            listed = "; ".join(f"{p}: {why}" for p, why in skipped[:5])
            raise BadInputError(f"Cannot predict {len(skipped)} unreadable file(s): {listed}.")
        return proba

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X, y: Sequence | None = None, sample_weight=None) -> float:
        """Accuracy on labeled data: a folder or CSV with labels, or paths with ``y``."""
        data = read_images(X, y)
        if data.labels is None:
            raise BadInputError("score needs labels: pass a folder of class subfolders, a CSV with labels, or y=.")
        return float(np.mean(self.predict(list(data.paths)) == np.array(data.labels)))

    def predict_files(self, paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, str]]]:
        """Probabilities for the readable files, a mask of which were readable, and why the others were not."""
        self._check_fitted()
        extraction = self._get_extractor().extract(paths, description="Predicting")
        proba = self._proba(extraction.features)
        if self.tta:
            mirrored = self._get_extractor(mirror=True).extract(paths, description="Predicting (mirrored)")
            proba = (proba + self._proba(mirrored.features)) / 2
        return proba, extraction.ok, extraction.skipped

    def _proba(self, outputs: np.ndarray) -> np.ndarray:
        if self.head_ is not None:
            return self.head_.predict_proba(outputs)
        return torch.softmax(torch.from_numpy(outputs).double(), dim=1).numpy()

    def _get_extractor(self, mirror: bool = False) -> FeatureExtractor:
        extractors = self.__dict__.setdefault("_extractors", {})
        if mirror not in extractors:
            extractors[mirror] = FeatureExtractor(
                self.network_, self.preprocessing_, model_key(self.spec_, self.network_),
                precision=self.metrics_.get("precision", self.precision), batch_size=self.batch_size,
                cache_dir=self.cache_dir, use_cache=self.head_ is not None, progress=self.verbose, mirror=mirror,
            )
        return extractors[mirror]

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet. Call fit(data) first, or load a model "
                                 "with ImageClassifier.load(path).")

    # -- saving ----------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (JSON + safetensors), atomically. In a distributed run only rank 0 writes."""
        self._check_fitted()
        if not is_primary_process():
            return Path(path)
        spec = self.spec_
        config = {
            "task": TASK,
            "strategy": self.strategy_,
            "classes": self.classes_.tolist(),
            "backbone": {"name": spec.name, "family": spec.family, "arch": spec.arch, "source": spec.source,
                         "classifier": spec.classifier, "weights_file": self.weights and str(self.weights)},
            "preprocessing": self.preprocessing_.to_dict(),
            "network_classes": self.network_classes_,
            "head": self.head_.config() if self.head_ is not None else None,
            "params": {k: v for k, v in self.get_params().items()
                       if k not in ("verbose", "cache_dir", "workdir", "resume", "devices", "num_nodes")},
            "metrics": _jsonable(self.metrics_),
            "reason": self.reason_,
            "skipped": [[str(p), why] for p, why in self.skipped_],
        }
        tensors = {f"network.{k}": v for k, v in self.network_.state_dict().items()}
        if self.head_ is not None:
            tensors |= {k: torch.from_numpy(v) for k, v in self.head_.to_tensors().items()}
        return _bundle.save_bundle(path, config, tensors)

    @classmethod
    def load(cls, path: str | Path, **overrides) -> ImageClassifier:
        """Rebuild a saved model; it predicts exactly as the one that was saved."""
        config, tensors = _bundle.load_bundle(path)
        if config.get("task") != TASK:
            raise BadInputError(f"{path} holds a {config.get('task')!r} model, not an image classifier.")
        params = {**config["params"], **overrides}
        model = cls(**params)
        b = config["backbone"]
        pre = Preprocessing.from_dict(config["preprocessing"])
        spec = ModelSpec(name=b["name"], family=b["family"], arch=b["arch"], preprocessing=pre, feature_dim=None,
                         source=b["source"], classifier=b["classifier"])
        network = create_backbone(spec, pretrained=False, num_classes=int(config["network_classes"]))
        state = {k.removeprefix("network."): v for k, v in tensors.items() if k.startswith("network.")}
        network.load_state_dict(state, strict=True)
        head = None
        if config["head"] is not None:
            arrays = {k: v.numpy() for k, v in tensors.items() if k.startswith("head.")}
            head = LinearHead.from_tensors(arrays, config["head"])
        fitted = Fitted(network, head, int(config["network_classes"]), config["metrics"],
                        [(Path(p), why) for p, why in config.get("skipped", [])], config.get("reason", ""))
        model._set_fitted(spec, pre, config["classes"], fitted, config["strategy"])
        return model

    def _say(self, message: str) -> None:
        print(message, file=sys.stderr)


def _unfreeze(value: int | str) -> int | str:
    if value == "all":
        return "all"
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadInputError(f"unfreeze must be a number of top stages or 'all', got {value!r}.") from None
    if n < 0:
        raise BadInputError(f"unfreeze must be at least 0 (0 trains only the new head), got {n}.")
    return n


def _paths(X) -> list[Path]:
    if isinstance(X, (str, Path)):
        data: LabeledImages = read_images(X)
        return list(data.paths)
    return [Path(p) for p in X]


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


TEXT_TASK = "text-classification"


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Reuse a pretrained text encoder (or word vectors) on a new, small labeled set of texts.

    Parameters
    ----------
    encoder: a zoo name (default ``all-MiniLM-L6-v2``, offline), a Hugging Face model name, a local model folder, or
        a word-vector file (GloVe text, word2vec binary or text, fastText ``.vec``).
    strategy: ``"auto"`` (measures, chooses and says why), ``"features"`` (frozen embeddings + logistic regression),
        ``"finetune"`` (contrastive tuning on pairs from the labels, as SetFit does, then the head) or ``"scratch"``
        (TF-IDF + logistic regression, no transfer).
    long_text: ``"truncate"`` (keep the first ``max_tokens`` tokens of the encoder's window) or ``"chunk"`` (average
        the embeddings of every window).
    rounds, epochs, lr, train_tokens: contrastive tuning: pairs per text = 2 x rounds; the window while training.
    refit: ``finetune`` validates a copy of the encoder tuned on the training split, then tunes the final encoder on
        every label (twice the time; ``False`` keeps the first one).
    text_column, label_column: columns of a CSV / JSONL (auto-detected when ``None``).
    Other parameters as for :class:`ImageClassifier`.
    """

    def __init__(
        self,
        encoder: str = DEFAULT_TEXT_ENCODER,
        strategy: str = "auto",
        *,
        seed: int = 0,
        val_fraction: float = 0.2,
        precision: str = "auto",
        batch_size: int = 32,
        long_text: str = "truncate",
        rounds: int = 5,
        epochs: int = 1,
        lr: float = 2e-5,
        train_tokens: int = 128,
        refit: bool = True,
        time_budget: float | None = None,
        text_column: str | None = None,
        label_column: str | None = None,
        cache_dir: str | None = None,
        verbose: bool = True,
    ) -> None:
        self.encoder = encoder
        self.strategy = strategy
        self.seed = seed
        self.val_fraction = val_fraction
        self.precision = precision
        self.batch_size = batch_size
        self.long_text = long_text
        self.rounds = rounds
        self.epochs = epochs
        self.lr = lr
        self.train_tokens = train_tokens
        self.refit = refit
        self.time_budget = time_budget
        self.text_column = text_column
        self.label_column = label_column
        self.cache_dir = cache_dir
        self.verbose = verbose

    def fit(self, X, y: Sequence | None = None, *, labels: Sequence | None = None) -> TextClassifier:
        """Fit on a CSV / TSV / JSONL file, a folder of ``<class>/*.txt``, or a list of texts with ``y``."""
        from .data import check_trainable, read_texts
        from .text_strategies import TEXT_FITTERS, TextFitContext

        if labels is not None:
            if y is not None:
                raise BadInputError("Pass the labels once: either y= or labels=, not both.")
            y = labels
        if self.strategy not in TEXT_FITTERS:
            raise BadInputError(f"strategy must be one of {', '.join(TEXT_FITTERS)}; got {self.strategy!r}.")
        if self.long_text not in ("truncate", "chunk"):
            raise BadInputError(f"long_text must be 'truncate' or 'chunk', got {self.long_text!r}.")
        data = read_texts(X, y, text_column=self.text_column, label_column=self.label_column, require_labels=True)
        check_trainable(data, where=data.origin, noun="text")
        if self.verbose:
            print(f"Text data: {len(data)} texts in {len(data.classes)} classes from {data.origin}", file=sys.stderr)
        spec = resolve_text_encoder(self.encoder) if self.strategy != "scratch" else None
        ctx = TextFitContext(
            encoder=spec, seed=self.seed, val_fraction=self.val_fraction, precision=self.precision,
            batch_size=self.batch_size, cache_dir=self.cache_dir, progress=self.verbose, long_text=self.long_text,
            contrastive=ContrastiveConfig(rounds=self.rounds, epochs=self.epochs, lr=self.lr,
                                          max_tokens=self.train_tokens, precision=_train_precision(self.precision)),
            time_budget=self.time_budget, refit=self.refit,
        )
        classes = data.classes
        start = time.perf_counter()
        fitted = TEXT_FITTERS[self.strategy](data, classes, ctx)
        fitted.metrics["fit_seconds"] = time.perf_counter() - start
        fitted.metrics["n_texts"] = len(data)
        self._set_fitted(spec, classes, fitted, self.strategy, list(data.notes))
        if self.verbose:
            for note in data.notes:
                print(f"Note: {data.origin}: {note}.", file=sys.stderr)
            print(fitted.reason, file=sys.stderr)
        return self

    def _set_fitted(self, spec, classes, fitted, strategy: str, notes: list[str]) -> None:
        self.spec_ = spec
        self.classes_ = np.array(classes)
        self.encoder_ = fitted.encoder
        self.head_ = fitted.head
        self.vectorizer_ = fitted.vectorizer
        self.tuned_ = fitted.tuned
        self.metrics_ = fitted.metrics
        self.reason_ = fitted.reason
        self.strategy_ = strategy
        self.notes_ = notes

    # -- predicting ------------------------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for a list of texts (or a file / folder of texts), columns in ``classes_`` order."""
        self._check_fitted()
        texts = self._texts(X)
        if self.vectorizer_ is not None:
            return self.head_.predict_proba(self.vectorizer_.transform(texts))
        return self.head_.predict_proba(self.embed(texts))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The features the head sees: the (possibly tuned) encoder's embeddings of ``texts``."""
        from .features import TextFeatureExtractor

        self._check_fitted()
        if self.encoder_ is None:
            raise BadInputError("This model uses TF-IDF (strategy scratch); it has no encoder to embed with.")
        extractor = TextFeatureExtractor(
            self.encoder_, long_text=self.long_text, precision=self.metrics_.get("precision", self.precision),
            batch_size=self.batch_size, cache_dir=self.cache_dir, use_cache=not self.tuned_,
            progress=self.verbose and len(texts) > 256,
        )
        return extractor.extract(list(texts), description="Predicting").features

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def predict_files(self, X) -> tuple[np.ndarray, np.ndarray, list]:
        """Same shape as ImageClassifier.predict_files: every text is readable, so nothing is skipped."""
        proba = self.predict_proba(X)
        return proba, np.ones(len(proba), dtype=bool), []

    def score(self, X, y: Sequence | None = None, sample_weight=None) -> float:
        from .data import read_texts

        data = read_texts(X, y, text_column=self.text_column, label_column=self.label_column, require_labels=True)
        return float(np.mean(self.predict(list(data.texts)) == np.array(data.labels)))

    def _texts(self, X) -> list[str]:
        from .data import read_texts

        if isinstance(X, (str, Path)):
            if not Path(X).exists():
                raise BadInputError(f"{X!s:.60} is not a file or folder. To classify texts, pass a list of strings: "
                                    "predict([text, ...]).")
            return list(read_texts(X, text_column=self.text_column, label_column=self.label_column).texts)
        texts = ["" if t is None else str(t) for t in X]
        return texts

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet. Call fit(data) first, or load a model "
                                 "with TextClassifier.load(path).")

    # -- saving ----------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (JSON + safetensors), atomically; a tuned encoder's weights are included."""
        self._check_fitted()
        config = {
            "task": TEXT_TASK,
            "strategy": self.strategy_,
            "classes": self.classes_.tolist(),
            "encoder": None if self.spec_ is None else {**self.spec_.to_dict(), "tuned": bool(self.tuned_),
                                                        "digest": self.encoder_.digest() if not self.tuned_ else None},
            "head": self.head_.config(),
            "vectorizer": None,
            "params": {k: v for k, v in self.get_params().items() if k not in ("verbose", "cache_dir")},
            "metrics": _jsonable(self.metrics_),
            "reason": self.reason_,
            "notes": self.notes_,
        }
        tensors = {k: torch.from_numpy(v) for k, v in self.head_.to_tensors().items()}
        if self.vectorizer_ is not None:
            vocab = sorted(self.vectorizer_.vocabulary_, key=self.vectorizer_.vocabulary_.get)
            config["vectorizer"] = {"kind": "tfidf", "params": _vectorizer_params(self.vectorizer_),
                                    "vocabulary": vocab}
            tensors["tfidf.idf"] = torch.from_numpy(np.asarray(self.vectorizer_.idf_, dtype=np.float64))
        if self.tuned_:
            tensors |= {f"encoder.{k}": v for k, v in self.encoder_.state_dict().items()}
        return _bundle.save_bundle(path, config, tensors)

    @classmethod
    def load(cls, path: str | Path, **overrides) -> TextClassifier:
        """Rebuild a saved model; it predicts exactly as the one that was saved."""
        from .text_strategies import TextFitted, make_vectorizer
        from .zoo import TextEncoderSpec, load_text_encoder

        config, tensors = _bundle.load_bundle(path)
        if config.get("task") != TEXT_TASK:
            raise BadInputError(f"{path} holds a {config.get('task')!r} model, not a text classifier.")
        model = cls(**{**config["params"], **overrides})
        head = LinearHead.from_tensors({k: v.numpy() for k, v in tensors.items() if k.startswith("head.")},
                                       config["head"])
        spec = encoder = vectorizer = None
        if config.get("encoder"):
            spec = TextEncoderSpec.from_dict(config["encoder"])
            if spec.source == "vectors" and not Path(spec.path).is_file():
                raise BadInputError(f"{path} uses the word vectors in {spec.path}, which is missing. Put the file "
                                    "back there, or refit with the vectors' new location.")
            encoder = load_text_encoder(spec)
            if config["encoder"].get("tuned"):
                encoder.load_state_dict({k.removeprefix("encoder."): v for k, v in tensors.items()
                                         if k.startswith("encoder.")})
            elif config["encoder"].get("digest") and encoder.digest() != config["encoder"]["digest"]:
                raise BadInputError(f"The encoder {spec.name} ({spec.path or spec.hub_id or spec.package}) is not the "
                                    f"one {path} was fitted with: its weights changed. Refit the model.")
        if config.get("vectorizer"):
            vectorizer = make_vectorizer().set_params(**config["vectorizer"]["params"])
            vectorizer.vocabulary_ = {w: i for i, w in enumerate(config["vectorizer"]["vocabulary"])}
            vectorizer.idf_ = tensors["tfidf.idf"].numpy()
        fitted = TextFitted(encoder, head, vectorizer, bool(config["encoder"] and config["encoder"].get("tuned")),
                            config["metrics"], config.get("reason", ""))
        model._set_fitted(spec, config["classes"], fitted, config["strategy"], config.get("notes", []))
        return model


def _train_precision(precision: str) -> str:
    from .features import resolve_precision

    return resolve_precision(precision, torch.device("cpu"))


def _vectorizer_params(vectorizer) -> dict:
    keep = ("ngram_range", "sublinear_tf", "min_df", "max_features", "strip_accents", "lowercase", "norm", "use_idf",
            "smooth_idf")
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vectorizer.get_params().items() if k in keep}


def load_model(path: str | Path, **overrides) -> ImageClassifier | TextClassifier:
    """Load any transferkit model folder as the estimator that wrote it."""
    config, _ = _bundle.read_config(path)
    if config.get("task") == TEXT_TASK:
        overrides.pop("tta", None)  # images only
        return TextClassifier.load(path, **overrides)
    return ImageClassifier.load(path, **overrides)


def pretrain(data, name: str, *, base: str = DEFAULT_BACKBONE, from_scratch: bool = False, epochs: int | None = None,
             lr: float | None = None, batch_size: int = 32, input_size: int | None = None, seed: int = 0,
             overwrite: bool = False, verbose: bool = True) -> tuple[ImageClassifier, Path]:
    """Train a network on a data-rich source task and register it in the local zoo as ``name``.

    ``from_scratch`` trains ``base``'s architecture from random weights; otherwise every layer of the pretrained
    ``base`` is fine-tuned. Afterwards ``ImageClassifier(backbone=name)`` (or ``--model NAME``) reuses it with
    every strategy. Returns the fitted source classifier and the zoo entry's folder.
    """
    import copy

    from .zoo import register_local_model, set_num_classes

    clf = ImageClassifier(backbone=base, strategy="scratch" if from_scratch else "finetune", unfreeze="all",
                          epochs=epochs, lr=lr, batch_size=batch_size, input_size=input_size, seed=seed,
                          verbose=verbose).fit(data)
    network = copy.deepcopy(clf.network_)
    set_num_classes(network, clf.spec_, 0)
    trained_on = {"data": str(data), "classes": clf.classes_.tolist(), "n_classes": len(clf.classes_),
                  "n_images": int(clf.metrics_["n_train"] + clf.metrics_["n_val"]),
                  "how": "from scratch" if from_scratch else f"fine-tuned from {clf.spec_.name}",
                  "val_accuracy": clf.metrics_["val_accuracy"], "epochs_run": clf.metrics_.get("epochs_run")}
    folder = register_local_model(name, network, clf.spec_, clf.preprocessing_, trained_on, overwrite=overwrite)
    return clf, folder
