"""Where labeled images come from: a class-per-folder tree, a CSV of ``path,label``, or lists from Python.

Everything resolves to a :class:`LabeledImages`: parallel lists of paths and labels, checked for the mistakes users
make (an empty folder, one class, a class with a single image) with messages that say how to fix them.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInputError
from .images import is_image_file


@dataclass(frozen=True)
class LabeledImages:
    paths: tuple[Path, ...]
    labels: tuple[str, ...] | None

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels or ()))

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: Sequence[int] | np.ndarray) -> LabeledImages:
        keep = list(keep)
        return LabeledImages(
            tuple(self.paths[i] for i in keep),
            tuple(self.labels[i] for i in keep) if self.labels is not None else None,
        )


def read_images(source, labels: Sequence | None = None) -> LabeledImages:
    """Resolve what a user passed to ``fit`` / ``evaluate`` / ``predict``.

    ``source`` is a folder (``root/<class>/<image>``, or a flat folder of images when unlabeled), a CSV file with
    ``path`` and ``label`` columns (paths relative to the CSV), or a sequence of image paths with ``labels``.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if labels is not None:
            raise BadInputError("labels= is only for a list of image paths; a folder or CSV carries its own labels.")
        if path.is_dir():
            return _read_folder(path)
        if path.suffix.lower() == ".csv":
            return _read_csv(path)
        if path.is_file() and is_image_file(path):
            return LabeledImages((path,), None)
        if not path.exists():
            raise BadInputError(f"{path} does not exist. Pass a folder of class subfolders or a CSV of path,label.")
        raise BadInputError(f"{path} is neither a folder, a .csv file nor an image file.")
    paths = tuple(Path(p) for p in source)
    if labels is not None:
        labels = tuple(str(v) for v in labels)
        if len(labels) != len(paths):
            raise BadInputError(f"Got {len(paths)} image paths but {len(labels)} labels; give one label per image.")
    return LabeledImages(paths, labels)


def _read_folder(root: Path) -> LabeledImages:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        files = sorted(p for p in root.iterdir() if p.is_file() and is_image_file(p))
        if not files:
            raise BadInputError(
                f"{root} holds no images. Expected one subfolder per class with images inside, e.g. "
                f"{root}/cats/001.jpg and {root}/dogs/001.jpg."
            )
        return LabeledImages(tuple(files), None)
    paths, labels = [], []
    for d in subdirs:
        for p in sorted(d.rglob("*")):
            if p.is_file() and is_image_file(p):
                paths.append(p)
                labels.append(d.name)
    if not paths:
        raise BadInputError(
            f"The class folders in {root} ({', '.join(d.name for d in subdirs[:5])}) hold no image files "
            "(.jpg, .png, ...)."
        )
    return LabeledImages(tuple(paths), tuple(labels))


def _read_csv(path: Path) -> LabeledImages:
    if not path.is_file():
        raise BadInputError(f"{path} does not exist.")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "path" not in columns:
            raise BadInputError(f"{path} needs a header with a 'path' column (and 'label' for training); found {columns}.")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    if not rows:
        raise BadInputError(f"{path} has a header but no rows.")
    paths = tuple((path.parent / r["path"]) if not Path(r["path"]).is_absolute() else Path(r["path"]) for r in rows)
    if "label" not in columns:
        return LabeledImages(paths, None)
    missing = [i + 2 for i, r in enumerate(rows) if not r["label"]]
    if missing:
        raise BadInputError(f"{path}: rows {missing[:5]} have an empty label. Fill them in or remove those rows.")
    return LabeledImages(paths, tuple(r["label"] for r in rows))


def check_trainable(data, where: str = "the training data", noun: str = "image") -> None:
    """Raise a clear error unless ``data`` can train a classifier: labels, two classes, two examples per class."""
    if data.labels is None:
        raise BadInputError(f"{where} has no labels. Use one subfolder per class, or a CSV with a label column.")
    if len(data) == 0:
        raise BadInputError(f"{where} holds no readable {noun}s.")
    counts = Counter(data.labels)
    if len(counts) < 2:
        only = next(iter(counts))
        raise BadInputError(
            f"{where} has a single class ({only!r}); a classifier needs at least two. Add a folder per class."
        )
    singles = sorted(c for c, n in counts.items() if n < 2)
    if singles:
        raise BadInputError(
            f"In {where}, class {', '.join(repr(s) for s in singles)} has a single {noun}; each class needs at least "
            f"two (one to train on, one to validate). Add {noun}s or remove the class."
        )


def stratified_split(labels: Sequence[str], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train / validation split that keeps every class on both sides (seeded, reproducible)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}.")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    train, val = [], []
    for cls in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_val = min(max(1, round(len(idx) * val_fraction)), len(idx) - 1)
        val.extend(idx[:n_val].tolist())
        train.extend(idx[n_val:].tolist())
    return np.sort(np.asarray(train, dtype=int)), np.sort(np.asarray(val, dtype=int))
