"""A project on disk: the examples as folders and tables the CLI reads, and a SQLite database for labels, history
and training runs. Nothing lives only in the browser; every change is one transaction, so two tabs editing the same
project never undo each other's work.

    PROJECT/transferkit-project.db     items, classes, runs, history (SQLite, WAL)
    PROJECT/data/train/<class>/<id>.png   images, one folder per class: `transferkit fit PROJECT/data/train`
    PROJECT/data/test/<class>/...         images kept apart to test the model
    PROJECT/data/pool/<id>.png            images not labeled yet
    PROJECT/data/train.csv, test.csv, pool.csv   texts (text,label): `transferkit fit PROJECT/data/train.csv`
    PROJECT/runs/<n>/model                each training run's model folder (and report.html, onnx/ when asked)

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
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL,            -- sha256 of the content (image bytes, or the text)
    near TEXT,                       -- a difference hash (images) or the normalised text: near duplicates
    file TEXT,                       -- images: the path under data/, relative to the project
    text TEXT,                       -- texts
    label TEXT REFERENCES classes(name),
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

    def __init__(self, root: str | Path, modality: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_FILE
        with sqlite3.connect(self.db_path, timeout=30) as db:
            db.executescript(SCHEMA)  # idempotent; executescript commits on its own, so outside the transaction
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

    @property
    def modality(self) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key='modality'").fetchone()
        return row[0] if row else None

    def set_modality(self, modality: str) -> None:
        Project(self.root, modality)

    # -- classes ----------------------------------------------------------------------------------------------------
    def classes(self) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT c.name, SUM(i.split='train') AS train, SUM(i.split='test') AS test FROM classes c "
                              "LEFT JOIN items i ON i.label = c.name GROUP BY c.name ORDER BY c.created").fetchall()
        return [{"name": r["name"], "train": r["train"] or 0, "test": r["test"] or 0} for r in rows]

    def add_class(self, name: str) -> str:
        name = check_class_name(name)
        with self._db() as db:
            if db.execute("SELECT 1 FROM classes WHERE name=?", (name,)).fetchone():
                raise ProjectError(f"There is already a class {name!r}.")
            db.execute("INSERT INTO classes VALUES (?, ?)", (name, time.time()))
            self._log(db, f"class {name} created")
        return name

    def delete_class(self, name: str) -> None:
        with self._db() as db:
            n = db.execute("SELECT COUNT(*) FROM items WHERE label=?", (name,)).fetchone()[0]
            if n:
                raise ProjectError(f"Class {name!r} still has {n} example(s): relabel or delete them first.")
            db.execute("DELETE FROM classes WHERE name=?", (name,))
            self._log(db, f"class {name} deleted")

    # -- items ------------------------------------------------------------------------------------------------------
    def add_image(self, data: bytes, name: str, label: str | None, split: str = "train") -> dict:
        """Store an uploaded image (checked: size, decodable, pixels) under its digest; returns its row."""
        from PIL import Image, UnidentifiedImageError

        self._check_modality("image")
        split, label = self._check_place(split, label)
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
        relative = self._image_path(split, label, digest, FORMATS[fmt])
        write_atomic(self.root / relative, data)
        now = time.time()
        with self._db() as db:
            cur = db.execute("INSERT INTO items (digest, near, file, label, split, name, added, updated) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?)", (digest, near, relative, label, split, shown, now, now))
            self._log(db, f"image {shown} added to {split}" + (f" as {label}" if label else ""))
            return dict(db.execute("SELECT * FROM items WHERE id=?", (cur.lastrowid,)).fetchone())

    def add_texts(self, texts: list[str], labels: list[str | None], split: str = "train") -> int:
        self._check_modality("text")
        rows = []
        for text, label in zip(texts, labels):
            text = str(text).strip()
            if not text:
                continue
            if len(text) > MAX_TEXT_CHARS:
                raise ProjectError(f"A text of {len(text)} characters; at most {MAX_TEXT_CHARS} are accepted.")
            split_, label = self._check_place(split, label or None)
            rows.append((hashlib.sha256(text.encode()).hexdigest(), " ".join(text.lower().split()), text, label,
                         split_, text[:60]))
        if not rows:
            raise ProjectError("No text to add: every text was empty.")
        now = time.time()
        with self._db() as db:
            db.executemany("INSERT INTO items (digest, near, text, label, split, name, added, updated) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?)", [(*r, now, now) for r in rows])
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
        for label in {lab for lab in labels if lab}:
            if label not in self._class_names():
                self.add_class(label)
        return self.add_texts([r.get(text_col) or "" for r in rows], labels, split)

    def items(self, split: str | None = None, label: str | None = None) -> list[dict]:
        query, args = "SELECT * FROM items WHERE 1=1", []
        if split:
            query, args = query + " AND split=?", [*args, split]
        if label:
            query, args = query + " AND label=?", [*args, label]
        with self._db() as db:
            return [dict(r) for r in db.execute(query + " ORDER BY id", args).fetchall()]

    def item(self, item_id: int) -> dict:
        with self._db() as db:
            row = db.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise ProjectError(f"There is no example {item_id} (deleted in another tab?). Reload the page.")
        return dict(row)

    def update(self, item_id: int, *, label: str | None = None, split: str | None = None) -> dict:
        """Relabel an example and/or move it between train, test and the unlabeled pool."""
        row = self.item(item_id)
        new_split = split or row["split"]
        new_label = label if label is not None else row["label"]
        new_split, new_label = self._check_place(new_split, new_label if new_split != "pool" else None)
        if row["file"]:
            new_file = self._image_path(new_split, new_label, row["digest"], Path(row["file"]).suffix)
            if new_file != row["file"]:
                target = self.root / new_file
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.root / row["file"], target)
        else:
            new_file = None
        with self._db() as db:
            db.execute("UPDATE items SET label=?, split=?, file=?, updated=? WHERE id=?",
                       (new_label, new_split, new_file, time.time(), item_id))
            self._log(db, f"{row['name']}: {row['label'] or 'unlabeled'}/{row['split']} -> "
                          f"{new_label or 'unlabeled'}/{new_split}")
        if not row["file"]:
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
        else:
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
            out.append({"kind": g[0]["kind"], "items": [{k: i[k] for k in ("id", "name", "label", "split")} for i in g],
                        "across_train_and_test": {"train", "test"} <= splits,
                        "conflicting_labels": len({i["label"] for i in g if i["label"]}) > 1})
        return out

    def history(self, limit: int = 50) -> list[dict]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM history ORDER BY id DESC LIMIT ?", (limit,))]

    # -- what the CLI and the trainer read ---------------------------------------------------------------------------
    def training_data(self, split: str = "train") -> Path:
        """The folder (images) or CSV (texts) of a split, as `transferkit fit` reads it."""
        if self.modality == "image":
            return self.root / "data" / split
        self._write_tables()
        return self.root / "data" / f"{split}.csv"

    def labeled(self, split: str = "train") -> tuple[list, list[str], list[int]]:
        """(inputs, labels, item ids) of a split's labeled examples: image paths or texts."""
        rows = [r for r in self.items(split) if r["label"]]
        inputs = [str(self.root / r["file"]) if r["file"] else r["text"] for r in rows]
        return inputs, [r["label"] for r in rows], [r["id"] for r in rows]

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
            rows = db.execute("SELECT s.*, i.name, i.label, i.split, i.text, i.file FROM suggestions s JOIN items i ON "
                              "i.id = s.item WHERE s.run=? AND s.kind=? AND i.updated <= ? ORDER BY s.score DESC "
                              "LIMIT ?", (run["id"], kind, run["started"], limit)).fetchall()
        return [dict(r) for r in rows]

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

    def _check_place(self, split: str, label: str | None) -> tuple[str, str | None]:
        if split not in SPLITS:
            raise ProjectError(f"split must be one of {', '.join(SPLITS)}, not {split!r}.")
        if split == "pool":
            return split, None
        if not label:
            raise ProjectError(f"An example in {split} needs a class: choose one, or add it to the unlabeled pool.")
        if label not in self._class_names():
            raise ProjectError(f"There is no class {label!r}; create it first.")
        return split, label

    def _image_path(self, split: str, label: str | None, digest: str, suffix: str) -> str:
        folder = Path("data") / split / (label or "") if split != "pool" else Path("data") / "pool"
        return (folder / f"{digest[:20]}{suffix}").as_posix()

    def _write_tables(self) -> None:
        if self.modality != "text":
            return
        for split in SPLITS:
            rows = [(r["text"], r["label"] or "") for r in self.items(split)]
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer)
            writer.writerow(["text", "label"] if split != "pool" else ["text"])
            writer.writerows(rows if split != "pool" else [(t,) for t, _ in rows])
            write_atomic(self.root / "data" / f"{split}.csv", buffer.getvalue().encode("utf-8"))


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


