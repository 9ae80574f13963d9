""""None of these" (#24): how well a fitted default model tells items of classes it never saw, on the few-shot
suite's image tasks (clip art, Fashion-MNIST, MNIST, Oxygen icons).

For each task, k and seed: a third of the classes (at least one, drawn with the seed) is held out of training; the
default ``auto`` fit learns the rest from k labeled items per class (the suite's samples). The test set is the
task's test items of every class: those of a held-out class should be rejected. Reported per cell, mean over seeds:

- AUROC of known vs unseen test items for each score (``msp``, the baseline: maximum softmax probability; ``energy``;
  ``knn``) and for the one the fit chose on its labeled items alone;
- at ``reject="auto"`` (the threshold the fit read for 5 % of known items): the share of known test items rejected,
  the share of unseen ones rejected, and the accuracy on the accepted known ones.

    python benchmarks/open_set.py                 # k = 10, 20; seeds 0-4; writes results/open-set-<cpu>.jsonl
    python benchmarks/open_set.py --table         # the table from the results file
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import numpy as np
import suite_data
from codebase_metrics import machine
from unlabeled import commit

HERE = Path(__file__).resolve().parent
TASKS = ("clipart", "fashion", "mnist", "icons")


def results_file() -> Path:
    slug = "-".join(re.findall(r"[a-z0-9]+", machine()["cpu"].lower())[:2]) or "unknown"
    return HERE / "results" / f"open-set-{slug}.jsonl"


def held_out(classes: list[str], seed: int, name: str) -> list[str]:
    return sorted(random.Random(f"{name}:open-set:{seed}").sample(classes, max(1, len(classes) // 3)))


def run_cell(task, k: int, seed: int) -> dict:
    from sklearn.metrics import roc_auc_score

    from transferkit import ImageClassifier
    from transferkit.openset import DEFAULT_RATE, scores, unit_rows

    unseen = held_out(task.classes, seed, task.name)
    items, labels = task.sample(k, seed)
    train = [(i, c) for i, c in zip(items, labels) if c not in unseen]
    start = time.perf_counter()
    clf = ImageClassifier(seed=seed, cache_dir=str(suite_data.WORK / "cache"), verbose=False)
    clf.fit([i for i, _ in train], [c for _, c in train])
    seconds = time.perf_counter() - start
    features = clf.embed(list(task.test_items))
    known = np.array([c not in unseen for c in task.test_labels])
    open_set = clf.open_set_
    bank = unit_rows(clf.head_, clf.embed([i for i, _ in train]))
    every = scores(clf.head_, features, bank)
    auroc = {s: float(roc_auc_score(known, v)) for s, v in every.items()}
    accepted = open_set.known_scores(clf.head_, features) >= open_set.threshold(DEFAULT_RATE)
    predicted = clf.classes_[clf.head_.predict_proba(features).argmax(1)]
    right = predicted == np.array(task.test_labels)
    return {"task": task.name, "k": k, "seed": seed, "unseen": unseen, "n_known": int(known.sum()),
            "n_unseen": int((~known).sum()), "auroc": auroc, "chosen": open_set.score, "fit_auroc": open_set.auroc,
            "chosen_auroc": auroc[open_set.score], "known_rejected": float(1 - accepted[known].mean()),
            "unseen_rejected": float(1 - accepted[~known].mean()), "accuracy_known": float(right[known].mean()),
            "accuracy_accepted": float(right[known & accepted].mean()), "fit_seconds": round(seconds, 1),
            "cpu": machine()["cpu"], "commit": commit()}


def table(rows: list[dict]) -> str:
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["task"], r["k"]), []).append(r)
    lines = ["| task | k | seeds | AUROC msp | energy | knn | chosen (by the fit) | known rejected | unseen rejected | "
             "accuracy, known | accuracy, accepted known |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (task, k), rs in sorted(cells.items()):
        def mean(f, rs=rs) -> float:
            return float(np.mean([f(r) for r in rs]))

        chosen = ", ".join(f"{s} {n}" for s, n in sorted({r["chosen"]: sum(x["chosen"] == r["chosen"] for x in rs)
                                                         for r in rs}.items()))
        lines.append(f"| {task} | {k} | {len(rs)} | {mean(lambda r: r['auroc']['msp']):.3f} | "
                     f"{mean(lambda r: r['auroc']['energy']):.3f} | {mean(lambda r: r['auroc']['knn']):.3f} | "
                     f"{mean(lambda r: r['chosen_auroc']):.3f} ({chosen}) | {mean(lambda r: r['known_rejected']):.1%} | "
                     f"{mean(lambda r: r['unseen_rejected']):.1%} | {mean(lambda r: r['accuracy_known']):.3f} | "
                     f"{mean(lambda r: r['accuracy_accepted']):.3f} |")
    return "\n".join(lines) + f"\n\nMachine: {', '.join(sorted({r['cpu'] for r in rows}))}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--k", default="10,20")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    out = results_file()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line] if out.exists() else []
    if not args.table:
        done = {(r["task"], r["k"], r["seed"]) for r in rows}
        for name in args.tasks.split(","):
            task = suite_data.load_task(name)
            for k in map(int, args.k.split(",")):
                for seed in suite_data.seed_range(args.seeds):
                    if (name, k, seed) in done:
                        continue
                    row = run_cell(task, k, seed)
                    rows.append(row)
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(f"{name} k={k} seed={seed}: chosen {row['chosen']} AUROC {row['chosen_auroc']:.3f} "
                          f"(msp {row['auroc']['msp']:.3f}); known rejected {row['known_rejected']:.1%}, unseen "
                          f"{row['unseen_rejected']:.1%} ({row['fit_seconds']} s)", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
