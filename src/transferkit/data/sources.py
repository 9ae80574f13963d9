"""Where labeled images come from: a class-per-folder tree, a CSV / TSV / JSONL table (or a pandas DataFrame) of
paths and labels, or lists from Python (paths, PIL images, HWC uint8 numpy arrays).

Everything resolves to a :class:`~transferkit.data.labeled.Labeled` of images and labels, with messages that say how
to fix the mistakes users make, and notes for what was left out (files of other types, broken links): nothing is
dropped without a word.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BadInputError
from .images import IMAGE_SUFFIXES, is_image_file
from .labeled import Labeled, normalise_labels
from .tables import JSONL_SUFFIXES, TABLE_SUFFIXES, Table, from_dataframe, is_dataframe, pick_column, read_table
from .texts import LABEL_COLUMN_NAMES, PATH_COLUMN_NAMES, image_path_column

SPLIT_NAMES = {"train", "training", "test", "testing", "val", "valid", "validation", "dev", "eval"}


def read_images(source, labels: Sequence | None = None, *, path_column: str | None = None,
                label_column: str | None = None, several_labels: bool = False) -> Labeled:
    """Resolve what a user passed to ``fit`` / ``evaluate`` / ``predict``.

    ``source`` is a folder (``root/<class>/<image>``, or a flat folder of images when unlabeled), a table file or a
    DataFrame with a path column and (to train) a label column (paths relative to the table file), a single image
    file, or a sequence of images (paths, PIL images or HWC uint8 arrays) with ``labels``. ``several_labels``: a
    table may list an image once per label (else that is an error naming both rows).
    """
    if is_dataframe(source):
        if labels is not None:
            raise BadInputError("labels= is only for a list of images; a DataFrame carries its own label column.")
        return _from_table(from_dataframe(source), Path.cwd(), path_column, label_column, several_labels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if labels is not None:
            raise BadInputError("labels= is only for a list of images; a folder or table carries its own labels.")
        if path.is_dir():
            return _read_folder(path)
        suffix = path.suffix.lower()
        if suffix in TABLE_SUFFIXES or suffix in JSONL_SUFFIXES:
            return _from_table(read_table(path), path.parent, path_column, label_column, several_labels)
        if not path.exists() and not path.is_symlink():
            raise BadInputError(f"{path} does not exist. Pass a folder of class subfolders, or a CSV of path,label.")
        if is_image_file(path):
            return Labeled((path,), None, str(path))
        raise BadInputError(f"{path} is neither a folder, a table (.csv, .tsv, .jsonl) nor an image file "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))}).")
    if isinstance(source, np.ndarray) and source.ndim == 4:
        items: tuple = tuple(source)  # a batch of HWC images
    elif isinstance(source, np.ndarray) and source.ndim == 3 and source.shape[-1] in (1, 3, 4):
        items = (source,)
    else:
        items = tuple(Path(p) if isinstance(p, (str, os.PathLike)) else p for p in source)
    if labels is not None:
        labels = normalise_labels(list(labels), "the labels given")
        if len(labels) != len(items):
            raise BadInputError(f"Got {len(items)} images but {len(labels)} labels; give one label per image.")
    return Labeled(items, labels, "the images given")


def _read_folder(root: Path) -> Labeled:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        images, skipped = _scan(root, recursive=False)
        if not images:
            raise BadInputError(f"{root} holds no images. Expected one subfolder per class with images inside, e.g. "
                                f"{root}/cats/001.jpg and {root}/dogs/001.jpg.")
        return Labeled(tuple(images), None, str(root), tuple(_skip_notes(skipped)))
    splits = [d.name for d in subdirs if d.name.lower() in SPLIT_NAMES and any(x.is_dir() for x in d.iterdir())]
    if len(splits) >= 2 or (splits and len(subdirs) == len(splits)):
        train = next((s for s in splits if s.lower().startswith("train")), splits[0])
        raise BadInputError(f"{root} holds the splits {', '.join(splits)}, each with class folders: it is a dataset, "
                            f"not one set of labeled images. Pass {root / train} (fit on the training split, evaluate "
                            "on the test split).")
    paths, labels, skipped_all = [], [], []
    for d in subdirs:
        images, skipped = _scan(d, recursive=True)
        if not images:
            what = f"only {_describe(skipped)}" if skipped else "no files"
            raise BadInputError(f"The class folder {d} holds {what}: no images transferkit can read "
                                f"({', '.join(sorted(IMAGE_SUFFIXES))}). Add or convert images, or remove the folder.")
        paths += images
        labels += [d.name] * len(images)
        skipped_all += skipped
    return Labeled(tuple(paths), tuple(labels), str(root), tuple(_skip_notes(skipped_all)))


def _scan(folder: Path, recursive: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files under ``folder`` (linked folders followed once; loops cut), and what was passed over with why."""
    images: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a symlink loop, or a folder linked twice
            skipped.append((Path(top), "a folder reached twice (a link loop?)"))
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(top) / name
            if not path.exists():
                skipped.append((path, "a link to nothing"))
            elif is_image_file(path):
                images.append(path)
            else:
                skipped.append((path, f"not an image type transferkit reads ({path.suffix or 'no suffix'})"))
    return images, skipped


def _describe(skipped: list[tuple[Path, str]]) -> str:
    kinds = Counter(p.suffix.lower() or "no suffix" for p, _ in skipped)
    return ", ".join(f"{n} {k} file(s)" for k, n in kinds.most_common(4))


def _skip_notes(skipped: list[tuple[Path, str]]) -> list[str]:
    if not skipped:
        return []
    examples = "; ".join(f"{p}: {why}" for p, why in skipped[:3])
    return [f"passed over {len(skipped)} file(s) that are not images transferkit reads ({_describe(skipped)}; e.g. "
            f"{examples})"]


def _from_table(table: Table, base: Path, path_column: str | None, label_column: str | None,
                several_labels: bool = False) -> Labeled:
    p = pick_column(table, path_column, PATH_COLUMN_NAMES, "image paths", "--path-column (Python: path_column=)",
                    required=False)
    if p is None:
        p = image_path_column(table)
    if p is None:
        raise BadInputError(f"{table.origin}: cannot tell which column holds the image paths (columns "
                            f"{table.columns}). Name it with --path-column; a column called path or file is found by "
                            "itself.")
    lab = pick_column(table, label_column, LABEL_COLUMN_NAMES, "label", "--label-column (Python: label_column=)",
                      required=False, exclude=p)
    if not table.rows:
        raise BadInputError(f"{table.origin} has a header but no rows.")
    empty = [w for w, r in zip(table.where, table.rows) if r[p] is None or not str(r[p]).strip()]
    if empty:
        raise BadInputError(f"{table.origin}: {', '.join(empty[:5])} have no image path. Fill them in or remove them.")
    paths = tuple(Path(str(r[p]).strip()) if Path(str(r[p]).strip()).is_absolute() else base / str(r[p]).strip()
                  for r in table.rows)
    notes = [*table.notes, f"image paths from column {table.columns[p]!r}"
             + (f", labels from {table.columns[lab]!r}" if lab is not None else ", no label column")]
    if lab is None:
        return Labeled(paths, None, table.origin, tuple(notes))
    raw = [r[lab].strip() if isinstance(r[lab], str) else r[lab] for r in table.rows]
    missing = [w for w, v in zip(table.where, raw) if v is None or v == ""]
    if missing:
        raise BadInputError(f"{table.origin}: {', '.join(missing[:5])} have an empty label. Fill them in or remove "
                            "those rows.")
    labels = normalise_labels(raw, table.origin)
    paths, labels, notes = _check_rows(table, paths, labels, notes, several_labels)
    return Labeled(paths, labels, table.origin, tuple(notes))


def _check_rows(table: Table, paths: tuple, labels: tuple, notes: list[str], several_labels: bool = False):
    """The same row twice is kept once, and said. One file with two labels is an error naming both rows, unless
    ``several_labels`` (then both rows stay, and ``targets.resolve`` merges them into one item)."""
    first: dict[Path, int] = {}
    seen: set = set()
    keep = []
    repeated = []
    for i, (path, label) in enumerate(zip(paths, labels)):
        j = first.setdefault(path, i)
        if labels[j] != label and not several_labels:
            raise BadInputError(f"{table.origin}: {path} is labeled {labels[j]!r} in {table.where[j]} and {label!r} in "
                                f"{table.where[i]}. Keep one label per image, or fit with task='labels' (--task "
                                "labels) when an image may carry several.")
        if (path, label) in seen:
            repeated.append(table.where[i])
            continue
        seen.add((path, label))
        keep.append(i)
    if repeated:
        notes = [*notes, f"{len(repeated)} row(s) repeat an earlier row ({', '.join(repeated[:3])}); kept once"]
    return tuple(paths[i] for i in keep), tuple(labels[i] for i in keep), notes
