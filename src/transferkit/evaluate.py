"""Metrics of a fitted classifier on labeled data: accuracy, macro-F1, per-class report, confusion matrix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .data import read_images
from .errors import BadInputError


@dataclass
class Evaluation:
    classes: list[str]
    accuracy: float
    macro_f1: float
    per_class: list[dict]
    confusion_matrix: list[list[int]]
    n_images: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(model, data, labels=None) -> Evaluation:
    """Score ``model`` on a labeled folder, CSV, or paths with ``labels``; unreadable files are listed, not scored."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    images = read_images(data, labels)
    if images.labels is None:
        raise BadInputError(f"{data} has no labels to evaluate against. Use one subfolder per class, or a CSV with a label column.")
    classes = [str(c) for c in model.classes_]
    unknown = sorted(set(images.labels) - set(classes))
    if unknown:
        raise BadInputError(
            f"{data} has classes the model was not trained on: {', '.join(unknown[:5])}. "
            f"The model knows: {', '.join(classes)}."
        )
    proba, ok, skipped = model.predict_files(list(images.paths))
    if not ok.any():
        raise BadInputError(f"None of the {len(images)} images in {data} could be read.")
    y_true = np.array([classes.index(c) for c, keep in zip(images.labels, ok) if keep])
    y_pred = proba.argmax(1)
    idx = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    per_class = [
        {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support)
    ]
    return Evaluation(
        classes=classes,
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=idx, average="macro", zero_division=0)),
        per_class=per_class,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        n_images=int(ok.sum()),
        skipped=[(str(Path(p)), why) for p, why in skipped],
    )
