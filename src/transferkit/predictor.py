"""What a model folder loads into: a featurizer, a head and the classes, with the settings of how to run them.

A :class:`Predictor` is the whole of inference: reading what a user passes (files, folders, tables, in-memory
images, texts), extracting (cached for frozen featurizers), the head, test-time augmentation. The estimators fit and
hand their fitted parts to a Predictor; ``transferkit predict`` and ``evaluate`` load one directly, which imports no
scikit-learn estimator and no Lightning, so they start fast; a server or an exported model builds on the same object.

Inference settings are defined here, once, with their defaults and checks (``SETTINGS``); the estimators' constructors
take their defaults from this table, and a model folder stores them apart from what happened at fit (its report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import TASKS as TASKS
from .data.labeled import Labeled
from .errors import BadInputError, BundleError, NotFittedError
from .fitreport import FitReport


def _column(value) -> bool:
    return value is None or (isinstance(value, str) and 0 < len(value) < 256)


# setting: (default, check, what it must be), per modality
SETTINGS: dict[str, dict[str, tuple[Any, Any, str]]] = {
    "image": {
        "batch_size": (32, lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096,
                       "a number from 1 to 4096"),
        "precision": ("auto", lambda v: v in ("auto", "bf16", "fp32"), "auto, bf16 or fp32"),
        "tta": (False, lambda v: isinstance(v, bool), "true or false"),
        "path_column": (None, _column, "a column name"),
        "label_column": (None, _column, "a column name"),
    },
    "text": {
        "batch_size": (32, lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096,
                       "a number from 1 to 4096"),
        "precision": ("auto", lambda v: v in ("auto", "bf16", "fp32"), "auto, bf16 or fp32"),
        "long_text": ("truncate", lambda v: v in ("truncate", "chunk"), "truncate or chunk"),
        "text_column": (None, _column, "a column name"),
        "label_column": (None, _column, "a column name"),
    },
}


def default(modality: str, setting: str):
    """The default of an inference setting (the estimators' constructors read theirs from here)."""
    return SETTINGS[modality][setting][0]


def check_settings(modality: str, settings: dict, where: str = "the settings", error=BadInputError) -> dict:
    """Every setting of the modality, each checked, defaults for the missing ones; unknown keys are an error."""
    table = SETTINGS[modality]
    unknown = sorted(set(settings) - set(table))
    if unknown:
        raise BadInputError(f"{', '.join(unknown)} do{'es' if len(unknown) == 1 else ''} not apply to {modality} "
                            f"models; their settings are {', '.join(table)}.")
    out = {}
    for key, (fallback, ok, what) in table.items():
        value = settings.get(key, fallback)
        if not ok(value):
            raise error(f"{where}: {key} {value!r} must be {what}.")
        out[key] = value
    return out


class Inference:
    """What every loaded model shares, whatever runs it (PyTorch here, ONNX Runtime in ``onnx_runtime``): reading
    what a user passes as the model was fitted, and probabilities and labels from ``predict_items``. Subclasses set
    ``modality``, ``classes`` and ``settings`` and define ``predict_items``."""

    modality: str
    classes: np.ndarray
    settings: dict
    runtime: str  # what runs it: "torch" or "onnx"
    graph: str | None = None  # ONNX Runtime: the export's graph file it runs (float32 or int8)
    report: FitReport  # what happened at fit: the estimate and the temperature label_free reads
    head: Any  # what open-set scores read (``openset``), with the features ``_run`` gives
    open_set: Any = None  # an ``openset.OpenSet``: whether an item belongs to any trained class
    target: Any = None  # what a label is: {"kind": "class" | "labels" | "number", ...} (``targets``); None: class

    @property
    def noun(self) -> str:
        return self.modality

    @property
    def kind(self) -> str:
        """``class`` (one class per item), ``labels`` (several per item) or ``number``."""
        return (self.target or {}).get("kind", "class")

    @property
    def thresholds(self) -> np.ndarray:
        """Several labels per item: the probability at which each label is given."""
        return np.asarray(self.target["thresholds"], dtype=np.float64)

    def describe(self, row: np.ndarray, top: int = 1) -> dict:
        """One item's answer as every surface shows it (``predict --json``, the server, the app), from its row of
        ``predict_items``: ``label``, ``probability`` and the ``top`` classes; several labels: ``labels`` (those at or
        above their threshold) and each label's probability; a number: ``value``."""
        names = self.classes.tolist()
        if self.kind == "number":
            return {"value": self.answers(row[None])[0]}
        if self.kind == "labels":
            return {"labels": list(self.answers(row[None])[0]),
                    "probabilities": {str(n): float(p) for n, p in zip(names, row)}}
        order = np.argsort(-row, kind="stable")[:max(top, 1)]
        return {"label": names[order[0]], "probability": float(row[order[0]]),
                "top": [{"label": names[i], "probability": float(row[i])} for i in order]}

    def answers(self, outputs: np.ndarray) -> list:
        """What the model says of each item, from ``predict_items``' rows: a class, a tuple of labels, a number."""
        if self.kind == "number":
            return [float(v) for v in outputs[:, 0]]
        if self.kind == "labels":
            return [tuple(self.classes[row >= self.thresholds].tolist()) for row in outputs]
        return self.classes[outputs.argmax(axis=1)].tolist()

    def predict_items(self, items: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
        """Probabilities for the readable items, a mask of which were readable, and why the others were not."""
        proba, ok, skipped, _ = self._run(items)
        return proba, ok, skipped

    def _run(self, items: Sequence) -> tuple[np.ndarray, np.ndarray, list, Any]:
        """``predict_items`` and the readable items' features (what open-set scores read; None where there are
        none): what a runtime defines."""
        raise NotImplementedError

    def read(self, X, y: Sequence | None = None, *, require_labels: bool = False) -> Labeled:
        """What a user passes, as labeled items, read as the model was fitted (the same table columns)."""
        return read(self.modality, X, y, require_labels=require_labels, several_labels=self.kind == "labels", **{
            k: v for k, v in self.settings.items() if k.endswith("_column")})

    def items(self, X) -> list:
        if self.modality == "text" and isinstance(X, (str, Path)) and not Path(X).exists():
            raise BadInputError(f"{X!s:.60} is not a file or folder. To classify texts, pass a list of strings: "
                                "predict([text, ...]).")
        return list(self.read(X).items)

    def predict_proba(self, X) -> np.ndarray:
        if self.kind == "number":
            raise BadInputError("A model of numbers gives numbers, not probabilities: use predict.")
        return self._outputs(X)

    def _outputs(self, X) -> np.ndarray:
        proba, _, skipped = self.predict_items(self.items(X))
        if skipped:
            listed = "; ".join(f"{p}: {why}" for p, why in skipped[:5])
            raise BadInputError(f"Cannot predict {len(skipped)} unreadable input(s): {listed}.")
        return proba

    def predict(self, X, *, reject=None, unknown: str = "unknown") -> np.ndarray:
        """The most probable class of each item. ``reject``: ``"auto"`` or the share of items from the trained
        classes that may be rejected (``openset.rejection_rate``); an item that belongs to none of them gets
        ``unknown``."""
        from .openset import rejection_rate

        rate = rejection_rate(reject)
        if rate is None and self.kind != "class":
            return as_array(self.answers(self._outputs(X)))
        if rate is None:
            return self.classes[self.predict_proba(X).argmax(axis=1)]
        proba, known, _, ok, skipped = self.predict_open(self.items(X), rate)
        if skipped:
            raise BadInputError(f"Cannot predict {len(skipped)} unreadable input(s): "
                                + "; ".join(f"{p}: {why}" for p, why in skipped[:5]) + ".")
        labels = self.classes[proba.argmax(axis=1)].astype(object)
        labels[~known] = unknown
        return labels

    def predict_scored(self, items: Sequence) -> tuple[np.ndarray, np.ndarray, list, np.ndarray | None]:
        """``predict_items`` and each readable item's open-set score (``openset``; None for a model without an
        open-set part)."""
        proba, ok, skipped, features = self._run(items)
        if self.open_set is None:
            return proba, ok, skipped, None
        return proba, ok, skipped, (self.open_set.known_scores(self.head, features) if ok.any() else np.zeros(0))

    def predict_open(self, items: Sequence, rate: float | None) -> tuple[np.ndarray, np.ndarray | None,
                                                                         np.ndarray | None, np.ndarray, list]:
        """Probabilities, which items belong to a trained class at rejection rate ``rate`` (None: no rejection, no
        answer), their open-set scores (None for a model without them), the readable mask and why the others were
        not readable."""
        self.check_reject(rate)
        proba, ok, skipped, scores = self.predict_scored(items)
        if rate is None:
            return proba, None, scores, ok, skipped
        if scores is None:
            raise BadInputError(NO_OPEN_SET)
        return proba, self.open_set.is_known(scores, rate), scores, ok, skipped

    def answer(self, items: Sequence, top: int = 1, rate: float | None = None, unknown: str = "unknown"):
        """What ``predict`` tells of each readable item (``describe``; with a rejection rate, the ``unknown`` label
        for an item of no trained class, ``known`` and its ``known_score``), with the probabilities, open-set scores,
        readable mask and unreadable items of ``predict_open``."""
        proba, accepted, scores, ok, skipped = self.predict_open(items, rate)
        answers = [self.describe(p, top) for p in proba]
        if accepted is not None and scores is not None:
            for a, known, score in zip(answers, accepted, scores):
                a.update({"label": a["label"] if known else unknown, "known": bool(known),
                          "known_score": float(score)})
        return answers, proba, scores, ok, skipped

    def check_reject(self, rate: float | None) -> None:
        """Refuse, before any work, to reject with a model that records no open-set part."""
        if rate is not None and self.kind != "class":
            raise BadInputError("Rejecting items of no trained class is for models of one class per item; this model "
                                f"predicts {'several labels' if self.kind == 'labels' else 'numbers'}.")
        if rate is not None and self.open_set is None:
            raise BadInputError(NO_OPEN_SET)

    def estimate_accuracy(self, X) -> dict | None:
        """This model's accuracy on unlabeled ``X``, read from its confidence (``evaluate.label_free_estimate``):
        the estimate, the number of items, the fit's estimate and ``below_fit`` (these items look unlike the
        training ones). None for a model that records no temperature, or for fewer than 20 items."""
        return self.label_free(self.predict_proba(X))

    def label_free(self, proba) -> dict | None:
        """``evaluate.label_free_estimate`` of probabilities this model gave (one class per item only)."""
        if self.kind != "class":
            return None
        from .evaluate import calibrated_confidences, label_free_estimate

        return label_free_estimate(calibrated_confidences(proba, self.report.temperature), self.report.estimate)


@dataclass
class Predictor(Inference):
    runtime = "torch"
    modality: str
    featurizer: Any
    head: Any
    classes: np.ndarray
    settings: dict
    report: FitReport = field(default_factory=FitReport)  # what happened at fit
    cache_dir: str | None = None
    verbose: bool = False
    use_cache: bool = True  # cache features of frozen featurizers on disk (a server turns it off)
    open_set: Any = None  # an ``openset.OpenSet``: whether an item belongs to any trained class
    target: Any = None  # what a label is (``targets``): {"kind": ..., "separator": ..., "thresholds": ...}

    @property
    def train_digests(self) -> list[str]:
        return list(self.report.train_digests)

    def item_key(self, item) -> str:
        """An item's content digest (data hygiene: duplicates, copies of training items)."""
        return self.featurizer.item_key(item)

    # -- predicting --------------------------------------------------------------------------------------------------
    def _run(self, items: Sequence):
        from .features import extract

        items = list(items)
        options = {"batch_size": self.settings["batch_size"], "cache_dir": self.cache_dir,
                   "use_cache": self.use_cache and not self.featurizer.tuned}
        extraction = extract(self.featurizer, items, progress=self.verbose and len(items) > 256,
                             description="Predicting", **options)
        if not extraction.ok.any():  # nothing readable: no rows to predict, and no row of the wrong width
            return np.zeros((0, len(self.classes))), extraction.ok, extraction.skipped, None
        proba = self.head.predict_proba(extraction.features)
        if self.settings.get("tta"):  # the mirror image's probabilities, averaged in
            kept = [item for item, ok in zip(items, extraction.ok) if ok]
            mirrored = extract(self.featurizer.with_view("mirror"), kept, **options)
            proba = (proba + self.head.predict_proba(mirrored.features)) / 2
        return proba, extraction.ok, extraction.skipped, extraction.features

    # -- loading -----------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, modality: str | None = None, cache_dir: str | None = None,
             verbose: bool = False, **settings) -> Predictor:
        """A model folder (this format or transferkit 0.1's) ready to predict. Only inference settings are read from
        it, each checked; ``settings`` override them (``tta=True``, ``precision="fp32"``)."""
        from .bundle import load_model_parts
        from .share import local_model_path

        path = local_model_path(path)  # hf://OWNER/NAME: the hub's files, from its cache or downloaded
        document, components, report = load_model_parts(path)
        found = document.get("modality")
        if found not in TASKS:
            raise BundleError(f"{path}: unknown modality {found!r} in the model description.")
        if modality is not None and found != modality:
            raise BadInputError(f"{path} holds a {found} model; load it with "
                                f"{'ImageClassifier' if found == 'image' else 'TextClassifier'}, or with "
                                "transferkit.load_model, which picks the class.")
        stored = {k: v for k, v in (document.get("inference") or {}).items() if k in SETTINGS[found]}
        stored = check_settings(found, stored, str(path), BundleError)
        merged = check_settings(found, {**stored, **settings}, "the settings given")
        featurizer, head, open_set = _components(components, path, found, merged["precision"])
        target = check_target(document.get("target"), document.get("classes"), head.output, head.coef.shape[0], path)
        if target["kind"] == "class":
            _check_classes(document.get("classes"), head, components["head"][0], path)
        return cls(found, featurizer, head, np.array(document["classes"]), merged, FitReport.from_dict(report),
                   cache_dir, verbose, open_set=open_set, target=target)


def read(modality: str, X, y: Sequence | None = None, *, require_labels: bool = False, text_column: str | None = None,
         path_column: str | None = None, label_column: str | None = None, several_labels: bool = False) -> Labeled:
    """Labeled items of a modality from what a user passes (files, folders, tables, DataFrames, lists);
    ``several_labels``: an image table may list an image once per label."""
    from .data import read_images, read_texts

    if modality == "text":
        return read_texts(X, y, text_column=text_column, label_column=label_column, require_labels=require_labels)
    data = read_images(X, y, path_column=path_column, label_column=label_column, several_labels=several_labels)
    if require_labels and data.labels is None:
        raise BadInputError(f"{data.origin} has no labels: pass a folder of class subfolders, a table with a label "
                            "column, or y=.")
    return data


def _components(components: dict, path, modality: str, precision: str):
    from .featurizers import load_featurizer
    from .heads import LinearHead

    if set(components) - {"open_set"} != {"featurizer", "head"}:
        raise BundleError(f"{path} lists components {sorted(components)}; this transferkit reads a featurizer, "
                          "a head and an optional open_set.")
    featurizer = load_featurizer(*components["featurizer"], precision=precision)
    if featurizer.modality != modality:
        raise BundleError(f"{path}: its featurizer reads {featurizer.modality}s, but the folder says it is a "
                          f"{modality} model. The folder was edited or is damaged.")
    head_config, head_tensors = components["head"]
    if head_config.get("kind") != LinearHead.kind:
        raise BundleError(f"{path}: unknown head kind {head_config.get('kind')!r}.")
    head = LinearHead.load(head_config, head_tensors)
    dim = featurizer.dim
    if dim and head.n_features != dim:
        raise BundleError(f"{path}: the head takes {head.n_features} features but the featurizer "
                          f"({featurizer.name}) gives {dim}. The folder was edited or is damaged; refit the model.")
    open_set = None
    if "open_set" in components:
        from .openset import OpenSet

        config, tensors = components["open_set"]
        if config.get("kind") != OpenSet.kind:
            raise BundleError(f"{path}: unknown open-set kind {config.get('kind')!r}.")
        open_set = OpenSet.load(config, tensors)
        if open_set.bank is not None and open_set.bank.shape[1] != head.n_features:
            raise BundleError(f"{path}: the open-set part does not fit the head (the folder was edited or is "
                              "damaged); refit the model.")
    return featurizer, head, open_set


NO_OPEN_SET = ("This model cannot tell items of no trained class: it records no open-set part (a model folder from "
               "before transferkit 0.6, or an ONNX export from before 0.7). Refit it with this transferkit, or export "
               "it again.")


def as_array(answers: list) -> np.ndarray:
    """Answers as an array: floats, or objects (one tuple of labels per item stays one element)."""
    if answers and isinstance(answers[0], float):
        return np.asarray(answers, dtype=np.float64)
    out = np.empty(len(answers), dtype=object)
    for i, answer in enumerate(answers):
        out[i] = answer
    return out


def check_target(target, classes, output: str, n_outputs: int, path) -> dict:
    """A model folder's (or an export's) target, checked against its head's ``output`` and number of outputs: one
    class per item (a folder from before 0.7 names none), several labels with a threshold each, or a number."""
    if target is None:
        target = {"kind": "class"}
    kind = target.get("kind") if isinstance(target, dict) else None
    outputs = {"class": "softmax", "labels": "sigmoid", "number": "identity"}
    if kind not in outputs or output != outputs[kind]:
        raise BundleError(f"{path}: the model's target {target!r} does not match its head ({output}); the "
                          "folder was edited or is damaged. Refit the model.")
    if kind == "labels":
        thresholds = target.get("thresholds")
        if not isinstance(classes, list) or len(classes) < 2 or len(set(map(repr, classes))) != len(classes) or not (
                isinstance(thresholds, list) and len(thresholds) == len(classes) == n_outputs
                and all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 1
                        for t in thresholds)):
            raise BundleError(f"{path}: the labels, their thresholds and the head do not fit together (the folder was "
                              "edited or is damaged). Refit the model.")
    if kind == "number" and (classes != [] or n_outputs != 1):
        raise BundleError(f"{path}: a model of numbers names no classes and has one output; this folder does not "
                          "fit that (it was edited or is damaged). Refit the model.")
    return dict(target)


def _check_classes(classes, head, head_config: dict, path) -> None:
    """The class list must be distinct names (or whole numbers), as many as the head predicts, and in the order the
    head learned them: an edited list would otherwise predict wrong labels without a word."""
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


def not_fitted(name: str) -> NotFittedError:
    return NotFittedError(f"This {name} is not fitted yet. Call fit(data) first, or load a model with "
                          f"{name}.load(path).")
