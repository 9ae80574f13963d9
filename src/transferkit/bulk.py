"""Bulk prediction: a folder or table of any size predicted into a CSV, JSON-lines or Parquet file, streaming.

Items are predicted in chunks and each chunk's rows are appended and flushed as soon as they are known, so memory
stays bounded by the chunk whatever the input size, and a run that is killed loses at most the chunk in flight:
run the same command again and the rows already written are skipped (a last line cut short by the kill is dropped
first), none duplicated, none lost. Unreadable inputs get a row with their error. Each row holds the input, the
label, its probability, the top-k labels and probabilities, and the probability of every class.

Parquet is written once the run is complete (from a JSON-lines file beside it, which is what resumes).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .errors import BadInputError

FORMATS = (".csv", ".jsonl", ".parquet")
CHUNK = 256


def columns(classes: Sequence, key: str, top: int, rejecting: bool = False, kind: str = "class") -> list[str]:
    """The columns of a predictions file: one class per item (with ``top`` and the open-set columns), several labels
    per item (``labels``, each label's probability) or a number (``value``)."""
    if kind == "number":
        return [key, "value", "error"]
    if kind == "labels":
        return [key, "labels", *[f"p_{c}" for c in classes], "error"]
    cols = [key, "label", "probability", *(["known", "known_score"] if rejecting else [])]
    for i in range(2, top + 1):
        cols += [f"top{i}_label", f"top{i}_probability"]
    return cols + [f"p_{c}" for c in classes] + ["error"]


def rows_for(names: Sequence[str], proba: np.ndarray, classes: Sequence, key: str, top: int,
             known: Sequence[bool] | None = None, scores: Sequence[float] | None = None,
             unknown: str = "unknown") -> list[dict]:
    """One row per item; with ``known`` (open set), the label of an item of no trained class is ``unknown``."""
    out = []
    for j, (name, p) in enumerate(zip(names, proba)):
        order = np.argsort(-p, kind="stable")
        row = {key: name, "label": _plain(classes[order[0]]), "probability": float(p[order[0]])}
        if known is not None and scores is not None:
            row |= {"label": row["label"] if known[j] else unknown, "known": bool(known[j]),
                    "known_score": float(scores[j])}
        for rank, i in enumerate(order[1:top], start=2):
            row[f"top{rank}_label"] = _plain(classes[i])
            row[f"top{rank}_probability"] = float(p[i])
        row |= {f"p_{c}": float(v) for c, v in zip(classes, p)}
        row["error"] = ""
        out.append(row)
    return out


def shape_rows(names: Sequence[str], outputs: np.ndarray, predictor, key: str) -> list[dict]:
    """One row per item of a model of several labels (``labels`` joined by the separator the model was fitted with,
    or ``|``) or of numbers (``value``)."""
    out = []
    separator = (predictor.target or {}).get("separator") or "|"
    for name, row in zip(names, outputs):
        answer = predictor.describe(row)
        if predictor.kind == "number":
            out.append({key: name, "value": answer["value"], "error": ""})
        else:
            out.append({key: name, "labels": separator.join(map(str, answer["labels"])),
                        **{f"p_{c}": p for c, p in answer["probabilities"].items()}, "error": ""})
    return out


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def predict_to_file(predictor, items: Sequence, out: str | Path, *, top: int = 1, chunk: int = CHUNK,
                    progress: bool = True, on_chunk: Callable[[int], None] | None = None,
                    reject: float | None = None, unknown: str = "unknown") -> dict:
    """Predict ``items`` into ``out`` (.csv, .jsonl or .parquet), resuming what an earlier run of it wrote.
    ``reject``: a rejection rate (``openset``): rows say whether the item belongs to a trained class (``known``,
    ``known_score``), and one that does not gets the label ``unknown``.

    Returns counts: written now, already there, unreadable, and ``estimate``: the model's accuracy on the items
    predicted now, read from its confidence (``evaluate.label_free_estimate``; None for a model without a
    temperature, or under 20 items); ``unfamiliar``: how many score below the open-set threshold
    (``openset.unfamiliar``). ``on_chunk(n_written_so_far)`` is called after each
    chunk is on disk (tests interrupt there).
    """
    from .evaluate import calibrated_confidences, label_free_over_batches
    from .openset import unfamiliar
    from .progress import progress_bar

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise BadInputError(f"--out {out}: write predictions to a .csv, .jsonl or .parquet file.")
    if top < 1:
        raise BadInputError(f"--top must be at least 1, got {top}.")
    key = "text" if predictor.modality == "text" else "file"
    classes = predictor.classes.tolist()
    kind = predictor.kind
    cols = columns(classes, key, min(top, len(classes)), rejecting=reject is not None, kind=kind)
    predictor.check_reject(reject)
    stream = out.with_name(out.name + ".partial.jsonl") if suffix == ".parquet" else out
    if suffix == ".parquet" and out.exists():
        raise BadInputError(f"{out} already exists (a finished run). Remove it, or write to another file.")
    names = [str(i) for i in items]
    done = _resume(stream, key, cols)
    todo = [i for i, name in enumerate(names) if name not in done]
    counts = {"written": 0, "already_there": len(names) - len(todo), "unreadable": 0}
    fmt = "csv" if stream.suffix.lower() == ".csv" else "jsonl"
    confidences = []  # one float per item predicted now: what the model's accuracy on them is read from
    known_scores: list[np.ndarray] = []  # ... and its open-set score: how many look unlike every trained class
    with open(stream, "a", encoding="utf-8", newline="") as fh, progress_bar(
            "Predicting", total=len(todo), enabled=progress and bool(todo)) as advance:
        if fmt == "csv" and fh.tell() == 0:
            _write(fh, fmt, cols, [], header=True)
        for start in range(0, len(todo), chunk):
            batch = [items[i] for i in todo[start: start + chunk]]
            proba, known, scores, ok, skipped = predictor.predict_open(batch, reject)
            if scores is not None:
                known_scores.append(scores)
            readable = [str(item) for item, k in zip(batch, ok) if k]
            if kind != "class":
                rows = shape_rows(readable, proba, predictor, key)
            else:
                confidences.append(calibrated_confidences(proba, predictor.report.temperature))
                rows = rows_for(readable, proba, classes, key, min(top, len(classes)), known, scores, unknown)
            rows += [{key: str(item), "error": why} for item, why in skipped]
            _write(fh, fmt, cols, rows)
            counts["written"] += len(rows)
            if known is not None:
                counts["rejected"] = counts.get("rejected", 0) + int(len(known) - np.count_nonzero(known))
            counts["unreadable"] += len(skipped)
            advance(len(batch))
            if on_chunk:
                on_chunk(counts["written"])
    if suffix == ".parquet":
        _to_parquet(stream, out, cols)
    counts["estimate"] = label_free_over_batches(confidences, predictor.report.estimate)
    counts["unfamiliar"] = unfamiliar(predictor.open_set, np.concatenate(known_scores)) if known_scores else None
    return counts


def _write(fh, fmt: str, cols: list[str], rows: list[dict], header: bool = False) -> None:
    """Append rows and put them on disk before the next chunk starts."""
    buffer = io.StringIO()
    if fmt == "csv":
        writer = csv.DictWriter(buffer, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        if header:
            writer.writeheader()
        else:
            writer.writerows({c: row.get(c, "") for c in cols} for row in rows)
    else:
        for row in rows:
            buffer.write(json.dumps({c: row.get(c) for c in cols if c in row}, ensure_ascii=False) + "\n")
    fh.write(buffer.getvalue())
    fh.flush()
    os.fsync(fh.fileno())


def _resume(path: Path, key: str, cols: list[str]) -> set[str]:
    """The inputs a previous run already wrote to ``path``; a last line cut short by a kill is removed first."""
    if not path.exists():
        return set()
    if not path.is_file():
        raise BadInputError(f"{path} exists and is not a file; write predictions elsewhere.")
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):  # the row in flight when the run was killed: it is written again
        raw = raw[: raw.rfind(b"\n") + 1]
        with open(path, "r+b") as fh:
            fh.truncate(len(raw))
    text = raw.decode("utf-8", errors="replace")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames and list(reader.fieldnames) != cols:
            raise BadInputError(f"{path} holds other columns ({', '.join(reader.fieldnames[:4])}, ...): it was written "
                                "by another model, --top or --reject. Write to a new file.")
        return {row[key] for row in reader if row.get(key) is not None}
    done = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        # a prediction row holds exactly these columns; an unreadable input's row only its key and error
        if not isinstance(row, dict) or key not in row or not (set(row) == set(cols) or set(row) == {key, "error"}):
            raise BadInputError(f"{path} line {number} is not a prediction of this model with these options: it was "
                                "written by another model, --top or --reject. Write to a new file.")
        done.add(row[key])
    return done


def _to_parquet(stream: Path, out: Path, cols: list[str]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BadInputError(f"Writing {out} needs pyarrow (pip install pyarrow); the predictions are in {stream}.") \
            from None
    rows = [json.loads(line) for line in stream.read_text(encoding="utf-8").splitlines() if line.strip()]
    table = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows])
    write_atomic(out, lambda fh: pq.write_table(table, fh))
    stream.unlink()
