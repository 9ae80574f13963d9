"""Where labeled images come from: a class-per-folder tree, a CSV of ``path,label``, or lists from Python.

Everything resolves to a :class:`~transferkit.data.labeled.Labeled` of paths and labels, with messages that say how
to fix the mistakes users make (an empty folder, a CSV without a path column).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from ..errors import BadInputError
from .images import is_image_file
from .labeled import Labeled


def read_images(source, labels: Sequence | None = None) -> Labeled:
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
            return Labeled((path,), None, str(path))
        if not path.exists():
            raise BadInputError(f"{path} does not exist. Pass a folder of class subfolders or a CSV of path,label.")
        raise BadInputError(f"{path} is neither a folder, a .csv file nor an image file.")
    paths = tuple(Path(p) for p in source)
    if labels is not None:
        labels = tuple(str(v) for v in labels)
        if len(labels) != len(paths):
            raise BadInputError(f"Got {len(paths)} image paths but {len(labels)} labels; give one label per image.")
    return Labeled(paths, labels, "the images given")


def _read_folder(root: Path) -> Labeled:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        files = sorted(p for p in root.iterdir() if p.is_file() and is_image_file(p))
        if not files:
            raise BadInputError(
                f"{root} holds no images. Expected one subfolder per class with images inside, e.g. "
                f"{root}/cats/001.jpg and {root}/dogs/001.jpg."
            )
        return Labeled(tuple(files), None, str(root))
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
    return Labeled(tuple(paths), tuple(labels), str(root))


def _read_csv(path: Path) -> Labeled:
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
        return Labeled(paths, None, str(path))
    missing = [i + 2 for i, r in enumerate(rows) if not r["label"]]
    if missing:
        raise BadInputError(f"{path}: rows {missing[:5]} have an empty label. Fill them in or remove those rows.")
    return Labeled(paths, tuple(r["label"] for r in rows), str(path))
