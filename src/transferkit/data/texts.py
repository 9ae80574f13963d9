"""Where labeled texts come from: a CSV / TSV / JSONL file (or a pandas DataFrame) with a text and a label column,
a folder of ``.txt`` files per class, a plain ``.txt`` file of one text per line (to predict), or lists from Python.

Everything resolves to a :class:`~transferkit.data.labeled.Labeled` of texts. Reading never stops at the first bad
row: bytes that are not UTF-8 are replaced (and counted), empty texts and rows without a label are left out, and each
of these is reported with the file and row, so a user can fix the source. A column of image file names is never
read as text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

from ..errors import BadInputError
from .files import MAX_ITEM_BYTES, check_text_encoding, read_bytes
from .labeled import Labeled, normalise_labels
from .tables import JSONL_SUFFIXES, TABLE_SUFFIXES, Table, from_dataframe, is_dataframe, pick_column, read_table

TEXT_COLUMN_NAMES = ("text", "sentence", "content", "body", "review", "message", "document", "comment", "title")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "target", "topic", "y", "intent")
PATH_COLUMN_NAMES = ("path", "file", "filename", "filepath", "file_path", "image", "image_path", "img")
TEXT_SUFFIXES = (".txt", *JSONL_SUFFIXES)


_SURROGATE = re.compile("[\ud800-\udfff]")


def plain_text(item) -> str:
    """An item as text every tokenizer takes: ``None`` is empty, and a lone surrogate (JSON's ``"\\ud800"``, a file
    name's undecodable byte) is no character of valid Unicode text: it becomes U+FFFD."""
    text = "" if item is None else str(item)
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def is_text_source(source, *, text_column: str | None = None, path_column: str | None = None) -> bool:
    """Whether ``source`` holds texts (rather than images): decides which classifier the CLI builds. A table whose
    path column (named, or found by its name or by holding image file names) lists images is image data."""
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES or suffix in JSONL_SUFFIXES:
        if text_column:
            return True
        if path_column:
            return False
    if suffix in TEXT_SUFFIXES:
        return True
    if suffix in TABLE_SUFFIXES and path.is_file():
        try:
            table = read_table(path)
        except BadInputError:
            return True  # the text reader will say what is wrong with it
        return image_path_column(table) is None
    if path.is_dir():
        from .images import is_image_file

        files = list(islice((p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")), 500))
        n_text = sum(p.suffix.lower() == ".txt" for p in files)
        return n_text > 0 and n_text >= sum(is_image_file(p) for p in files)
    return False


def image_path_column(table: Table) -> int | None:
    """The column that lists image files: named like one (path, file, ...), or whose values end in image suffixes."""
    from .images import IMAGE_SUFFIXES

    lowered = [c.lower() for c in table.columns]
    for name in PATH_COLUMN_NAMES:
        if name in lowered:
            return lowered.index(name)
    sample = table.rows[:50]
    for i in range(len(table.columns)):
        values = [str(r[i]).strip().lower() for r in sample if r[i] is not None and str(r[i]).strip()]
        if values and sum(v.endswith(tuple(IMAGE_SUFFIXES)) for v in values) >= 0.8 * len(values):
            return i
    return None


def read_texts(source, labels: Sequence | None = None, *, text_column: str | None = None,
               label_column: str | None = None, require_labels: bool = False) -> Labeled:
    """Resolve what a user passed to ``fit`` / ``evaluate`` / ``predict`` for text.

    ``source`` is a CSV/TSV/JSONL file or a DataFrame (columns found by name unless named), a folder
    ``root/<class>/*.txt``, a ``.txt`` file with one text per line (no labels), or a sequence of strings with
    ``labels``.
    """
    if is_dataframe(source):
        if labels is not None:
            raise BadInputError("labels= is only for a list of texts; a DataFrame carries its own label column.")
        data = _from_table(from_dataframe(source), text_column, label_column)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if labels is not None:
            raise BadInputError("labels= is only for a list of texts; a file or folder carries its own labels.")
        if not path.exists():
            raise BadInputError(f"{path} does not exist. Pass a CSV/JSONL file with text and label columns, "
                                "or a folder with one subfolder of .txt files per class.")
        if path.is_dir():
            data = _read_folder(path)
        elif path.suffix.lower() in TABLE_SUFFIXES or path.suffix.lower() in JSONL_SUFFIXES:
            data = _from_table(read_table(path), text_column, label_column)
        elif path.suffix.lower() == ".txt":
            data = _read_lines(path)
        else:
            raise BadInputError(f"{path}: expected a .csv, .tsv, .jsonl or .txt file, or a folder of .txt files.")
    else:
        if isinstance(source, (bytes, str)):
            raise BadInputError("Pass texts as a list of strings, or a path to a file or folder.")
        texts = ["" if t is None else str(t) for t in source]
        if labels is not None:
            labels = normalise_labels(list(labels), "the labels given", allow_missing=True)
            if len(labels) != len(texts):
                raise BadInputError(f"Got {len(texts)} texts but {len(labels)} labels; give one label per text.")
        data = _clean("the texts given", [f"item {i}" for i in range(len(texts))], texts, labels)
    if require_labels and data.labels is None:
        raise BadInputError(f"{data.origin} has no labels. Use a label column (--label-column NAME) or one "
                            "subfolder of .txt files per class.")
    return data


def _from_table(table: Table, text_column: str | None, label_column: str | None) -> Labeled:
    t = pick_column(table, text_column, TEXT_COLUMN_NAMES, "text", "--text-column (Python: text_column=)")
    paths = image_path_column(Table(table.columns, table.rows, table.where, table.origin))
    if paths == t:
        raise BadInputError(f"{table.origin}: the column {table.columns[t]!r} holds image file names, not texts. "
                            "Fit an image classifier on it (--path-column NAME), or name the text column with "
                            "--text-column.")
    lab = pick_column(table, label_column, LABEL_COLUMN_NAMES, "label", "--label-column (Python: label_column=)",
                      required=False, exclude=t)
    texts = ["" if r[t] is None else str(r[t]) for r in table.rows]
    labels = None
    if lab is not None:
        raw = [None if r[lab] is None or (isinstance(r[lab], str) and not r[lab].strip()) else
               (r[lab].strip() if isinstance(r[lab], str) else r[lab]) for r in table.rows]
        labels = normalise_labels(raw, table.origin, allow_missing=True)
    notes = [*table.notes, f"texts from column {table.columns[t]!r}"
             + (f", labels from {table.columns[lab]!r}" if lab is not None else ", no label column")]
    return _clean(table.origin, table.where, texts, labels, notes)


def _clean(origin: str, where: list[str], texts: list[str], labels: Sequence | None,
           notes: list[str] | None = None) -> Labeled:
    """Drop empty texts and rows without a label, saying which."""
    notes = list(notes or [])
    keep = []
    empty, unlabeled = [], []
    for i, text in enumerate(texts):
        if not text.strip():
            empty.append(where[i])
        elif labels is not None and labels[i] is None:
            unlabeled.append(where[i])
        else:
            keep.append(i)
    if empty:
        notes.append(f"left out {len(empty)} empty text(s) ({_first(empty)})")
    if unlabeled:
        notes.append(f"left out {len(unlabeled)} text(s) without a label ({_first(unlabeled)})")
    if not keep:
        raise BadInputError(f"{origin} holds no usable text: {'; '.join(notes) or 'it is empty'}.")
    return Labeled(tuple(texts[i] for i in keep), tuple(labels[i] for i in keep) if labels is not None else None,
                   origin, tuple(notes))


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


def _decode(data: bytes, counter: list[str], where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        counter.append(where)
        return data.decode("utf-8", errors="replace")


def _decoding_note(bad: list[str]) -> list[str]:
    return [f"{len(bad)} text(s) were not valid UTF-8; undecodable bytes became U+FFFD ({_first(bad)})"] if bad else []


def _read_text_file(path: Path, bad: list[str]) -> str:
    raw = read_bytes(path, "text file", MAX_ITEM_BYTES)
    check_text_encoding(path, raw)
    return _decode(raw, bad, str(path))


def _read_folder(root: Path) -> Labeled:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    bad: list[str] = []
    if not subdirs:
        files = sorted(p for p in root.glob("*.txt") if p.is_file())
        if not files:
            raise BadInputError(f"{root} holds no .txt files. Expected one subfolder per class with .txt files "
                                f"inside, e.g. {root}/sport/001.txt and {root}/politics/001.txt.")
        texts = [_read_text_file(p, bad) for p in files]
        return _clean(str(root), [str(p) for p in files], texts, None, _decoding_note(bad))
    files, labels = [], []
    for d in subdirs:
        found = sorted(p for p in d.rglob("*.txt") if p.is_file())
        if not found:
            raise BadInputError(f"The class folder {d} holds no .txt files. Add texts or remove the folder.")
        files += found
        labels += [d.name] * len(found)
    texts = [_read_text_file(p, bad) for p in files]
    return _clean(str(root), [str(p) for p in files], texts, labels, _decoding_note(bad))


def _read_lines(path: Path) -> Labeled:
    bad: list[str] = []
    raw = read_bytes(path, "text file")
    check_text_encoding(path, raw)
    lines = [_decode(line, bad, f"{path}:{i + 1}") for i, line in enumerate(raw.splitlines())]
    return _clean(str(path), [f"line {i + 1}" for i in range(len(lines))], lines, None, _decoding_note(bad))
