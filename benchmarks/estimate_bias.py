"""How far the accuracy a fit prints is from the test accuracy, by how it is estimated: the stratified folds transferkit
uses (at most 5, at most the smallest class) against leave-one-out, on the few-shot suite's own samples.

    python benchmarks/estimate_bias.py --tasks clipart,icons --ks 2,5,10 --seeds 5

Lite0 features (from the suite's feature cache when it is there), the default head (l2, C = 10). Prints, per task
and k, the mean of (estimate - test accuracy) and of its absolute value, in points.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402


def main() -> None:
    from transferkit.features import extract
    from transferkit.featurizers import ImageBackbone
    from transferkit.heads import cross_val_proba, fit_head
    from transferkit.zoo import resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="clipart,icons")
    parser.add_argument("--ks", default="2,5,10")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    featurizer = ImageBackbone.from_spec(resolve("tf_efficientnet_lite0"))
    cache = str(suite_data.WORK / "cache")
    print("| task | k | folds: estimate - test (mean, mean abs) | leave-one-out: estimate - test (mean, mean abs) |")
    print("|---|---|---|---|")
    for name in args.tasks.split(","):
        task = suite_data.load_task(name)
        test = extract(featurizer, task.test_items, cache_dir=cache).features
        for k in map(int, args.ks.split(",")):
            gaps: dict[str, list[float]] = {"folds": [], "loo": []}
            for seed in range(args.seeds):
                items, labels = task.sample(k, seed)
                classes = sorted(set(labels))
                y = np.array([classes.index(label) for label in labels])
                x = extract(featurizer, items, cache_dir=cache).features
                truth = np.array([classes.index(label) for label in task.test_labels])
                accuracy = float((fit_head(x, y, seed=seed).predict_proba(test).argmax(1) == truth).mean())
                oof, _ = cross_val_proba(lambda a, b, s=seed: fit_head(a, b, seed=s), x, y, seed=seed)
                gaps["folds"].append(float((oof.argmax(1) == y).mean()) - accuracy)
                hits = []
                for i in range(len(y)):
                    keep = np.arange(len(y)) != i
                    present = np.unique(y[keep])
                    head = fit_head(x[keep], np.searchsorted(present, y[keep]), seed=seed)
                    hits.append(present[head.predict_proba(x[i:i + 1]).argmax(1)[0]] == y[i])
                gaps["loo"].append(float(np.mean(hits)) - accuracy)
            cells = [f"{100 * statistics.mean(v):+.1f}, {100 * statistics.mean(map(abs, v)):.1f}"
                     for v in gaps.values()]
            print(f"| {name} | {k} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
