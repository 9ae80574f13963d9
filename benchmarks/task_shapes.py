"""Several labels per item and numbers (#24): transferkit's default against the simple baselines, in one run.

Four tasks from real data (built once under ``benchmarks/work/``, never committed, but for the Debtags snapshot):

- ``debtags`` (texts, several labels): Debian packages' one-line descriptions (``apt-cache dumpavail``) with their
  Debtags among 10 tags (``TAGS``); a package carrying none of them is left out, a description shared by several
  packages is kept once with the union of their tags. Test: 800 fixed descriptions; the pool is the rest. A machine's
  package index changes with its sources and over time, so the rows the results were measured on are pinned in
  ``benchmarks/data/debtags.jsonl.gz`` (3,538 descriptions, from a Debian package index on 2026-12-06); delete it to
  build it again from this machine's index.
- ``clipart-scenes`` (images, several labels): 1-3 Open Clip Art drawings from the suite's 8 categories pasted on a
  white 2x2 grid; the labels are the categories shown. Composites of real images, an honest fallback for a multi-label
  image set: train composites come from the suite's clip-art pool, test composites (400) from its test images only.
- ``vader`` (texts, a number): the VADER sentiment lexicon (PyPI ``vaderSentiment`` 3.3.2, MIT): each word or
  emoticon with the mean of ten people's ratings from -4 to 4. Test: 1,000 fixed entries.
- ``clipart-count`` (images, a number): 1-6 clip-art drawings (any category) on a 3x3 grid: how many. Train from the
  pool, test (400) from the test images.

Several labels: k labeled items per label (drawn per label, so a label may get more through other labels' items),
k = 10, 20. Numbers: n = 50, 100, 200 items. Seeds 0-4. Per cell, on the test set:

- ``transferkit``: ``TextClassifier()`` / ``ImageClassifier()`` as a user fits them (``task="number"`` for numbers,
  which counts need: whole numbers with few values are classes by default), micro-
  and macro-F1, mean average precision; R², MAE;
- ``lr@0.5``: one scikit-learn ``LogisticRegression()`` per label on the same frozen features, threshold 0.5, and
  ``lr@0.5 lite0`` on one EfficientNet-Lite0's features (the usual plain probe) for images;
- ``scaled balanced lr@0.5``: the same with standardised features and balanced class weights (a careful user's);
- ``ridge``: scikit-learn ``Ridge()`` on the same frozen features (and on Lite0's alone for images); ``ridge-cv``:
  ``RidgeCV`` over the same penalties transferkit chooses among, on the raw features;
- with ``--finetune``: ``finetune lite0``, ``ImageClassifier("lite0", strategy="finetune")`` (the network's own
  weights tuned with binary cross-entropy or squared error), and ``finetune minilm``, ``TextClassifier(strategy=
  "finetune")`` (contrastive, graded pair targets; ``shapes.finetune_shape``), added to cells already measured, with
  the validation estimate and the frozen head's on the same split.

    python benchmarks/task_shapes.py               # every task; results/task-shapes-<cpu>.jsonl
    python benchmarks/task_shapes.py --table       # the tables from the results file
    python benchmarks/task_shapes.py --tasks clipart-scenes,clipart-count --finetune --seeds 0-2
    python benchmarks/task_shapes.py --tasks debtags,vader --seeds 5-7 --held-out   # seeds auto's rules never saw

Where the default tunes the network (``strategy`` in the row), the cell also fits ``frozen features``
(``strategy="features"``, the default before 5e9d58f), and the baselines read those frozen features. Text rows from
before 5e9d58f were measured that way: their ``transferkit`` rows are kept as ``frozen features``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import suite_data
from codebase_metrics import machine
from unlabeled import commit

HERE = Path(__file__).resolve().parent
WORK = suite_data.WORK
DEBTAGS = HERE / "data" / "debtags.jsonl.gz"  # the pinned snapshot (module docstring)
CACHE = str(WORK / "cache")
TAGS = ("use::gameplaying", "works-with::audio", "works-with::image", "works-with::mail", "network::server",
        "network::client", "security::cryptography", "field::mathematics", "field::biology", "works-with::db")
VADER = "vaderSentiment==3.3.2"
SEEDS = range(5)
LABEL_KS = (10, 20)
NUMBER_NS = (50, 100, 200)


RESULTS_SUFFIX = [""]  # --held-out: seeds the defaults were not chosen on go to their own file


def results_file() -> Path:
    slug = "-".join(re.findall(r"[a-z0-9]+", machine()["cpu"].lower())[:2]) or "unknown"
    return HERE / "results" / f"task-shapes-{slug}{RESULTS_SUFFIX[0]}.jsonl"


# -- data -----------------------------------------------------------------------------------------------------------

def debtags() -> tuple[list[str], list[tuple], list[str], list[tuple]]:
    """(pool texts, their tag tuples, test texts, their tag tuples)."""
    if not DEBTAGS.exists():
        raw = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
        by_text: dict[str, set] = {}
        for record in raw.split("\n\n"):
            tag = re.search(r"^Tag: (.*?)(?=^\S|\Z)", record, re.M | re.S)
            text = re.search(r"^Description: (.*)$", record, re.M)
            if not tag or not text:
                continue
            tags = {t.strip() for t in tag.group(1).replace("\n", " ").split(",")} & set(TAGS)
            if tags:
                by_text.setdefault(text.group(1).strip(), set()).update(tags)
        rows = [{"text": t, "tags": sorted(s)} for t, s in sorted(by_text.items())]
        DEBTAGS.parent.mkdir(exist_ok=True)
        with DEBTAGS.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as out:
            out.write("".join(json.dumps(r) + "\n" for r in rows).encode())
    with gzip.open(DEBTAGS, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    random.Random("debtags:test").shuffle(rows)
    test, pool = rows[:800], rows[800:]
    return ([r["text"] for r in pool], [tuple(r["tags"]) for r in pool], [r["text"] for r in test],
            [tuple(r["tags"]) for r in test])


def vader() -> tuple[list[str], list[float], list[str], list[float]]:
    wheel = next(iter((WORK / "vader").glob("*.whl")), None) if (WORK / "vader").exists() else None
    if wheel is None:
        subprocess.run(["pip", "download", "--no-deps", "-q", "-d", str(WORK / "vader"), VADER], check=True)
        wheel = next((WORK / "vader").glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        lines = z.read("vaderSentiment/vader_lexicon.txt").decode("utf-8").splitlines()
    entries = sorted({(p[0], float(p[1])) for p in (line.split("\t") for line in lines) if len(p) >= 2})
    random.Random("vader:test").shuffle(entries)
    test, pool = entries[:1000], entries[1000:]
    return [w for w, _ in pool], [v for _, v in pool], [w for w, _ in test], [v for _, v in test]


def _composites(name: str, sources: dict[str, list[Path]], n: int, grid: int, counts: tuple[int, int],
                distinct: bool) -> tuple[list[Path], list]:
    """``n`` composites of ``grid`` x ``grid`` cells of 128 px, each with a number of drawings drawn from
    ``counts``; labels: the categories shown (``distinct``: at most one drawing per category) or how many."""
    from PIL import Image

    folder = WORK / "shapes" / name
    index = folder / "index.json"
    if index.exists():
        rows = json.loads(index.read_text())
        return [folder / r["file"] for r in rows], [tuple(r["label"]) if isinstance(r["label"], list) else r["label"]
                                                    for r in rows]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"shapes:{name}")
    classes = sorted(sources)
    rows = []
    for i in range(n):
        how_many = rng.randint(*counts)
        chosen = rng.sample(classes, how_many) if distinct else [rng.choice(classes) for _ in range(how_many)]
        canvas = Image.new("RGB", (128 * grid, 128 * grid), "white")
        for cell, cls in zip(rng.sample(range(grid * grid), how_many), chosen):
            art = Image.open(rng.choice(sources[cls])).convert("RGBA")
            art.thumbnail((120, 120))
            x, y = (cell % grid) * 128 + (128 - art.width) // 2, (cell // grid) * 128 + (128 - art.height) // 2
            canvas.paste(art, (x, y), art)
        file = f"{i:04d}.png"
        canvas.save(folder / file, optimize=True)
        rows.append({"file": file, "label": sorted(set(chosen)) if distinct else how_many})
    index.write_text(json.dumps(rows))
    return _composites(name, sources, n, grid, counts, distinct)


def clipart_sources() -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    task = suite_data.load_task("clipart")
    test: dict[str, list[Path]] = {}
    for item, label in zip(task.test_items, task.test_labels):
        test.setdefault(label, []).append(item)
    return task.pool, test


def clipart_scenes():
    pool, test = clipart_sources()
    train_items, train_labels = _composites("scenes-pool", pool, 600, 2, (1, 3), True)
    test_items, test_labels = _composites("scenes-test", test, 400, 2, (1, 3), True)
    return train_items, train_labels, test_items, test_labels


def clipart_count():
    pool, test = clipart_sources()
    train_items, train_labels = _composites("count-pool", pool, 600, 3, (1, 6), False)
    test_items, test_labels = _composites("count-test", test, 400, 3, (1, 6), False)
    return train_items, [float(v) for v in train_labels], test_items, [float(v) for v in test_labels]


TASKS = {"debtags": ("text", "labels", debtags), "clipart-scenes": ("image", "labels", clipart_scenes),
         "vader": ("text", "number", vader), "clipart-count": ("image", "number", clipart_count)}


# -- samples --------------------------------------------------------------------------------------------------------

def label_sample(labels: list[tuple], k: int, seed: int, task: str) -> list[int]:
    """Indices with at least ``k`` items per label: for each label in a seeded order, its items drawn at random
    until it has ``k`` (counting those other labels brought in)."""
    rng = random.Random(f"{task}:{seed}:{k}")
    names = sorted({n for s in labels for n in s})
    rng.shuffle(names)
    chosen: list[int] = []
    have = {n: 0 for n in names}
    for name in names:
        candidates = [i for i, s in enumerate(labels) if name in s and i not in set(chosen)]
        rng.shuffle(candidates)
        for i in candidates[: max(0, k - have[name])]:
            chosen.append(i)
            for n in labels[i]:
                have[n] += 1
    return sorted(chosen)


def number_sample(n_pool: int, n: int, seed: int, task: str) -> list[int]:
    return sorted(random.Random(f"{task}:{seed}:{n}").sample(range(n_pool), n))


# -- one cell -------------------------------------------------------------------------------------------------------

def _estimator(modality: str, kind: str, seed: int):
    """The default estimator; numbers named as such (counts of 1-6 would otherwise be six classes)."""
    from transferkit import ImageClassifier, TextClassifier

    cls = TextClassifier if modality == "text" else ImageClassifier
    return cls(seed=seed, cache_dir=CACHE, verbose=False, **({"task": "number"} if kind == "number" else {}))


def _features(clf, items) -> np.ndarray:
    from transferkit.features import extract

    return extract(clf.featurizer_, list(items), cache_dir=CACHE).features


def _per_label_lr(x_train, Y, x_test, careful: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One ``LogisticRegression()`` per label at 0.5; ``careful``: standardised features and balanced class
    weights, what a user who knows rare labels need them would write."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    P = np.zeros((len(x_test), Y.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for j in range(Y.shape[1]):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, class_weight="balanced")) \
                if careful else LogisticRegression(max_iter=1000)
            P[:, j] = model.fit(x_train, Y[:, j]).predict_proba(x_test)[:, 1]
    return P, P >= 0.5


def _indicator(sets: list[tuple], names: list[str]) -> np.ndarray:
    Y = np.zeros((len(sets), len(names)), dtype=int)
    for i, s in enumerate(sets):
        Y[i, [names.index(n) for n in s]] = 1
    return Y


def _label_scores(Y, P, predicted) -> dict:
    from sklearn.metrics import average_precision_score, f1_score

    return {"micro_f1": float(f1_score(Y, predicted, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(Y, predicted, average="macro", zero_division=0)),
            "mean_ap": float(average_precision_score(Y, P, average="macro"))}


def _number_scores(y, predicted) -> dict:
    from sklearn.metrics import mean_absolute_error, r2_score

    return {"r2": float(r2_score(y, predicted)), "mae": float(mean_absolute_error(y, predicted))}


def cell_items(name: str, data, size: int, seed: int) -> tuple[list, list]:
    """The training items of a cell and their labels: k per label, or n items, drawn with the seed."""
    pool_items, pool_labels = data[0], data[1]
    pick = (label_sample(pool_labels, size, seed, name) if TASKS[name][1] == "labels"
            else number_sample(len(pool_items), size, seed, name))
    return [pool_items[i] for i in pick], [pool_labels[i] for i in pick]


def run_cell(name: str, data, size: int, seed: int) -> list[dict]:
    from sklearn.linear_model import Ridge, RidgeCV

    from transferkit.heads import ALPHAS

    modality, kind, _ = TASKS[name]
    _, _, test_items, test_labels = data
    items, labels = cell_items(name, data, size, seed)
    start = time.perf_counter()
    clf = _estimator(modality, kind, seed).fit(items, [list(v) for v in labels] if kind == "labels" else labels)
    seconds = time.perf_counter() - start
    base = {"task": name, "kind": kind, "size": size, "seed": seed, "n_train": len(items), "n_test": len(test_items),
            "strategy": clf.strategy_}
    rows = []
    frozen = None
    if clf.strategy_ == "finetune":  # auto tuned the network: the head on its frozen features too, as auto was before
        frozen = _estimator(modality, kind, seed)
        frozen.strategy = "features"
        frozen.fit(items, [list(v) for v in labels] if kind == "labels" else labels)
    if kind == "labels":
        names = clf.classes_.tolist()
        Y, Y_train = _indicator(test_labels, names), _indicator(labels, names)
        P = clf.predict_proba(test_items)
        predicted = P >= np.asarray(clf.target_["thresholds"])
        rows.append({**base, "method": "transferkit", **_label_scores(Y, P, predicted), "fit_seconds": seconds,
                     "cv_micro_f1": clf.report_.metrics["micro_f1"]})
        if frozen is not None:
            P = frozen.predict_proba(test_items)
            rows.append({**base, "method": "frozen features", **_label_scores(Y, P, P >= np.asarray(
                frozen.target_["thresholds"]))})
            clf = frozen  # the baselines read the frozen features
        x_train, x_test = _features(clf, items), _features(clf, test_items)
        rows.append({**base, "method": "lr@0.5", **_label_scores(Y, *_per_label_lr(x_train, Y_train, x_test))})
        rows.append({**base, "method": "scaled balanced lr@0.5",
                     **_label_scores(Y, *_per_label_lr(x_train, Y_train, x_test, careful=True))})
        if modality == "image":
            one = _lite0_features(items), _lite0_features(test_items)
            rows.append({**base, "method": "lr@0.5 lite0", **_label_scores(Y, *_per_label_lr(one[0], Y_train, one[1]))})
        return rows
    y = np.asarray(labels, dtype=float)
    truth = np.asarray(test_labels, dtype=float)
    rows.append({**base, "method": "transferkit", **_number_scores(truth, clf.predict(test_items)),
                 "fit_seconds": seconds, "cv_r2": clf.report_.metrics["r2"], "alpha": clf.report_.metrics["alpha"]})
    if frozen is not None:
        rows.append({**base, "method": "frozen features", **_number_scores(truth, frozen.predict(test_items))})
        clf = frozen  # the baselines read the frozen features
    x_train, x_test = _features(clf, items), _features(clf, test_items)
    rows.append({**base, "method": "ridge", **_number_scores(truth, Ridge().fit(x_train, y).predict(x_test))})
    rows.append({**base, "method": "ridge-cv",
                 **_number_scores(truth, RidgeCV(alphas=ALPHAS).fit(x_train, y).predict(x_test))})
    if modality == "image":
        one = _lite0_features(items), _lite0_features(test_items)
        rows.append({**base, "method": "ridge lite0", **_number_scores(truth, Ridge().fit(one[0], y).predict(one[1]))})
    return rows


FINETUNED = {"image": "finetune lite0", "text": "finetune minilm"}  # one network, its weights tuned


def finetune_cell(name: str, data, size: int, seed: int) -> dict:
    """The fine-tuned row of a cell (``FINETUNED``; the same items ``run_cell`` draws)."""
    from transferkit import ImageClassifier, TextClassifier

    modality, kind, _ = TASKS[name]
    _, _, test_items, test_labels = data
    items, labels = cell_items(name, data, size, seed)
    start = time.perf_counter()
    clf = (ImageClassifier("lite0", strategy="finetune", task=kind, seed=seed, cache_dir=CACHE, verbose=False)
           if modality == "image" else
           TextClassifier(strategy="finetune", task=kind, seed=seed, cache_dir=CACHE, verbose=False))
    clf.fit(items, [list(v) for v in labels] if kind == "labels" else labels)
    seconds = time.perf_counter() - start
    base = {"task": name, "kind": kind, "size": size, "seed": seed, "n_train": len(items), "n_test": len(test_items),
            "method": FINETUNED[modality], "fit_seconds": seconds}
    key = "micro_f1" if kind == "labels" else "r2"
    metrics = clf.report_.metrics
    judged = {f"val_{key}": metrics[f"val_{key}"], f"frozen_val_{key}": metrics[f"frozen_val_{key}"],
              "n_val": metrics["n_val"], "epochs_run": metrics.get("epochs_run")}
    if kind == "labels":
        names = clf.classes_.tolist()
        P = clf.predict_proba(test_items)
        return {**base, **_label_scores(_indicator(test_labels, names), P, P >= np.asarray(clf.target_["thresholds"])),
                **judged}
    return {**base, **_number_scores(np.asarray(test_labels, dtype=float), clf.predict(test_items)), **judged}


def _lite0_features(items) -> np.ndarray:
    from transferkit.features import extract
    from transferkit.featurizers import ImageBackbone
    from transferkit.zoo import resolve

    return extract(ImageBackbone.from_spec(resolve("lite0", "image")), list(items), cache_dir=CACHE).features


# -- running and tables -----------------------------------------------------------------------------------------------

def run(tasks: list[str], seeds, finetune: bool = False) -> None:
    path = results_file()
    done = set()
    wanted = set(FINETUNED.values()) if finetune else {"transferkit"}
    if path.exists():
        done = {(r["task"], r["size"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())
                if r["method"] in wanted}
    info = {**machine(), "commit": commit()}
    for name in tasks:
        modality, kind, build = TASKS[name]
        data = build()
        print(f"{name}: {len(data[0])} pool, {len(data[2])} test", flush=True)
        for size in (LABEL_KS if kind == "labels" else NUMBER_NS):
            for seed in seeds:
                if (name, size, seed) in done:
                    continue
                rows = [finetune_cell(name, data, size, seed)] if finetune else run_cell(name, data, size, seed)
                with path.open("a") as fh:
                    for row in rows:
                        fh.write(json.dumps({**row, "machine": info}) + "\n")
                print("  " + "  ".join(f"{r['method']}: " + (f"{r['micro_f1']:.3f}" if kind == "labels" else
                                                              f"{r['r2']:.3f}") for r in rows)
                      + f"  ({name}, {size}, seed {seed})", flush=True)


def table(path: Path) -> str:
    """Per task and size in the results file ``path``: each method's mean over seeds, and transferkit's paired
    difference to the baseline the issue names (lr@0.5, ridge) and to the strongest other method of that cell."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    out = []
    for kind, key, baseline in (("labels", "micro_f1", "lr@0.5"), ("number", "r2", "ridge")):
        subset = [r for r in rows if r["kind"] == kind]
        if not subset:
            continue
        methods = sorted({r["method"] for r in subset}, key=lambda m: (m != "transferkit", m))
        out.append(f"\n{key} on the test set, mean over seeds; transferkit's paired difference with a 95% t interval\n")
        out.append("| task | size | seeds | " + " | ".join(methods) + f" | vs {baseline} | vs the strongest other |")
        out.append("|---|---|---|" + "---|" * (len(methods) + 2))
        for task in dict.fromkeys(r["task"] for r in subset):
            for size in sorted({r["size"] for r in subset if r["task"] == task}):
                cell = [r for r in subset if r["task"] == task and r["size"] == size]
                seeds = sorted({r["seed"] for r in cell})
                by = {m: {r["seed"]: r[key] for r in cell if r["method"] == m} for m in methods}
                others = [m for m in methods if m != "transferkit" and by[m]]
                strongest = max(others, key=lambda m: np.mean(list(by[m].values())))

                out.append(f"| {task} | {size} | {len(seeds)} | "
                           + " | ".join(f"{np.mean(list(by[m].values())):.3f}" if by[m] else "" for m in methods)
                           + f" | {_paired(_diff(by, baseline, seeds))} | {strongest}: "
                           f"{_paired(_diff(by, strongest, seeds))} |")
    return "\n".join(out)


def _diff(by: dict, other: str, seeds: list) -> np.ndarray:
    """transferkit minus ``other``, seed by seed."""
    return np.array([by["transferkit"][s] - by[other][s] for s in seeds if s in by["transferkit"] and s in by[other]])


def _paired(diff: np.ndarray) -> str:
    from scipy import stats

    if len(diff) < 2:
        return f"{diff.mean():+.3f}" if len(diff) else ""
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return f"{diff.mean():+.3f} ({diff.mean() - half:+.3f} to {diff.mean() + half:+.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--finetune", action="store_true", help="add the fine-tuned rows (one network)")
    parser.add_argument("--held-out", action="store_true",
                        help="write to results/task-shapes-<cpu>-held-out.jsonl: seeds no default was chosen on")
    parser.add_argument("--results", type=Path, help="with --table: the results file to read (default: this cpu's)")
    args = parser.parse_args()
    if args.held_out:
        RESULTS_SUFFIX[0] = "-held-out"
    if not args.table:
        run(args.tasks.split(","), suite_data.seed_range(args.seeds), args.finetune)
    print(table(args.results if args.table and args.results else results_file()))


if __name__ == "__main__":
    main()
