"""What every reader returns, whatever the modality: items (image paths or texts) with their labels, and the rules
that turn labeled items into a training split. Written once, used by both classifiers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadInputError

VAL_FRACTION = 0.2
VAL_FRACTION_MANY = 0.1  # from VAL_MANY_PER_CLASS labels in every class: training needs the examples more then
VAL_MANY_PER_CLASS = 50


@dataclass(frozen=True)
class Labeled:
    """Parallel tuples of items and labels (``labels`` is ``None`` for unlabeled data to predict).

    ``origin`` names what the user passed, for messages; ``notes`` says what reading left out or repaired.
    """

    items: tuple
    labels: tuple | None  # class names or whole numbers; tuples of them (several labels); floats (numbers)
    origin: str = "the data"
    notes: tuple[str, ...] = field(default=())

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels or ()))

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, keep: Sequence[int] | np.ndarray) -> Labeled:
        keep = [int(i) for i in keep]
        return Labeled(tuple(self.items[i] for i in keep),
                       tuple(self.labels[i] for i in keep) if self.labels is not None else None,
                       self.origin, self.notes)

    def targets(self, classes: Sequence[str]) -> np.ndarray:
        """Labels as indices into ``classes``."""
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[c] for c in self.labels or ()], dtype=int)


def normalise_labels(values, origin: str, allow_missing: bool = False) -> tuple:
    """Labels as the user gave them, checked: names, whole numbers, numbers with a fraction (a model of numbers) or a
    list of names per item (several labels), all of one type (``1`` and ``"1"`` must not quietly become one class),
    so ``predict`` answers in the type the model was fitted on. ``None`` marks a missing label where
    ``allow_missing``; text tables give strings, JSON lines and Python lists may give numbers and lists. Which kind of
    label they are is decided later, once (``targets.resolve``)."""
    out: list = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            if not allow_missing:
                raise BadInputError(f"{origin}: label {i} is missing. Give every item a label.")
            out.append(None)
            continue
        if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
            out.append(tuple(_scalar(v, i, origin, listed=True) for v in value))
            continue
        out.append(_scalar(value, i, origin))
    kinds = sorted({_kind(v) for v in out if v is not None})
    if len(kinds) > 1 and set(kinds) != {"list", "str"}:
        examples = ", ".join(repr(next(v for v in out if v is not None and _kind(v) == k)) for k in kinds)
        raise BadInputError(f"{origin}: the labels mix types ({examples}). 1 and '1' would be different classes; "
                            "convert them all to strings or all to numbers.")
    return tuple(out)


def _kind(value) -> str:
    if isinstance(value, tuple):
        return "list"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return type(value).__name__


def _scalar(value, i: int, origin: str, listed: bool = False):
    if isinstance(value, (bool, np.bool_)) and not listed:
        return bool(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (float, np.floating)) and not listed and np.isfinite(value):
        return float(value)
    where = f"item {i}, in a list of labels" if listed else f"item {i}"
    raise BadInputError(f"{origin}: label {value!r} ({where}) is a {type(value).__name__}; use class names "
                        "(strings), whole numbers, numbers to predict, or a list of names per item.")


def check_trainable(data: Labeled, where: str | None = None, noun: str = "example") -> None:
    """Raise a clear error unless ``data`` can train a classifier: labels, two classes, two examples per class."""
    where = where or data.origin
    if data.labels is None:
        raise BadInputError(f"{where} has no labels. Use one subfolder per class, or a table with a label column.")
    if len(data) == 0:
        raise BadInputError(f"{where} holds no readable {noun}s.")
    counts = Counter(data.labels)
    if len(counts) < 2:
        only = next(iter(counts))
        raise BadInputError(
            f"{where} has a single class ({only!r}); a classifier needs at least two. Add a folder or label per class."
        )
    singles = sorted(c for c, n in counts.items() if n < 2)
    if singles:
        raise BadInputError(
            f"In {where}, class {', '.join(repr(s) for s in singles)} has a single {noun}; each class needs at least "
            f"two (one to train on, one to validate). Add {noun}s or remove the class."
        )


def validation_fraction(labels: Sequence[str], requested: float | None = None) -> float:
    """The share of each class held out to validate: ``requested`` when given; otherwise 20 %, or 10 % once every
    class has at least 50 labels (training then needs the examples more than validation does). The same rule for
    images and texts."""
    if requested is not None:
        if not 0.0 < requested < 1.0:
            raise BadInputError(f"val_fraction must be between 0 and 1 (exclusive), got {requested}.")
        return float(requested)
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return VAL_FRACTION_MANY if len(counts) and counts.min() >= VAL_MANY_PER_CLASS else VAL_FRACTION


def stratified_split(labels: Sequence[str], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train / validation split that keeps every class on both sides (seeded, reproducible)."""
    if not 0.0 < val_fraction < 1.0:
        raise BadInputError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}.")
    rng = np.random.default_rng(seed)
    values = np.asarray(labels)
    train, val = [], []
    for cls in sorted(set(values.tolist())):
        idx = np.flatnonzero(values == cls)
        rng.shuffle(idx)
        n_val = min(max(1, round(len(idx) * val_fraction)), len(idx) - 1)
        val.extend(idx[:n_val].tolist())
        train.extend(idx[n_val:].tolist())
    return np.sort(np.asarray(train, dtype=int)), np.sort(np.asarray(val, dtype=int))


def sample_pool(items: list, seed: int, limit: int) -> list:
    """At most ``limit`` of ``items``: a seeded random sample, in the pool's own order."""
    if len(items) <= limit:
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    return [items[i] for i in keep]
