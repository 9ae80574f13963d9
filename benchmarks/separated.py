"""When the frozen features cross-validate near-perfectly on a few texts, does tuning still pay? The evidence behind
``strategies.AUTO_SEPARATED`` (the low end of the interval, not the point estimate, decides), on seeds the few-shot
suite does not use.

    python benchmarks/separated.py --tasks spam,bbc --k 20 --seeds 5-24

For each task and seed: ``features`` (frozen all-MiniLM-L6-v2, the default head) with its cross-validated accuracy,
its 95% interval and its test accuracy; where the folds read 0.97 or more (where ``auto`` used to stop), also
``finetune`` (contrastive tuning, the default tuner) and its test accuracy. Rows go to ``--out`` (JSON lines,
appended; ``--resume`` skips the seeds there); a markdown table of the tuned cases is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402
from fewshot import machine, read_results  # noqa: E402

OLD_RULE = 0.97  # auto stopped at a cross-validated accuracy this high, whatever the number of labels


def run(task, k: int, seed: int) -> dict:
    from transferkit import TextClassifier
    from transferkit.strategies import Features, FineTune

    items, labels = task.sample(k, seed)
    row: dict = {"task": task.name, "k": k, "seed": seed}
    with tempfile.TemporaryDirectory() as cold, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = TextClassifier(strategy=Features(), seed=seed, cache_dir=cold, verbose=False).fit(list(items),
                                                                                                    list(labels))
        m = frozen.metrics_
        row.update(cv=m["cv_accuracy"], n=m["cv_n"], low=m["cv_interval"][0],
                   frozen=frozen.score(list(task.test_items), list(task.test_labels)))
        if row["cv"] >= OLD_RULE:
            tuned = TextClassifier(strategy=FineTune(), seed=seed, cache_dir=cold, verbose=False).fit(list(items),
                                                                                                       list(labels))
            row["tuned"] = tuned.score(list(task.test_items), list(task.test_labels))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="spam,bbc")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seeds", default="5-24", help="first-last (the suite uses 0-4)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "separated.jsonl")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    done = {(r["task"], r["seed"]) for r in read_results(args.out)} if args.resume else set()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a" if args.resume else "w") as out:
        for name in args.tasks.split(","):
            task = suite_data.load_task(name)
            for seed in suite_data.seed_range(args.seeds):
                if (name, seed) in done:
                    continue
                row = {**run(task, args.k, seed), "machine": machine()}
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(f"{name} seed={seed} cv={row['cv']:.3f} (n={row['n']}, low {row['low']:.2f}) frozen "
                      f"{row['frozen']:.4f}" + (f" tuned {row['tuned']:.4f}" if "tuned" in row else ""), flush=True)
    rows = read_results(args.out)
    tuned = [r for r in rows if "tuned" in r]
    print(f"\n{len(rows)} samples, {len(tuned)} where the folds read {OLD_RULE} or more:\n")
    print("| task | k | seed | cross-validated (n, 95% low end) | frozen test | tuned test | tuning's gain |")
    print("|---|---|---|---|---|---|---|")
    for r in tuned:
        print(f"| {r['task']} | {r['k']} | {r['seed']} | {r['cv']:.3f} ({r['n']}, {r['low']:.2f}) | "
              f"{100 * r['frozen']:.2f} | {100 * r['tuned']:.2f} | {100 * (r['tuned'] - r['frozen']):+.2f} |")


if __name__ == "__main__":
    main()
