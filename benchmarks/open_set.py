""""None of these" (#24): how well a fitted default model tells items of classes it never saw, on the few-shot
suite's image tasks (clip art, Fashion-MNIST, MNIST, Oxygen icons).

For each task, k and seed: a third of the classes (at least one, drawn with the seed) is held out of training; the
default ``auto`` fit learns the rest from k labeled items per class (the suite's samples). The test set is the
task's test items of every class: those of a held-out class should be rejected. Reported per cell, mean over seeds:

- AUROC of known vs unseen test items for each score (``msp``, the baseline: maximum softmax probability; ``energy``;
  ``knn``) and for the one the fit chose on its labeled items alone;
- with an unlabeled pool, ``knn-pool`` too, and the chosen score's AUROC paired with the same cell's default fit;
- at ``reject="auto"`` (the threshold the fit read for 5 % of known items): the share of known test items rejected,
  the share of unseen ones rejected, and the accuracy on the accepted known ones.

    python benchmarks/open_set.py                 # k = 10, 20; seeds 0-4; writes results/open-set-<cpu>.jsonl
    python benchmarks/open_set.py --method "with other examples"   # the fit also gets k examples of a held-out class
    python benchmarks/open_set.py --method "with an unlabeled pool"  # ... an unlabeled pool of every class
    python benchmarks/open_set.py --method "with a pool of the trained classes only"  # ... of the trained ones
    python benchmarks/open_set.py --table         # the tables from the results file
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import suite_data
from codebase_metrics import cpu_slug, machine
from unlabeled import commit

HERE = Path(__file__).resolve().parent
TASKS = ("clipart", "fashion", "mnist", "icons")


def results_file() -> Path:
    slug = cpu_slug()
    return HERE / "results" / f"open-set-{slug}.jsonl"


def held_out(classes: list[str], seed: int, name: str) -> list[str]:
    return sorted(random.Random(f"{name}:open-set:{seed}").sample(classes, max(1, len(classes) // 3)))


def run_other_cell(task, k: int, seed: int) -> dict:
    """The same cell fitted with ``X_other``: k pool items of the first held-out class as examples of other things.
    AUROC against that class's test items (``given``) and against the other held-out classes' (``novel``)."""
    from sklearn.metrics import roc_auc_score

    from transferkit import ImageClassifier
    from transferkit.openset import DEFAULT_RATE, calibrate

    unseen = held_out(task.classes, seed, task.name)
    given = unseen[0]
    items, labels = task.sample(k, seed)
    train = [(i, c) for i, c in zip(items, labels) if c not in unseen]
    others = random.Random(f"{task.name}:other:{seed}").sample(task.pool[given], min(k, len(task.pool[given])))
    start = time.perf_counter()
    clf = ImageClassifier(seed=seed, cache_dir=str(suite_data.WORK / "cache"), verbose=False)
    clf.fit([i for i, _ in train], [c for _, c in train], X_other=others)
    seconds = time.perf_counter() - start
    features = clf.embed(list(task.test_items))
    labels_test = np.array(task.test_labels)
    known = ~np.isin(labels_test, unseen)
    open_set = clf.open_set_
    s = open_set.known_scores(clf.head_, features)
    accepted = s >= open_set.threshold(DEFAULT_RATE)
    # the same head's open set without the examples: what the default fit saves (the head does not depend on them)
    y = np.searchsorted(clf.classes_, [c for _, c in train])
    plain = calibrate(lambda r, labels: clf.head_.refit(r, labels, seed), clf.head_, clf.embed([i for i, _ in train]),
                      y, seed=seed)
    s_plain = plain.known_scores(clf.head_, features)
    row = {"task": task.name, "k": k, "seed": seed, "method": "with other examples", "unseen": unseen,
           "given": given, "n_other": len(others), "chosen": open_set.score, "fit_auroc": open_set.auroc,
           "known_rejected": float(1 - accepted[known].mean()), "fit_seconds": round(seconds, 1),
           "cpu": machine()["cpu"], "commit": commit()}
    for part, mask in (("given", labels_test == given), ("novel", np.isin(labels_test, unseen[1:]))):
        if mask.any():
            both = known | mask
            row[f"auroc_{part}"] = float(roc_auc_score(known[both], s[both]))
            row[f"auroc_{part}_without"] = float(roc_auc_score(known[both], s_plain[both]))
            row[f"rejected_{part}"] = float(1 - accepted[mask].mean())
    return row


POOL_PER_CLASS = 60  # an unlabeled pool: the first so many of each class's pool (as in unlabeled.py's in-domain cells)
POOLS = {"with an unlabeled pool": "every class", "with a pool of the trained classes only": "trained classes"}


def run_cell(task, k: int, seed: int, method: str = "default") -> dict:
    """The default fit on the trained classes' k items; with ``method`` in :data:`POOLS` it also gets an unlabeled
    pool said to hold other things (``unlabeled_has_others``): the first :data:`POOL_PER_CLASS` of each class's pool
    items not labeled, of every class, held-out ones included, as a pool from where the model is used would be; or
    of the trained classes only (what that costs when it is said wrongly)."""
    from sklearn.metrics import roc_auc_score

    from transferkit import ImageClassifier
    from transferkit.openset import DEFAULT_RATE, MAX_POOL, SCORES, mine, scores, unit_rows

    unseen = held_out(task.classes, seed, task.name)
    items, labels = task.sample(k, seed)
    train = [(i, c) for i, c in zip(items, labels) if c not in unseen]
    labeled = set(items)
    pool = None
    if method in POOLS:
        classes = [c for c in task.classes if POOLS[method] == "every class" or c not in unseen]
        pool = [p for c in classes for p in task.pool[c][:POOL_PER_CLASS] if p not in labeled]
        assert len(pool) <= MAX_POOL  # the benchmark's own mining below sees the pool the fit mined
    start = time.perf_counter()
    clf = ImageClassifier(seed=seed, cache_dir=str(suite_data.WORK / "cache"), verbose=False)
    clf.fit([i for i, _ in train], [c for _, c in train], X_unlabeled=pool, unlabeled_has_others=pool is not None)
    seconds = time.perf_counter() - start
    features = clf.embed(list(task.test_items))
    known = np.array([c not in unseen for c in task.test_labels])
    open_set = clf.open_set_
    bank = unit_rows(clf.head_, clf.embed([i for i, _ in train]))
    pool_bank = mine(bank, unit_rows(clf.head_, clf.embed(pool))) if pool else None
    every = scores(clf.head_, features, bank, tuple(s for s in SCORES if s != "knn-other" and (pool or s != "knn-pool")),
                   pool_bank=pool_bank)
    auroc = {s: float(roc_auc_score(known, v)) for s, v in every.items()}
    accepted = open_set.known_scores(clf.head_, features) >= open_set.threshold(DEFAULT_RATE)
    predicted = clf.classes_[clf.head_.predict_proba(features).argmax(1)]
    right = predicted == np.array(task.test_labels)
    row = {"task": task.name, "k": k, "seed": seed, "unseen": unseen, "n_known": int(known.sum()),
           "n_unseen": int((~known).sum()), "auroc": auroc, "chosen": open_set.score, "fit_auroc": open_set.auroc,
           "chosen_auroc": auroc[open_set.score], "known_rejected": float(1 - accepted[known].mean()),
           "unseen_rejected": float(1 - accepted[~known].mean()), "accuracy_known": float(right[known].mean()),
           "accuracy_accepted": float(right[known & accepted].mean()), "fit_seconds": round(seconds, 1),
           "cpu": machine()["cpu"], "commit": commit()}
    if pool is not None:
        row.update({"method": method, "n_pool": len(pool), "model": clf.featurizer_.name,
                    "pool_unseen_share": float(np.isin(pool, [p for c in unseen for p in task.pool[c]]).mean())})
    return row


def other_table(rows: list[dict], method: str = "with other examples") -> str:
    """The cells fitted with examples of other things, beside the same cells without them."""
    cells: dict = {}
    for r in rows:
        if r.get("method") == method:
            cells.setdefault((r["task"], r["k"]), []).append(r)
    lines = ["| task | k | seeds | AUROC on the given class: without / with examples | on the other held-out classes: "
             "without / with | chosen with examples | known rejected with |", "|---|---|---|---|---|---|---|"]
    for (task, k), rs in sorted(cells.items()):
        def mean(key: str, rs=rs) -> str:
            values = [r[key] for r in rs if key in r]
            return f"{np.mean(values):.3f}" if values else "-"

        chosen = ", ".join(f"{c} {n}" for c, n in sorted(
            {r["chosen"]: sum(x["chosen"] == r["chosen"] for x in rs) for r in rs}.items()))
        lines.append(f"| {task} | {k} | {len(rs)} | {mean('auroc_given_without')} / {mean('auroc_given')} | "
                     f"{mean('auroc_novel_without')} / {mean('auroc_novel')} | {chosen} | "
                     f"{np.mean([r['known_rejected'] for r in rs]):.1%} |")
    return "\n".join(lines)


def table(rows: list[dict], method: str = "default") -> str:
    cells: dict = {}
    for r in rows:
        if r.get("method", "default") != method:
            continue
        cells.setdefault((r["task"], r["k"]), []).append(r)
    pooled = method in POOLS
    lines = ["| task | k | seeds | AUROC msp | energy | knn | " + ("knn-pool | " if pooled else "") + "chosen (by the fit) | "
             "known rejected | unseen rejected | accuracy, known | accuracy, accepted known |",
             "|---|---|---|---|---|---|" + ("---|" if pooled else "") + "---|---|---|---|---|"]
    for (task, k), rs in sorted(cells.items()):
        def mean(f, rs=rs) -> float:
            return float(np.mean([f(r) for r in rs]))

        chosen = ", ".join(f"{s} {n}" for s, n in sorted({r["chosen"]: sum(x["chosen"] == r["chosen"] for x in rs)
                                                         for r in rs}.items()))
        lines.append(f"| {task} | {k} | {len(rs)} | {mean(lambda r: r['auroc']['msp']):.3f} | "
                     f"{mean(lambda r: r['auroc']['energy']):.3f} | {mean(lambda r: r['auroc']['knn']):.3f} | "
                     + (f"{mean(lambda r: r['auroc']['knn-pool']):.3f} | " if pooled else "") +
                     f"{mean(lambda r: r['chosen_auroc']):.3f} ({chosen}) | {mean(lambda r: r['known_rejected']):.1%} | "
                     f"{mean(lambda r: r['unseen_rejected']):.1%} | {mean(lambda r: r['accuracy_known']):.3f} | "
                     f"{mean(lambda r: r['accuracy_accepted']):.3f} |")
    return "\n".join(lines) + f"\n\nMachine: {', '.join(sorted({r['cpu'] for r in rows}))}."


def paired(rows: list[dict], method: str) -> str:
    """The chosen score's AUROC with a pool minus without it, cell by cell (same task, k and seed), with a 95%
    t-interval over the seeds."""
    from scipy import stats

    base = {(r["task"], r["k"], r["seed"]): r for r in rows if r.get("method", "default") == "default"}
    cells: dict = {}
    for r in rows:
        key = (r["task"], r["k"], r["seed"])
        if r.get("method") == method and key in base:
            cells.setdefault(key[:2], []).append(r["chosen_auroc"] - base[key]["chosen_auroc"])
    lines = ["| task | k | seeds | AUROC with - without (95% CI) |", "|---|---|---|---|"]
    for (task, k), d in sorted(cells.items()):
        half = float(stats.t.ppf(0.975, len(d) - 1) * np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan
        lines.append(f"| {task} | {k} | {len(d)} | {np.mean(d):+.3f} ({np.mean(d) - half:+.3f} to "
                     f"{np.mean(d) + half:+.3f}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--k", default="10,20")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--method", default="default", choices=("default", "with other examples", *POOLS),
                        help="default: no examples of other things; k examples of the first held-out class; or an "
                             "unlabeled pool of every class or of the trained ones only")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--results", type=Path, help="the results file (default: results/open-set-<this cpu>.jsonl)")
    args = parser.parse_args()
    out = args.results or results_file()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line] if out.exists() else []
    if not args.table:
        done = {(r["task"], r["k"], r["seed"], r.get("method", "default")) for r in rows}
        for name in args.tasks.split(","):
            task = suite_data.load_task(name)
            for k in map(int, args.k.split(",")):
                for seed in suite_data.seed_range(args.seeds):
                    if (name, k, seed, args.method) in done:
                        continue
                    other = args.method == "with other examples"
                    row = run_other_cell(task, k, seed) if other else run_cell(task, k, seed, args.method)
                    rows.append(row)
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(f"{name} k={k} seed={seed} {args.method}: chosen {row['chosen']}, " + (
                        f"AUROC given {row.get('auroc_given', float('nan')):.3f}, novel "
                        f"{row.get('auroc_novel', float('nan')):.3f}" if other else
                        f"AUROC {row['chosen_auroc']:.3f} (msp {row['auroc']['msp']:.3f}); known rejected "
                        f"{row['known_rejected']:.1%}, unseen {row['unseen_rejected']:.1%}")
                        + f" ({row['fit_seconds']} s)", flush=True)
    print(table(rows))
    for method in sorted({r.get("method", "default") for r in rows} - {"default"}):
        print(f"\n{method.capitalize()}" + (" (k of the first held-out class)" if method == "with other examples" else "")
              + ":\n")
        if method in POOLS:
            print(table(rows, method) + "\n\n" + paired(rows, method))
        else:
            print(table(rows, method) if method.startswith("default") else other_table(rows, method))


if __name__ == "__main__":
    main()
