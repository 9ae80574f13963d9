"""The few-shot benchmark suite: transferkit against the twenty-line probe and the peers, on tasks nobody tuned to.

    make bench-deps      # fastai, SetFit and the data packages (benchmark-only)
    apt-get install openclipart-png dataset-fashion-mnist oxygen-icon-theme     # image tasks; npm fetches spam
    python benchmarks/fewshot.py --resume                  # everything (hours on 2 CPU cores); resumable
    python benchmarks/fewshot.py --tasks clipart --ks 5 --seeds 2 --methods probe,auto    # a slice
    python benchmarks/fewshot.py --table                   # only print the tables from the results file
    python benchmarks/fewshot.py --methods auto --results rerun.jsonl && python benchmarks/fewshot.py --merge rerun.jsonl
                                                           # rerun a method with newer code, replace its rows

Tasks are in ``suite_data.py`` (4 image domains, 3 text tasks, fixed test sets). For every task, k labels per class
(k = 2, 5, 10, 20, and 50 where the pool allows) and seed, every method trains on the same sample and is scored on the
same test set. Methods:

- ``probe``: the twenty-line script a user would write. Images: the packaged EfficientNet-Lite0 weights in timm,
  timm's eval transform, features from ``reset_classifier(0)``, scikit-learn's ``LogisticRegression(max_iter=1000)``
  on the raw features. Texts: the packaged all-MiniLM-L6-v2 through sentence-transformers' ``encode`` and the same
  ``LogisticRegression``.
- ``features``, ``finetune``, ``scratch``, ``auto``: transferkit's strategies; ``auto`` is what ``transferkit fit``
  does by default.
- ``fastai`` (images): ``vision_learner(...).fine_tune(4)`` on the same Lite0 body with the same weights.
- ``setfit`` (texts): SetFit 1.2 with its defaults on the same MiniLM.

Each run appends one JSON line to the results file (flushed, so a killed run loses at most the run in progress;
``--resume`` skips what is there). Fit times come from a cold feature cache; the test set is embedded outside the
timed fit. The tables report, per task and k, the mean and standard deviation over seeds, the mean paired
difference to ``probe`` with a 95% confidence interval (t over seeds), and for ``auto`` the accuracy it printed
after the fit next to the test accuracy. The machine (CPU model, flags, threads) and the commit are recorded with
every run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "fewshot.jsonl"
KS = (2, 5, 10, 20, 50)
IMAGE_METHODS = ("probe", "features", "auto", "finetune", "fastai")
TEXT_METHODS = ("probe", "features", "auto", "finetune", "scratch", "setfit")
TARGET_KS = (5, 10, 20)
SHARED_CACHE = suite_data.WORK / "cache"


def machine() -> dict:
    info = {"cpu": "", "flags": [], "threads": os.cpu_count(), "torch_threads": None}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not info["cpu"]:
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not info["flags"]:
                wanted = {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
                info["flags"] = sorted(wanted & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return info


# -- the twenty-line probes ---------------------------------------------------------------------------------------

class ImageProbe:
    """What a user writes in twenty lines: timm's Lite0 with the packaged weights, its eval transform, raw pooled
    features, LogisticRegression(max_iter=1000). Features of the fixed test set are computed once per task."""

    def __init__(self) -> None:
        import timm
        import torch
        from timm.data import create_transform, resolve_data_config

        from transferkit.zoo import create_backbone, resolve

        self.torch = torch
        self.model = create_backbone(resolve("tf_efficientnet_lite0"), num_classes=None)  # the weights, loaded
        self.model.reset_classifier(0)
        self.model.eval()
        self.transform = create_transform(**resolve_data_config({}, model=self.model))
        self.timm = timm
        self.test_cache: dict[str, np.ndarray] = {}

    def features(self, paths) -> np.ndarray:
        from PIL import Image

        rows = []
        with self.torch.no_grad():
            for start in range(0, len(paths), 32):
                batch = [self.transform(Image.open(p).convert("RGB")) for p in paths[start: start + 32]]
                rows.append(self.model(self.torch.stack(batch)).numpy())
        return np.concatenate(rows)

    def run(self, task, items, labels) -> dict:
        from sklearn.linear_model import LogisticRegression

        start = time.perf_counter()
        clf = LogisticRegression(max_iter=1000).fit(self.features(items), labels)
        seconds = time.perf_counter() - start
        if task.name not in self.test_cache:
            self.test_cache[task.name] = self.features(task.test_items)
        accuracy = float((clf.predict(self.test_cache[task.name]) == np.array(task.test_labels)).mean())
        return {"accuracy": accuracy, "seconds": seconds}


class TextProbe:
    """Frozen all-MiniLM-L6-v2 (sentence-transformers' encode) and LogisticRegression(max_iter=1000)."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from transferkit.zoo import resolve
        from transferkit.zoo._text import encoder_folder

        self.model = SentenceTransformer(str(encoder_folder(resolve("all-MiniLM-L6-v2", "text"))), device="cpu")
        self.test_cache: dict[str, np.ndarray] = {}

    def run(self, task, items, labels) -> dict:
        from sklearn.linear_model import LogisticRegression

        start = time.perf_counter()
        clf = LogisticRegression(max_iter=1000).fit(self.model.encode(list(items), batch_size=32), labels)
        seconds = time.perf_counter() - start
        if task.name not in self.test_cache:
            self.test_cache[task.name] = self.model.encode(list(task.test_items), batch_size=32)
        accuracy = float((clf.predict(self.test_cache[task.name]) == np.array(task.test_labels)).mean())
        return {"accuracy": accuracy, "seconds": seconds}


# -- transferkit ---------------------------------------------------------------------------------------------------

def run_transferkit(method: str, task, items, labels, seed: int) -> dict:
    from transferkit import ImageClassifier, TextClassifier
    from transferkit.strategies import make_strategy

    cls = ImageClassifier if task.modality == "image" else TextClassifier
    with tempfile.TemporaryDirectory() as cold:
        clf = cls(strategy=make_strategy(method), seed=seed, cache_dir=cold, verbose=False)
        start = time.perf_counter()
        clf.fit(list(items), list(labels))
        seconds = time.perf_counter() - start
    clf.cache_dir = str(SHARED_CACHE)  # the fixed test set is embedded outside the timed fit, once
    accuracy = clf.score(list(task.test_items), list(task.test_labels))
    m, printed = clf.metrics_, clf.report_.estimate
    return {"accuracy": accuracy, "seconds": seconds, "printed": printed.value if printed else None,
            "printed_n": printed.n if printed else None, "printed_how": printed.key if printed else None,
            "choice": clf.report_.auto_choice,
            "representation": clf.featurizer_.name, "val_accuracy": m.get("val_accuracy"),
            "probe_val_accuracy": m.get("probe_val_accuracy"), "frozen_cv": m.get("probe_cv_accuracy",
                                                                                  m.get("cv_accuracy"))}


# -- peers ---------------------------------------------------------------------------------------------------------

def run_fastai(task, items, labels, seed: int, epochs: int = 4) -> dict:
    from fastai.vision.all import (
        ImageDataLoaders,
        Normalize,
        Resize,
        accuracy,
        aug_transforms,
        set_seed,
        vision_learner,
    )

    from transferkit import zoo

    spec = zoo.resolve("tf_efficientnet_lite0")
    pre = spec.preprocessing
    set_seed(seed, reproducible=True)
    start = time.perf_counter()
    bs = max(2, min(32, int(0.8 * len(items)) // 2))  # fastai drops the last partial batch: keep it below the set
    dls = ImageDataLoaders.from_lists(
        "/", [str(p) for p in items], list(labels), valid_pct=0.2, seed=seed, bs=bs,
        item_tfms=Resize(pre.input_size), batch_tfms=[*aug_transforms(), Normalize.from_stats(pre.mean, pre.std)],
        num_workers=0,
    )
    learn = vision_learner(dls, spec.arch, pretrained=False, metrics=accuracy)
    state = zoo.create_backbone(spec, num_classes=0).state_dict()
    result = learn.model[0].model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and all("classifier" in k for k in result.missing_keys), result
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
    seconds = time.perf_counter() - start
    dl = learn.dls.test_dl([str(p) for p in task.test_items])
    with learn.no_bar():
        preds, _ = learn.get_preds(dl=dl)
    predicted = np.array(learn.dls.vocab)[preds.argmax(1).numpy()]
    return {"accuracy": float((predicted == np.array(task.test_labels)).mean()), "seconds": seconds}


def run_setfit(task, items, labels, seed: int) -> dict:
    import logging

    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from transferkit.zoo import resolve
    from transferkit.zoo._text import encoder_folder

    logging.getLogger("setfit").setLevel(logging.ERROR)
    folder = encoder_folder(resolve("all-MiniLM-L6-v2", "text"))
    classes = sorted(set(labels))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SetFitModel.from_pretrained(str(folder), labels=classes)
        args = TrainingArguments(batch_size=16, num_epochs=1, seed=seed, show_progress_bar=False, report_to="none",
                                 save_strategy="no", logging_strategy="no")
        data = Dataset.from_dict({"text": list(items), "label": [classes.index(c) for c in labels]})
        Trainer(model=model, args=args, train_dataset=data).train()
    seconds = time.perf_counter() - start
    predictions = model.predict(list(task.test_items), batch_size=64, show_progress_bar=False)
    predicted = [classes[int(p)] if not isinstance(p, str) else p for p in predictions]
    accuracy = sum(p == t for p, t in zip(predicted, task.test_labels)) / len(task.test_labels)
    return {"accuracy": float(accuracy), "seconds": seconds}


# -- the run -------------------------------------------------------------------------------------------------------

def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
    return rows


def run(args) -> None:
    done = {(r["task"], r["k"], r["seed"], r["method"]) for r in read_results(args.results)} if args.resume else set()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    where = machine()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or None
    probes: dict[str, object] = {}
    with open(args.results, "a" if args.resume else "w") as out:
        for name in args.tasks:
            task = suite_data.load_task(name)
            allowed = IMAGE_METHODS if task.modality == "image" else TEXT_METHODS
            methods = [m for m in args.methods if m in allowed]
            print(task.describe(), flush=True)
            for k in args.ks:
                if k > task.max_k():
                    continue
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    items, labels = task.sample(k, seed)
                    for method in methods:
                        if (name, k, seed, method) in done or (method == "setfit" and k > args.setfit_max_k.get(name, 99)):
                            continue
                        if method == "probe":
                            probe = probes.setdefault(task.modality, ImageProbe() if task.modality == "image" else TextProbe())
                            result = probe.run(task, items, labels)
                        elif method == "fastai":
                            result = run_fastai(task, items, labels, seed)
                        elif method == "setfit":
                            result = run_setfit(task, items, labels, seed)
                        else:
                            result = run_transferkit(method, task, items, labels, seed)
                        row = {"task": name, "modality": task.modality, "k": k, "seed": seed, "method": method,
                               "n_train": len(items), "n_test": len(task.test_items), **result, "machine": where,
                               "commit": commit}
                        out.write(json.dumps(row) + "\n")
                        out.flush()
                        print(f"{name:9s} k={k:<3d} seed={seed} {method:9s} {result['accuracy']:.3f} "
                              f"{result['seconds']:6.1f} s" + (f" ({result.get('choice')})" if result.get("choice") else ""),
                              flush=True)


def merge(results: Path, others: list[Path]) -> None:
    """Rows of ``others`` replace the rows of ``results`` with the same task, k, seed and method (a rerun of some
    cells with newer code); the file is rewritten atomically."""
    key = lambda r: (r["task"], r["k"], r["seed"], r["method"])  # noqa: E731
    rows = {key(r): r for r in read_results(results)}
    for other in others:
        rows |= {key(r): r for r in read_results(other)}
    order = {t: i for i, t in enumerate(suite_data.IMAGE_TASKS + suite_data.TEXT_TASKS)}
    ordered = sorted(rows.values(), key=lambda r: (order.get(r["task"], 99), r["k"], r["seed"], r["method"]))
    tmp = results.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in ordered))
    tmp.replace(results)


# -- tables --------------------------------------------------------------------------------------------------------

def _paired(rows: dict, method: str, base: str = "probe") -> tuple[float, float, int] | None:
    """Mean paired difference (points) to ``base`` over the seeds both ran, and the half-width of its 95% CI."""
    from scipy import stats

    seeds = sorted(set(rows.get(method, {})) & set(rows.get(base, {})))
    if not seeds:
        return None
    d = [100 * (rows[method][s]["accuracy"] - rows[base][s]["accuracy"]) for s in seeds]
    half = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return statistics.mean(d), half, len(d)


def tables(path: Path) -> str:
    results = read_results(path)
    if not results:
        return f"No results in {path}."
    cells: dict[tuple, dict] = {}
    for r in results:
        cells.setdefault((r["modality"], r["task"], r["k"]), {}).setdefault(r["method"], {})[r["seed"]] = r
    lines = []
    machines = {json.dumps(r["machine"], sort_keys=True) for r in results}
    lines.append("Machine(s): " + "; ".join(f"{m['cpu']} ({', '.join(m['flags'])}), {m['threads']} threads"
                                           for m in map(json.loads, machines)))
    for modality, methods in (("image", IMAGE_METHODS), ("text", TEXT_METHODS)):
        keys = sorted(k for k in cells if k[0] == modality)
        if not keys:
            continue
        present = [m for m in methods if any(m in cells[k] for k in keys)]
        lines.append(f"\n#### {modality.capitalize()} tasks: test accuracy %, mean ± sd over seeds (paired difference to "
                     "probe, 95% CI)\n")
        lines.append("| task | k | " + " | ".join(present) + " | seeds |")
        lines.append("|---|---|" + "---|" * (len(present) + 1))
        for key in keys:
            row = cells[key]
            out = []
            for m in present:
                if m not in row:
                    out.append("")
                    continue
                acc = [100 * r["accuracy"] for r in row[m].values()]
                text = f"{statistics.mean(acc):.1f} ± {statistics.stdev(acc) if len(acc) > 1 else 0:.1f}"
                paired = _paired(row, m) if m != "probe" else None
                if paired:
                    text += f" ({paired[0]:+.1f} ± {paired[1]:.1f})"
                out.append(text)
            seeds = max(len(v) for v in row.values())
            lines.append(f"| {key[1]} | {key[2]} | " + " | ".join(out) + f" | {seeds} |")
        lines.append(_targets(cells, keys, modality))
        lines.append(_times(cells, keys, present))
    lines.append(_printed_overall(cells))
    return "\n".join(lines)


def _targets(cells: dict, keys: list, modality: str) -> str:
    in_range = [k for k in keys if k[2] in TARGET_KS]
    out = [f"\nTargets over the {modality} cells at k = 5, 10, 20:"]
    diffs = [p[0] for k in in_range if (p := _paired(cells[k], "auto"))]
    if diffs:
        out.append(f"- default (auto) minus probe: mean {statistics.mean(diffs):+.2f} points over {len(diffs)} cells; "
                   f"worst cell {min(diffs):+.2f}")
    if modality == "text":
        vs = [p[0] for k in in_range if (p := _paired(cells[k], "auto", base="setfit"))]
        if vs:
            ratio = [statistics.mean(r["seconds"] for r in cells[k]["auto"].values()) /
                     statistics.mean(r["seconds"] for r in cells[k]["setfit"].values())
                     for k in in_range if "setfit" in cells[k] and "auto" in cells[k]]
            out.append(f"- default (auto) minus SetFit: mean {statistics.mean(vs):+.2f} points over {len(vs)} cells; "
                       f"time auto / SetFit: mean {statistics.mean(ratio):.2f}")
    split = _split_gains(cells, keys) if modality == "text" else []  # images: `features` is one backbone, not four
    if len(split) > 2:
        on_split, on_test = np.array(split).T
        out.append(f"- tuning's gain over the frozen features (`features`) where `auto` tuned: on its validation split "
                   f"{100 * on_split.mean():+.1f} points, on the test set {100 * on_test.mean():+.1f} (correlation "
                   f"{np.corrcoef(on_split, on_test)[0, 1]:+.2f} over {len(split)} fits)")
    gaps = _printed_gaps(cells, keys)
    if gaps:
        out.append(f"- |printed estimate - test accuracy|: mean {100 * statistics.mean(abs(g) for _, g in gaps):.1f} "
                   f"points over {len(gaps)} fits")
        by_k: dict[int, list[float]] = {}
        for k, gap in gaps:
            by_k.setdefault(k, []).append(gap)
        out.append("  by labels per class: " + "; ".join(
            f"k={k}: {100 * statistics.mean(map(abs, v)):.1f} (printed minus test {100 * statistics.mean(v):+.1f}, "
            f"{len(v)} fits)" for k, v in sorted(by_k.items())))
    return "\n".join(out)


def _split_gains(cells: dict, keys: list) -> list[tuple[float, float]]:
    """(gain on the validation split, gain on test) of every ``auto`` fit that tuned, against ``features``."""
    return [(r["val_accuracy"] - r["probe_val_accuracy"], r["accuracy"] - cells[k]["features"][seed]["accuracy"])
            for k in keys for seed, r in cells[k].get("auto", {}).items()
            if r.get("val_accuracy") is not None and r.get("probe_val_accuracy") is not None
            and seed in cells[k].get("features", {})]


def _printed_gaps(cells: dict, keys: list) -> list[tuple[int, float]]:
    """(k, printed estimate - test accuracy) of every transferkit fit in these cells."""
    return [(k[2], r["printed"] - r["accuracy"]) for k in keys for m in ("auto", "features", "finetune")
            for r in cells[k].get(m, {}).values() if r.get("printed") is not None]


def _printed_overall(cells: dict) -> str:
    gaps = _printed_gaps(cells, sorted(cells))
    if not gaps:
        return ""
    in_range = [abs(g) for k, g in gaps if k in TARGET_KS]
    targets = f"; at k = 5, 10, 20: {100 * statistics.mean(in_range):.1f} over {len(in_range)} fits" if in_range else ""
    return (f"\nThe printed estimate over the whole suite, both modalities: |printed - test accuracy| mean "
            f"{100 * statistics.mean(abs(g) for _, g in gaps):.1f} points over {len(gaps)} fits{targets}")


def _times(cells: dict, keys: list, present: list) -> str:
    out = ["\nMean fit seconds (cold feature cache; test set not included):\n",
           "| task | k | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
    for key in keys:
        row = cells[key]
        out.append(f"| {key[1]} | {key[2]} | " + " | ".join(
            f"{statistics.mean(r['seconds'] for r in row[m].values()):.1f}" if m in row else "" for m in present) + " |")
    auto = [r["choice"] for k in keys for r in cells[k].get("auto", {}).values() if r.get("choice")]
    if auto:
        counts = {c: auto.count(c) for c in sorted(set(auto))}
        reps = [r.get("representation", "") for k in keys for r in cells[k].get("auto", {}).values()]
        ensemble = sum(" + " in r for r in reps)
        out.append(f"\nauto chose: {', '.join(f'{c} {n}' for c, n in counts.items())}; the zoo's backbones side by "
                   f"side in {ensemble} of {len(reps)} fits")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--tasks", default=",".join(suite_data.IMAGE_TASKS + suite_data.TEXT_TASKS))
    parser.add_argument("--ks", default=",".join(map(str, KS)))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(dict.fromkeys(IMAGE_METHODS + TEXT_METHODS)))
    parser.add_argument("--setfit-max-k", default="bbc:10",
                        help="task:k pairs; SetFit's pairs grow with k squared (BBC at k=20: ~25 min a fit on 2 cores)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --results and skip them")
    parser.add_argument("--table", action="store_true", help="only print the tables from --results")
    parser.add_argument("--merge", type=Path, nargs="+", help="replace the runs in --results by these files' runs of "
                        "the same task, k, seed and method (cells rerun with newer code), then print the tables")
    args = parser.parse_args()
    if args.merge:
        merge(args.results, args.merge)
    elif not args.table:
        args.tasks = [t for t in args.tasks.split(",") if t]
        args.ks = [int(k) for k in args.ks.split(",") if k]
        args.methods = [m for m in args.methods.split(",") if m]
        args.setfit_max_k = {t: int(k) for t, _, k in (p.partition(":") for p in args.setfit_max_k.split(",") if p)}
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        run(args)
    print(tables(args.results))


if __name__ == "__main__":
    main()
