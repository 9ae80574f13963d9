"""A project on disk: the examples as folders and tables the CLI reads, and a SQLite database for labels, history
and training runs. Nothing lives only in the browser; every change is one transaction, so two tabs editing the same
project never undo each other's work.

    PROJECT/transferkit-project.db     items, classes, runs, history (SQLite, WAL)
    PROJECT/data/train/<class>/<id>.png   images, one folder per class: `transferkit fit PROJECT/data/train`
    PROJECT/data/test/<class>/...         images kept apart to test the model
    PROJECT/data/pool/<id>.png            images not labeled yet
    PROJECT/data/train.csv, test.csv, pool.csv   texts (text,label): `transferkit fit PROJECT/data/train.csv`
    PROJECT/runs/<n>/model                each training run's model folder (and report.html, onnx/ when asked)

A project's task says what an example's label is (``TASKS``): one class (the layout above), several labels, or a
number. The last two keep images under data/<split>/ without class folders, and every split's table lists the
examples with their labels (``a|b``, the separator a class name never holds) or number:

    PROJECT/data/train.csv   images: path,labels or path,value (paths relative to the table); texts: text,labels or
                             text,value. `transferkit fit PROJECT/data/train.csv --task labels` (or number)

File names never come from the browser: an image is stored under its content digest with the extension of the
format PIL found in it; the name it was uploaded under is kept in the database, for display only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path

from ..atomic import write_atomic
from ..errors import BadInputError

DB_FILE = "transferkit-project.db"
SPLITS = ("train", "test", "pool")
MAX_UPLOAD_MB = 20
MAX_PIXELS = 40_000_000  # a 50-megapixel photo is refused with a message: downscale it first
MAX_TEXT_CHARS = 20_000
SQLITE_INTEGER = 2**63  # SQLite's integers are 64-bit: -2**63 .. 2**63 - 1
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
# what an example's label is: one class, several labels (``SEPARATOR`` joins them in tables), or a number
TASKS = {"class": "a class", "labels": "at least one label", "number": "a number"}
SEPARATOR = "|"  # never in a class name (check_class_name)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL,            -- sha256 of the content (image bytes, or the text)
    near TEXT,                       -- a difference hash (images) or the normalised text: near duplicates
    file TEXT,                       -- images: the path under data/, relative to the project
    text TEXT,                       -- texts
    label TEXT REFERENCES classes(name),   -- one class per item
    labels TEXT,                     -- several labels per item: a JSON list of class names, sorted
    value REAL,                      -- a number per item
    split TEXT NOT NULL CHECK (split IN ('train', 'test', 'pool')),
    name TEXT NOT NULL,              -- what the user called it (display only)
    added REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL,            -- running, done, failed, cancelled
    strategy TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    stage TEXT,
    progress REAL,
    pid INTEGER,
    model TEXT,                      -- the model folder, relative to the project
    result TEXT                      -- JSON: accuracy, interval, n, reason, test accuracy, transfer vs scratch
);
CREATE TABLE IF NOT EXISTS suggestions (
    run INTEGER NOT NULL, item INTEGER NOT NULL, kind TEXT NOT NULL,   -- wrong, unsure (labeled), next (pool)
    predicted TEXT, confidence REAL, score REAL, PRIMARY KEY (run, item, kind)
);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, what TEXT NOT NULL);
"""


class ProjectError(BadInputError):
    """A request the project refuses, with the reason and what to do."""


def check_class_name(name: str) -> str:
    """A class name is a folder name on every system: 1-64 printable characters, no slashes, not . or .."""
    name = unicodedata.normalize("NFC", str(name)).strip()
    bad = set('/\\:*?"<>|')
    if not name or len(name) > 64 or name in (".", "..") or name.startswith(".") or any(
            c in bad or unicodedata.category(c).startswith("C") for c in name):
        raise ProjectError(f"{name[:80]!r} cannot be a class name: use 1-64 letters, digits, spaces, - or _ "
                           "(no slashes, not starting with a dot).")
    return name


class Project:
    """One project folder and its database (the state lives here, so this is a class)."""

    def __init__(self, root: str | Path, modality: str | None = None, task: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_FILE
        with sqlite3.connect(self.db_path, timeout=30) as db:
            db.executescript(SCHEMA)  # idempotent; executescript commits on its own, so outside the transaction
            columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
            for column, kind in (("labels", "TEXT"), ("value", "REAL")):  # a project made before tasks existed
                if column not in columns:
                    db.execute(f"ALTER TABLE items ADD COLUMN {column} {kind}")
        db.close()
        with self._db() as db:
            found = db.execute("SELECT value FROM meta WHERE key='modality'").fetchone()
            if found is None and modality is not None:
                if modality not in ("image", "text"):
                    raise ProjectError(f"A project holds images or texts, not {modality!r}.")
                db.execute("INSERT INTO meta VALUES ('modality', ?)", (modality,))
            elif found is not None and modality is not None and found[0] != modality:
                raise ProjectError(f"{self.root} is a project of {found[0]}s; open it without --modality, or choose "
                                   "another folder.")
        if task is not None:
            self.set_task(task)
        self._batching = 0  # inside ``batch()``: table writes wait for its end
        self._tables_stale = False

    # -- storage ----------------------------------------------------------------------------------------------------
    @contextmanager
    def _db(self):
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        try:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time: two tabs' edits are applied one after the other
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _log(self, db, what: str) -> None:
        db.execute("INSERT INTO history (at, what) VALUES (?, ?)", (time.time(), what))

    def _meta(self, key: str) -> str | None:
        """A project setting (the ``meta`` table), or None where it was never set."""
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def modality(self) -> str | None:
        return self._meta("modality")

    def set_modality(self, modality: str, task: str | None = None) -> None:
        Project(self.root, modality, task)

    @property
    def task(self) -> str:
        """What an example's label is: ``class`` (one class; projects made before tasks existed), ``labels`` or
        ``number``."""
        return self._meta("task") or "class"

    def set_task(self, task: str) -> None:
        """Choose the task; it can change only while no example carries a label."""
        if task not in TASKS:
            raise ProjectError(f"A project's examples have one class, several labels or a number (task class, labels "
                               f"or number), not {task!r}.")
        with self._db() as db:
            found = db.execute("SELECT value FROM meta WHERE key='task'").fetchone()
            current = found[0] if found else "class"
            if current == task:
                return
            labeled = db.execute("SELECT COUNT(*) FROM items WHERE label IS NOT NULL OR labels IS NOT NULL OR value "
                                 "IS NOT NULL").fetchone()[0]
            if labeled:
                raise ProjectError(f"{labeled} example(s) already carry {TASKS[current]} each; the task cannot change "
                                   f"to {task}. Start another project for it.")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('task', ?)", (task,))
            self._log(db, f"task set to {task}")

    @property
    def pool_has_others(self) -> bool:
        """Whether the unlabeled pool may hold things of none of the classes (``fit(unlabeled_has_others=True)``):
        then a run's "none of these" learns from it. Off by default: a pool is usually the rest of the folder."""
        return self._meta("pool_has_others") == "1"

    def set_pool_has_others(self, value: bool) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('pool_has_others', ?)", ("1" if value else "0",))
            self._log(db, "the unlabeled pool " + ("may hold things of none of the classes" if value else
                                                   "holds the classes only"))

    # -- classes ----------------------------------------------------------------------------------------------------
    def classes(self) -> list[dict]:
        """The classes (several labels: the labels) with how many train and test examples carry each."""
        with self._db() as db:
            names = [r[0] for r in db.execute("SELECT name FROM classes ORDER BY created")]
            counts = {name: {"name": name, "train": 0, "test": 0} for name in names}
            # counted in SQLite (the page polls this): a class in ``label``, several labels as a JSON list
            found = db.execute("SELECT label, split, COUNT(*) FROM items WHERE labels IS NULL AND value IS NULL AND "
                               "label IS NOT NULL AND split IN ('train', 'test') GROUP BY label, split UNION ALL "
                               "SELECT each.value, split, COUNT(*) FROM items, json_each(items.labels) AS each WHERE "
                               "split IN ('train', 'test') GROUP BY each.value, split").fetchall()
        for name, split, n in found:
            if name in counts:
                counts[name][split] += n
        return list(counts.values())

    def add_class(self, name: str) -> str:
        name = check_class_name(name)
        if self.task == "number":
            raise ProjectError("This project's examples carry a number each, not classes: type the number when you "
                               "add examples.")
        with self._db() as db:
            if db.execute("SELECT 1 FROM classes WHERE name=?", (name,)).fetchone():
                raise ProjectError(f"There is already a class {name!r}.")
            db.execute("INSERT INTO classes VALUES (?, ?)", (name, time.time()))
            self._log(db, f"class {name} created")
        return name

    def delete_class(self, name: str) -> None:
        n = len(self.items(label=name))
        with self._db() as db:
            if n:
                raise ProjectError(f"Class {name!r} still has {n} example(s): relabel or delete them first.")
            db.execute("DELETE FROM classes WHERE name=?", (name,))
            self._log(db, f"class {name} deleted")

    # -- items ------------------------------------------------------------------------------------------------------
    def add_image(self, data: bytes, name: str, label: str | None, split: str = "train") -> dict:
        """Store an uploaded image (checked: size, decodable, pixels) under its digest; returns its row."""
        from PIL import Image, UnidentifiedImageError

        self._check_modality("image")
        split, place = self._check_place(split, label)
        shown = _check_upload_name(name)
        if len(data) > MAX_UPLOAD_MB * 2**20:
            raise ProjectError(f"{shown} is larger than {MAX_UPLOAD_MB} MB, the most an image may be here. Make it "
                               "smaller (a photo exported at 4,000 pixels or less is plenty).")
        try:
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ProjectError(f"{shown} is {w}x{h} ({w * h / 1e6:.0f} megapixels); at most "
                                       f"{MAX_PIXELS / 1e6:.0f} megapixels are accepted. Downscale it first.")
                fmt = img.format
                img.load()
                near = _difference_hash(img)
        except ProjectError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise ProjectError(f"{shown} is not an image that can be read (PNG, JPEG, WebP, GIF, BMP or TIFF).") from None
        if fmt not in FORMATS:
            raise ProjectError(f"{shown} is a {fmt} image; use PNG, JPEG, WebP, GIF, BMP or TIFF.")
        digest = hashlib.sha256(data).hexdigest()
        relative = self._image_path(split, place["label"], digest, FORMATS[fmt])
        write_atomic(self.root / relative, data)
        now = time.time()
        with self._db() as db:
            cur = db.execute("INSERT INTO items (digest, near, file, label, labels, value, split, name, added, updated) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (digest, near, relative, place["label"],
                                                                      place["labels"], place["value"], split, shown,
                                                                      now, now))
            self._log(db, f"image {shown} added to {split}" + (f" as {label_text(place)}" if split != "pool" else ""))
            row = _parsed(db.execute("SELECT * FROM items WHERE id=?", (cur.lastrowid,)).fetchone())
        self._write_tables()
        return row

    def add_texts(self, texts: list[str], labels: list, split: str = "train") -> int:
        """Texts with their labels (a class, a list of labels or ``a|b``, or a number, as the task says; None in the
        unlabeled pool); empty texts are skipped."""
        self._check_modality("text")
        rows = []
        for text, label in zip(texts, labels):
            text = str(text).strip()
            if not text:
                continue
            if len(text) > MAX_TEXT_CHARS:
                raise ProjectError(f"A text of {len(text)} characters; at most {MAX_TEXT_CHARS} are accepted.")
            split_, place = self._check_place(split, label if label not in ("", []) else None)
            rows.append((hashlib.sha256(text.encode()).hexdigest(), " ".join(text.lower().split()), text,
                         place["label"], place["labels"], place["value"], split_, text[:60]))
        if not rows:
            raise ProjectError("No text to add: every text was empty.")
        now = time.time()
        with self._db() as db:
            db.executemany("INSERT INTO items (digest, near, text, label, labels, value, split, name, added, updated) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(*r, now, now) for r in rows])
            self._log(db, f"{len(rows)} text(s) added to {split}")
        self._write_tables()
        return len(rows)

    def add_csv(self, data: bytes, split: str = "train") -> int:
        """Texts pasted or uploaded as CSV: a text column and (optionally) a label column, found by name."""
        from ..data.texts import LABEL_COLUMN_NAMES, TEXT_COLUMN_NAMES

        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ProjectError("The CSV is not UTF-8 text; save it as UTF-8 and paste it again.") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        rows = list(reader)
        if not rows:
            raise ProjectError("The CSV has no rows under its header (a header like text,label, then one text per row).")
        lowered = {c.lower(): c for c in columns}
        text_col = next((lowered[c] for c in TEXT_COLUMN_NAMES if c in lowered), None)
        label_col = next((lowered[c] for c in LABEL_COLUMN_NAMES if c in lowered), None)
        if text_col is None:
            raise ProjectError(f"No text column among {columns}: name it text (or sentence, content).")
        labels = [r.get(label_col) if label_col else None for r in rows]
        if self.task != "number":  # classes (labels) named in the table are created
            names = {n.strip() for lab in labels if lab for n in
                     (lab.split(SEPARATOR) if self.task == "labels" else [lab]) if n.strip()}
            for name in sorted(names - self._class_names()):
                self.add_class(name)
        return self.add_texts([r.get(text_col) or "" for r in rows], labels, split)

    def counts(self) -> dict[str, int]:
        """How many examples each split holds (counted in SQLite: the page polls this)."""
        with self._db() as db:
            found = dict(db.execute("SELECT split, COUNT(*) FROM items GROUP BY split").fetchall())
        return {split: int(found.get(split, 0)) for split in SPLITS}

    def items(self, split: str | None = None, label: str | None = None) -> list[dict]:
        """The examples (of ``split``; carrying the class or label ``label``), each with ``labels`` as a list."""
        query, args = "SELECT * FROM items WHERE 1=1", []
        if split:
            query, args = query + " AND split=?", [*args, split]
        with self._db() as db:
            rows = [_parsed(r) for r in db.execute(query + " ORDER BY id", args).fetchall()]
        return [r for r in rows if label in _names_of(r)] if label else rows

    def item(self, item_id: int) -> dict:
        row = None
        if -SQLITE_INTEGER <= item_id < SQLITE_INTEGER:  # an id SQLite cannot hold is no example's
            with self._db() as db:
                row = db.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise ProjectError(f"There is no example {item_id} (deleted in another tab?). Reload the page.")
        return _parsed(row)

    def update(self, item_id: int, *, label=None, split: str | None = None) -> dict:
        """Relabel an example (a class, labels or a number, as the task says) and/or move it between train, test and
        the unlabeled pool."""
        row = self.item(item_id)
        new_split = split or row["split"]
        new_target = label if label is not None else target_of(row)
        new_split, place = self._check_place(new_split, new_target if new_split != "pool" else None)
        new_label = place["label"]
        if row["file"]:
            new_file = self._image_path(new_split, new_label, row["digest"], Path(row["file"]).suffix)
            if new_file != row["file"]:
                target = self.root / new_file
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.root / row["file"], target)
        else:
            new_file = None
        with self._db() as db:
            db.execute("UPDATE items SET label=?, labels=?, value=?, split=?, file=?, updated=? WHERE id=?",
                       (new_label, place["labels"], place["value"], new_split, new_file, time.time(), item_id))
            self._log(db, f"{row['name']}: {label_text(row) if row['split'] != 'pool' else 'unlabeled'}/{row['split']} "
                          f"-> {label_text(place) if new_split != 'pool' else 'unlabeled'}/{new_split}")
        self._write_tables()
        return self.item(item_id)

    def delete(self, item_id: int) -> None:
        row = self.item(item_id)
        with self._db() as db:
            db.execute("DELETE FROM suggestions WHERE item=?", (item_id,))
            db.execute("DELETE FROM items WHERE id=?", (item_id,))
            self._log(db, f"{row['name']} deleted")
        if row["file"]:
            others = self.items()
            if not any(o["file"] == row["file"] for o in others):
                (self.root / row["file"]).unlink(missing_ok=True)
        self._write_tables()

    def image_file(self, item_id: int) -> Path:
        row = self.item(item_id)
        if not row["file"]:
            raise ProjectError(f"Example {item_id} is a text, not an image.")
        return self.root / row["file"]

    def duplicates(self) -> list[dict]:
        """Groups of exact duplicates (same content) and near duplicates (images: difference hashes at most 4 bits
        apart; texts: the same words ignoring case and spacing), flagging groups that span train and test."""
        items = self.items()
        groups: list[list[dict]] = []
        for kind, key in (("exact", "digest"), ("near", "near")):
            by: dict[str, list[dict]] = {}
            for it in items:
                if it[key]:
                    by.setdefault(it[key], []).append(it)
            groups += [[{**i, "kind": kind} for i in g] for g in by.values() if len(g) > 1
                       and frozenset(i["id"] for i in g) not in {frozenset(j["id"] for j in h) for h in groups}]
        if self.modality == "image":  # near: a small Hamming distance between difference hashes
            import numpy as np

            seen = {frozenset(i["id"] for i in g) for g in groups}
            hashed = [it for it in items if it["near"]]
            bits = np.array([int(it["near"], 16) for it in hashed], dtype=np.uint64)
            for a in range(len(hashed) - 1):  # one vectorised row of the distance matrix at a time
                rest = (bits[a + 1:] ^ bits[a]).view(np.uint8).reshape(-1, 8)
                distance = np.unpackbits(rest, axis=1).sum(axis=1)
                for b in np.flatnonzero((distance > 0) & (distance <= 4)) + a + 1:
                    if frozenset((hashed[a]["id"], hashed[b]["id"])) not in seen:
                        groups.append([{**hashed[a], "kind": "near"}, {**hashed[b], "kind": "near"}])
        out = []
        for g in groups:
            splits = {i["split"] for i in g}
            out.append({"kind": g[0]["kind"],
                        "items": [{**{k: i[k] for k in ("id", "name", "split")},
                                   "label": label_text(i) if target_of(i) is not None else None} for i in g],
                        "across_train_and_test": {"train", "test"} <= splits,
                        "conflicting_labels": len({repr(target_of(i)) for i in g if target_of(i) is not None}) > 1})
        return out

    def history(self, limit: int = 50) -> list[dict]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM history ORDER BY id DESC LIMIT ?", (limit,))]

    # -- what the CLI and the trainer read ---------------------------------------------------------------------------
    def training_data(self, split: str = "train") -> Path:
        """The folder (images of one class each) or table of a split, as `transferkit fit` reads it."""
        if self.modality == "image" and self.task == "class":
            return self.root / "data" / split
        self._write_tables()
        return self.root / "data" / f"{split}.csv"

    def labeled(self, split: str = "train") -> tuple[list, list, list[int]]:
        """(inputs, labels, item ids) of a split's labeled examples: image paths or texts; a class, a tuple of labels
        or a number each, as the task says."""
        rows = [r for r in self.items(split) if target_of(r) is not None]
        inputs = [str(self.root / r["file"]) if r["file"] else r["text"] for r in rows]
        return inputs, [target_of(r) for r in rows], [r["id"] for r in rows]

    # -- runs -------------------------------------------------------------------------------------------------------
    def new_run(self, strategy: str) -> int:
        with self._db() as db:
            if db.execute("SELECT 1 FROM runs WHERE status='running'").fetchone():
                raise ProjectError("A training run is already going; wait for it or cancel it.")
            cur = db.execute("INSERT INTO runs (status, strategy, started, stage, progress) VALUES "
                             "('running', ?, ?, 'starting', 0)", (strategy, time.time()))
            self._log(db, f"run {cur.lastrowid} started ({strategy})")
            return int(cur.lastrowid or 0)

    def set_run(self, run_id: int, **values) -> None:
        if "result" in values and not isinstance(values["result"], (str, type(None))):
            values["result"] = json.dumps(values["result"])
        columns = ", ".join(f"{k}=?" for k in values)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {columns} WHERE id=?", (*values.values(), run_id))
            if values.get("status") in ("done", "failed", "cancelled"):
                self._log(db, f"run {run_id} {values['status']}")

    def runs(self) -> list[dict]:
        with self._db() as db:
            rows = [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY id DESC")]
        for r in rows:
            r["result"] = json.loads(r["result"]) if r["result"] else None
        return rows

    def run(self, run_id: int) -> dict:
        found = [r for r in self.runs() if r["id"] == run_id]
        if not found:
            raise ProjectError(f"There is no run {run_id}.")
        return found[0]

    def latest_model(self) -> Path | None:
        done = [r for r in self.runs() if r["status"] == "done" and r["model"]]
        return self.root / done[0]["model"] if done else None

    def save_suggestions(self, run_id: int, rows: list[tuple[int, str, str, float, float]]) -> None:
        with self._db() as db:
            db.execute("DELETE FROM suggestions WHERE run=?", (run_id,))
            db.executemany("INSERT OR REPLACE INTO suggestions (run, item, kind, predicted, confidence, score) VALUES "
                           "(?, ?, ?, ?, ?, ?)", [(run_id, *r) for r in rows])

    def suggestions(self, kind: str, limit: int = 12) -> list[dict]:
        """The latest finished run's suggestions that still apply (the example exists and was not relabeled since)."""
        done = [r for r in self.runs() if r["status"] == "done"]
        if not done:
            return []
        run = done[0]
        with self._db() as db:
            rows = db.execute("SELECT s.*, i.name, i.label, i.labels, i.value, i.split, i.text, i.file FROM suggestions s "
                              "JOIN items i ON i.id = s.item WHERE s.run=? AND s.kind=? AND i.updated <= ? ORDER BY "
                              "s.score DESC LIMIT ?", (run["id"], kind, run["started"], limit)).fetchall()
        return [_parsed(r) for r in rows]

    # -- helpers ----------------------------------------------------------------------------------------------------
    def _class_names(self) -> set[str]:
        with self._db() as db:
            return {r[0] for r in db.execute("SELECT name FROM classes")}

    def _check_modality(self, modality: str) -> None:
        found = self.modality
        if found is None:
            self.set_modality(modality)
        elif found != modality:
            raise ProjectError(f"This is a project of {found}s; it cannot take {modality}s.")

    def _check_place(self, split: str, target) -> tuple[str, dict]:
        """The split and the label columns (``label``, ``labels``, ``value``) of an example placed there with
        ``target``: a class, labels (a list, or ``a|b``) or a number, as the project's task says."""
        if split not in SPLITS:
            raise ProjectError(f"split must be one of {', '.join(SPLITS)}, not {split!r}.")
        place: dict = {"label": None, "labels": None, "value": None}
        if split == "pool":
            return split, place
        task = self.task
        if target is None or target == "" or (isinstance(target, (list, tuple)) and not target):
            raise ProjectError(f"An example in {split} needs {TASKS[task]}: give it, or add the example to the "
                               "unlabeled pool.")
        if task == "number":
            return split, {**place, "value": _number(target)}
        names = _label_names(target) if task == "labels" else [target]
        for name in names:
            if not isinstance(name, str):
                raise ProjectError(f"A class is a name, not {name!r}.")
            if name not in self._class_names():
                raise ProjectError(f"There is no {'label' if task == 'labels' else 'class'} {name!r}; create it first.")
        if task == "labels":
            return split, {**place, "labels": json.dumps(sorted(set(names)))}
        return split, {**place, "label": names[0]}

    def _image_path(self, split: str, label: str | None, digest: str, suffix: str) -> str:
        """Where an image lives: its class's folder (one class per item), else its split's folder."""
        folder = Path("data") / split / (label or "") if split != "pool" else Path("data") / "pool"
        return (folder / f"{digest[:20]}{suffix}").as_posix()

    @contextmanager
    def batch(self):
        """Changes whose tables are written once, at the end (an upload of many images), not once per change."""
        self._batching += 1
        try:
            yield self
        finally:
            self._batching -= 1
            if not self._batching and self._tables_stale:
                self._write_tables()

    def _write_tables(self) -> None:
        """Each split's table, as `transferkit fit` reads it: texts always, images where a class folder cannot say
        their labels (several labels, numbers). Inside ``batch()``, at its end."""
        if self._batching:
            self._tables_stale = True
            return
        self._tables_stale = False
        task, image = self.task, self.modality == "image"
        if self.modality is None or (image and task == "class"):
            return
        column = {"class": "label", "labels": "labels", "number": "value"}[task]
        for split in SPLITS:
            rows = self.items(split)
            first = [Path(r["file"]).relative_to("data").as_posix() if image else r["text"] for r in rows]
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer)
            if split == "pool":
                writer.writerow(["path" if image else "text"])
                writer.writerows([(f,) for f in first])
            else:
                writer.writerow(["path" if image else "text", column])
                writer.writerows([(f, label_text(r) if target_of(r) is not None else "") for f, r in zip(first, rows)])
            write_atomic(self.root / "data" / f"{split}.csv", buffer.getvalue().encode("utf-8"))


def target_of(row) -> str | tuple | float | None:
    """An example's label: its class, its labels (a tuple), its number, or None (unlabeled)."""
    if row["labels"] is not None:
        labels = row["labels"]
        return tuple(json.loads(labels) if isinstance(labels, str) else labels)
    if row["value"] is not None:
        return float(row["value"])
    return row["label"]


def _names_of(row) -> list[str]:
    """The classes (labels) an example carries."""
    target = target_of(row)
    return list(target) if isinstance(target, tuple) else [target] if isinstance(target, str) else []


def label_text(row) -> str:
    """An example's label as tables and the history write it: ``a|b`` for several labels, ``%g`` for a number."""
    target = target_of(row)
    if isinstance(target, tuple):
        return SEPARATOR.join(target)
    if isinstance(target, float):
        return f"{target:.10g}"
    return target or ""


def _parsed(row) -> dict:
    out = dict(row)
    out["labels"] = json.loads(out["labels"]) if out.get("labels") else None
    return out


def _label_names(target) -> list:
    """Several labels, given as a list or as ``a|b``: each name stripped; an empty one refused."""
    names = [n.strip() if isinstance(n, str) else n for n in
             (target.split(SEPARATOR) if isinstance(target, str) else list(target))]
    if any(n == "" for n in names):
        raise ProjectError(f"{SEPARATOR.join(map(str, names))!r} holds an empty label (two separators in a row, or one "
                           f"at an end); separate labels with a single {SEPARATOR}.")
    return names


def _number(target) -> float:
    import math

    if isinstance(target, bool) or isinstance(target, (list, tuple)):
        raise ProjectError(f"An example's label in this project is a number, not {target!r}.")
    try:
        value = float(str(target).strip())
    except ValueError:
        raise ProjectError(f"An example's label in this project is a number; {str(target)[:40]!r} is not one (write "
                           "it like 12, -0.5 or 3.25).") from None
    if not math.isfinite(value):
        raise ProjectError(f"{target!r} is not a finite number.")
    return value


def _check_upload_name(name: str) -> str:
    """An uploaded file's name, kept for display only (files are stored under their digest). A browser sends a plain
    name; one with a path in it, or control characters, was crafted, and the upload is refused."""
    name = str(name or "upload")
    if any(c in name for c in "/\\") or name.strip(". ") == "" or any(unicodedata.category(c).startswith("C")
                                                                   for c in name) or len(name) > 255:
        raise ProjectError(f"{name[:80]!r} is not a plain file name (it holds a path or control characters); "
                           "nothing was added. Rename the file and upload it again.")
    return name[:80]


def _difference_hash(img) -> str:
    """A 64-bit difference hash (Krawetz's dHash, ``imagehash.dhash``) as 16 hex digits."""
    import imagehash

    return str(imagehash.dhash(img))


