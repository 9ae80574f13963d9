"""Where labeled texts come from: a CSV / TSV / JSONL file with a text and a label column, a folder of ``.txt``
files per class, a plain ``.txt`` file of one text per line (to predict), or lists from Python.

Everything resolves to a :class:`~transferkit.data.labeled.Labeled` of texts. Reading never stops at the first bad
row: bytes that are not UTF-8 are replaced (and counted), empty texts and rows without a label are left out, and each
of these is reported with the file and row, so a user can fix the source.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from ..errors import BadInputError
from .labeled import Labeled

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TEXT_COLUMN_NAMES = ("text", "sentence", "content", "body", "review", "message", "document", "comment", "title")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "target", "topic", "y", "intent")


def is_text_source(source) -> bool:
    """Whether ``source`` holds texts (rather than images): decides which classifier the CLI builds."""
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES or suffix == ".txt":
        return True
    if suffix in TABLE_SUFFIXES and path.is_file():
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            header = next(csv.reader(fh, delimiter=TABLE_SUFFIXES[suffix]), [])
        return "path" not in [h.strip().lower() for h in header]
    if path.is_dir():
        from .images import is_image_file

        files = list(islice((p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")), 500))
        n_text = sum(p.suffix.lower() == ".txt" for p in files)
        return n_text > 0 and n_text >= sum(is_image_file(p) for p in files)
    return False


def read_texts(source, labels: Sequence | None = None, *, text_column: str | None = None,
               label_column: str | None = None, require_labels: bool = False) -> Labeled:
    """Resolve what a user passed to ``fit`` / ``evaluate`` / ``predict`` for text.

    ``source`` is a CSV/TSV/JSONL file (columns auto-detected unless named), a folder ``root/<class>/*.txt``, a
    ``.txt`` file with one text per line (no labels), or a sequence of strings with ``labels``.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if labels is not None:
            raise BadInputError("labels= is only for a list of texts; a file or folder carries its own labels.")
        if not path.exists():
            raise BadInputError(f"{path} does not exist. Pass a CSV/JSONL file with text and label columns, "
                                "or a folder with one subfolder of .txt files per class.")
        if path.is_dir():
            data = _read_folder(path)
        elif path.suffix.lower() in TABLE_SUFFIXES:
            data = _read_table(path, text_column, label_column)
        elif path.suffix.lower() in JSONL_SUFFIXES:
            data = _read_jsonl(path, text_column, label_column)
        elif path.suffix.lower() == ".txt":
            data = _read_lines(path)
        else:
            raise BadInputError(f"{path}: expected a .csv, .tsv, .jsonl or .txt file, or a folder of .txt files.")
    else:
        texts = [str(t) if t is not None else "" for t in source]
        if labels is not None:
            labels = [None if v is None else str(v) for v in labels]
            if len(labels) != len(texts):
                raise BadInputError(f"Got {len(texts)} texts but {len(labels)} labels; give one label per text.")
        data = _clean("the texts given", [f"item {i}" for i in range(len(texts))], texts, labels)
    if require_labels and data.labels is None:
        raise BadInputError(f"{data.origin} has no labels. Use a label column (--label-column NAME) or one "
                            "subfolder of .txt files per class.")
    return data


def _clean(origin: str, where: list[str], texts: list[str], labels: list[str | None] | None,
           notes: list[str] | None = None) -> Labeled:
    """Drop empty texts and rows without a label, saying which."""
    notes = list(notes or [])
    keep = []
    empty, unlabeled = [], []
    for i, text in enumerate(texts):
        if not text.strip():
            empty.append(where[i])
        elif labels is not None and (labels[i] is None or not labels[i].strip()):
            unlabeled.append(where[i])
        else:
            keep.append(i)
    if empty:
        notes.append(f"left out {len(empty)} empty text(s) ({_first(empty)})")
    if unlabeled:
        notes.append(f"left out {len(unlabeled)} text(s) without a label ({_first(unlabeled)})")
    if not keep:
        raise BadInputError(f"{origin} holds no usable text: {'; '.join(notes) or 'it is empty'}.")
    return Labeled(
        tuple(texts[i] for i in keep),
        tuple(labels[i].strip() for i in keep) if labels is not None else None,
        origin, tuple(notes),
    )


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


def _read_folder(root: Path) -> Labeled:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    bad: list[str] = []
    if not subdirs:
        files = sorted(p for p in root.glob("*.txt") if p.is_file())
        if not files:
            raise BadInputError(f"{root} holds no .txt files. Expected one subfolder per class with .txt files "
                                f"inside, e.g. {root}/sport/001.txt and {root}/politics/001.txt.")
        texts = [_decode(p.read_bytes(), bad, str(p)) for p in files]
        return _clean(str(root), [str(p) for p in files], texts, None, _decoding_note(bad))
    files, labels = [], []
    for d in subdirs:
        for p in sorted(d.rglob("*.txt")):
            if p.is_file():
                files.append(p)
                labels.append(d.name)
    if not files:
        raise BadInputError(f"The class folders in {root} ({', '.join(d.name for d in subdirs[:5])}) hold no .txt "
                            "files.")
    texts = [_decode(p.read_bytes(), bad, str(p)) for p in files]
    return _clean(str(root), [str(p) for p in files], texts, labels, _decoding_note(bad))


def _read_lines(path: Path) -> Labeled:
    bad: list[str] = []
    lines = [_decode(raw, bad, f"{path}:{i + 1}") for i, raw in enumerate(path.read_bytes().splitlines())]
    return _clean(str(path), [f"line {i + 1}" for i in range(len(lines))], lines, None, _decoding_note(bad))


def _read_table(path: Path, text_column: str | None, label_column: str | None) -> Labeled:
    bad: list[str] = []
    raw = path.read_bytes()
    content = _decode(raw, bad, str(path))
    with _long_csv_fields():
        return _parse_table(path, content, bad, text_column, label_column)


@contextmanager
def _long_csv_fields():
    """Long documents in one cell are fine: raise the csv module's field limit while reading, then restore it (it is
    process-wide state that belongs to the user's program)."""
    old = csv.field_size_limit(1 << 30)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _parse_table(path: Path, content: str, bad: list[str], text_column: str | None,
                 label_column: str | None) -> Labeled:
    # io.StringIO with newline="" hands the csv module the lines it expects: only \r and \n end a row, so an
    # unquoted U+2028 (LINE SEPARATOR) inside a text stays in its cell (str.splitlines would split the row there)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=TABLE_SUFFIXES[path.suffix.lower()])
    try:
        header = next(reader)
    except StopIteration:
        raise BadInputError(f"{path} is empty. It needs a header row, e.g. text,label.") from None
    except csv.Error as exc:
        raise BadInputError(f"{path} is not a readable CSV file ({exc}).") from None
    columns = [h.strip() for h in header]
    t, lab = _pick_columns(path, columns, text_column, label_column)
    texts, labels, where = [], [], []
    try:
        for i, row in enumerate(reader):
            if not row:
                continue
            where.append(f"row {i + 2}")
            texts.append(row[t] if t < len(row) else "")
            labels.append((row[lab] if lab < len(row) else None) if lab is not None else None)
    except csv.Error as exc:
        raise BadInputError(f"{path}, row {reader.line_num}: {exc}. Quote fields that contain the delimiter or "
                            "line breaks.") from None
    notes = [f"{path} is not valid UTF-8; undecodable bytes became U+FFFD"] if bad else []
    return _clean(str(path), where, texts, labels if lab is not None else None, notes)


def _read_jsonl(path: Path, text_column: str | None, label_column: str | None) -> Labeled:
    bad: list[str] = []
    records, where = [], []
    for i, raw in enumerate(path.read_bytes().splitlines()):
        line = _decode(raw, bad, f"line {i + 1}").strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}, line {i + 1} is not valid JSON ({exc.msg}). Each line must be one JSON "
                                'object, e.g. {"text": "...", "label": "..."}.') from None
        if not isinstance(record, dict):
            raise BadInputError(f"{path}, line {i + 1} is not a JSON object.")
        records.append(record)
        where.append(f"line {i + 1}")
    if not records:
        raise BadInputError(f"{path} holds no JSON lines.")
    columns = list(dict.fromkeys(k for r in records for k in r))
    t, lab = _pick_columns(path, columns, text_column, label_column)
    texts = ["" if r.get(columns[t]) is None else str(r.get(columns[t])) for r in records]
    labels = [None if lab is None or r.get(columns[lab]) is None else str(r[columns[lab]]) for r in records]
    return _clean(str(path), where, texts, labels if lab is not None else None, _decoding_note(bad))


def _pick_columns(path: Path, columns: list[str], text_column: str | None,
                  label_column: str | None) -> tuple[int, int | None]:
    lowered = [c.lower() for c in columns]

    def named(name: str, what: str) -> int:
        if name.lower() not in lowered:
            raise BadInputError(f"{path} has no column {name!r} ({what}); its columns are {columns}.")
        return lowered.index(name.lower())

    def guess(candidates: tuple[str, ...]) -> int | None:
        return next((lowered.index(c) for c in candidates if c in lowered), None)

    t = named(text_column, "--text-column") if text_column else guess(TEXT_COLUMN_NAMES)
    if t is None:
        raise BadInputError(f"{path}: cannot tell which column holds the text (columns {columns}). Name it with "
                            f"--text-column (Python: text_column=); columns called {', '.join(TEXT_COLUMN_NAMES[:4])} "
                            "are found by themselves.")
    lab = named(label_column, "--label-column") if label_column else guess(LABEL_COLUMN_NAMES)
    if lab == t:
        raise BadInputError(f"{path}: the text and label columns are both {columns[t]!r}; name them apart.")
    return t, lab
