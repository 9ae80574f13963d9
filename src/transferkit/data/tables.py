"""Tables of labeled data, whatever they hold (texts, or paths of images): CSV, TSV or JSONL files and pandas
DataFrames become columns and rows; a column is picked by the name given or found among the usual names.

CSV files are read in UTF-8 (a clear error for UTF-16 and binary files), with the csv module's own line handling (an
unquoted U+2028 inside a text stays in its cell), and a ``.csv`` whose header holds tabs but no commas is read as
tab-separated (and said so).
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError
from .files import check_text_encoding, read_bytes

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class Table:
    columns: list[str]
    rows: list[list]  # one value per column (None where a row has none)
    where: list[str]  # each row's place, for messages ("row 7", "line 3")
    origin: str
    notes: list[str] = field(default_factory=list)


def is_dataframe(value) -> bool:
    return hasattr(value, "columns") and hasattr(value, "to_dict") and hasattr(value, "iloc")


def from_dataframe(frame, origin: str = "the DataFrame") -> Table:
    columns = [str(c) for c in frame.columns]
    rows = [[None if _missing(v) else v for v in row] for row in frame.itertuples(index=False, name=None)]
    return Table(columns, rows, [f"row {i}" for i in range(len(rows))], origin)


def _missing(value) -> bool:
    try:
        return value is None or value != value  # NaN
    except (TypeError, ValueError):  # arrays and other objects that do not compare to themselves simply
        return False


def read_table(path: Path) -> Table:
    """A CSV / TSV / JSONL file as a table."""
    suffix = path.suffix.lower()
    raw = read_bytes(path, "table")
    check_text_encoding(path, raw)
    bad = False
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        bad, content = True, raw.decode("utf-8", errors="replace")
    notes = [f"{path} is not valid UTF-8; undecodable bytes became U+FFFD"] if bad else []
    if suffix in JSONL_SUFFIXES:
        table = _parse_jsonl(path, content)
    elif suffix in TABLE_SUFFIXES:
        delimiter = TABLE_SUFFIXES[suffix]
        first = content.split("\n", 1)[0]
        if delimiter == "," and "\t" in first and "," not in first:
            delimiter = "\t"
            notes.append(f"{path} is tab-separated although it is named .csv; read it as TSV")
        with _long_csv_fields():
            table = _parse_delimited(path, content, delimiter)
    else:
        raise BadInputError(f"{path}: expected a .csv, .tsv or .jsonl table.")
    table.notes[:0] = notes
    return table


@contextmanager
def _long_csv_fields():
    """Long documents in one cell are fine: raise the csv module's field limit while reading, then restore it (it is
    process-wide state that belongs to the user's program)."""
    old = csv.field_size_limit(1 << 30)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _parse_delimited(path: Path, content: str, delimiter: str) -> Table:
    # io.StringIO with newline="" hands the csv module the lines it expects: only \r and \n end a row, so an
    # unquoted U+2028 (LINE SEPARATOR) inside a text stays in its cell (str.splitlines would split the row there)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise BadInputError(f"{path} is empty. It needs a header row, e.g. text,label.") from None
    except csv.Error as exc:
        raise BadInputError(f"{path} is not a readable CSV file ({exc}).") from None
    columns = [h.strip() for h in header]
    rows, where = [], []
    try:
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            where.append(f"row {reader.line_num}")
            rows.append([row[i] if i < len(row) else None for i in range(len(columns))])
    except csv.Error as exc:
        raise BadInputError(f"{path}, row {reader.line_num}: {exc}. Quote fields that contain the delimiter or "
                            "line breaks.") from None
    return Table(columns, rows, where, str(path))


def _parse_jsonl(path: Path, content: str) -> Table:
    records, where = [], []
    for i, line in enumerate(content.split("\n")):
        line = line.strip()
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
    return Table(columns, [[r.get(c) for c in columns] for r in records], where, str(path))


def pick_column(table: Table, given: str | None, candidates: tuple[str, ...], what: str, flag: str,
                required: bool = True, exclude: int | None = None) -> int | None:
    """The index of the column named ``given``, or of the first of ``candidates`` present (case-insensitive)."""
    lowered = [c.lower() for c in table.columns]
    if given:
        if given.lower() not in lowered:
            raise BadInputError(f"{table.origin} has no column {given!r} ({flag}); its columns are {table.columns}.")
        index = lowered.index(given.lower())
    else:
        index = next((lowered.index(c) for c in candidates if c in lowered and lowered.index(c) != exclude), None)
    if index is None and required:
        raise BadInputError(f"{table.origin}: cannot tell which column holds the {what} (columns {table.columns}). "
                            f"Name it with {flag}; columns called {', '.join(candidates[:4])} are found by themselves.")
    if index is not None and index == exclude:
        raise BadInputError(f"{table.origin}: the {what} and the other column are both {table.columns[index]!r}; "
                            "name them apart.")
    return index
