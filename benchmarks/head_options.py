"""Which head on frozen image features: the options behind ``heads`` (power transform, C, one head per backbone),
measured on seeds the few-shot suite does not use, so the suite's own numbers stay a test of the choice.

    python benchmarks/head_options.py                      # seeds 5-14, k = 5, 10, 20, the four image tasks
    python benchmarks/head_options.py --seeds 5-9 --tasks clipart,icons

For each task, k and seed: the suite's sample (``suite_data``), features of the zoo's four offline backbones
(transferkit's extraction, cached under benchmarks/work/cache), and every option's test accuracy. The reference is
the plain probe on the same Lite0 features: scikit-learn's ``LogisticRegression(max_iter=1000)`` on the raw rows.
Prints the mean paired difference to it (points) per task and k, the mean over all cells and the worst cell, and
writes them with the machine to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402
from fewshot import machine  # noqa: E402

BACKBONES = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenet_v2")


def options():
    """name -> (backbones used, fit(x, y, blocks) -> head). ``x`` is Lite0's rows, or the backbones' rows side by
    side as ``Concat`` makes them (each unit length, scaled by 1/sqrt(4))."""
    from transferkit.heads import fit_head

    return {
        "lite0, l2, C=10 (before: features)": (1, lambda x, y, b: fit_head(x, y, C=10.0, power=1.0)),
        "lite0, sqrt, C=10": (1, lambda x, y, b: fit_head(x, y, C=10.0, power=0.5)),
        "lite0, sqrt, C=30 (features)": (1, lambda x, y, b: fit_head(x, y, C=30.0, power=0.5)),
        "4 side by side, l2, C=10 (before: auto)": (4, lambda x, y, b: fit_head(x, y, C=10.0, power=1.0)),
        "4 side by side, sqrt, C=30, one head": (4, lambda x, y, b: fit_head(x, y, C=30.0, power=0.5)),
        "4, sqrt, C=10, a head each": (4, lambda x, y, b: fit_head(x, y, C=10.0, power=0.5, blocks=b)),
        "4, sqrt, C=30, a head each (auto)": (4, lambda x, y, b: fit_head(x, y, C=30.0, power=0.5, blocks=b)),
    }


def features_by_item(task, seeds, ks):
    """Each backbone's rows by item (test set and every sample), and the backbones side by side (``Concat``)."""
    from transferkit.features import extract
    from transferkit.featurizers import Concat, ImageBackbone
    from transferkit.zoo import resolve

    items = list(task.test_items)
    for k in ks:
        for seed in seeds:
            items += task.sample(k, seed)[0]
    items = list(dict.fromkeys(items))
    tables, backbones = [], [ImageBackbone.from_spec(resolve(name)) for name in BACKBONES]
    for backbone in backbones:
        extraction = extract(backbone, items, cache_dir=str(suite_data.WORK / "cache"),
                             description=f"{task.name}: {backbone.name}")
        tables.append(dict(zip(items, extraction.features.astype(np.float64))))
    return tables, Concat(backbones)


def run(task_name: str, seeds, ks) -> dict:
    from sklearn.linear_model import LogisticRegression

    task = suite_data.load_task(task_name)
    tables, side_by_side = features_by_item(task, seeds, ks)
    classes = task.classes
    truth = np.array([classes.index(c) for c in task.test_labels])

    def rows(items, n):
        blocks = [np.stack([t[i] for i in items]) for t in tables[:n]]
        return blocks[0] if n == 1 else side_by_side.combine(blocks).astype(np.float64)

    blocks = side_by_side.blocks
    test = {n: rows(task.test_items, n) for n in (1, 4)}
    out: dict = {}
    for k in ks:
        for seed in seeds:
            items, labels = task.sample(k, seed)
            y = np.array([classes.index(c) for c in labels])
            train = {n: rows(items, n) for n in (1, 4)}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe = LogisticRegression(max_iter=1000).fit(train[1], y)
            base = float((probe.predict(test[1]) == truth).mean())
            for name, (n, fit) in options().items():
                head = fit(train[n], y, blocks)
                accuracy = float((head.predict_proba(test[n]).argmax(1) == truth).mean())
                out.setdefault(name, {}).setdefault(k, []).append(100 * (accuracy - base))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(suite_data.IMAGE_TASKS))
    parser.add_argument("--seeds", default="5-14", help="first-last (the suite uses 0-4)")
    parser.add_argument("--ks", default="5,10,20")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "head-options.json")
    args = parser.parse_args()
    seeds = suite_data.seed_range(args.seeds)
    ks = [int(k) for k in args.ks.split(",")]
    results = {t: run(t, seeds, ks) for t in args.tasks.split(",")}
    names = list(options())
    print(f"\nTest accuracy minus the plain probe's (points, mean over seeds {args.seeds}); machine: {machine()}\n")
    cols = [(t, k) for t in results for k in ks]
    print("| option | " + " | ".join(f"{t} k={k}" for t, k in cols) + " | mean | worst |")
    print("|---|" + "---|" * (len(cols) + 2))
    summary = {}
    for name in names:
        cells = [float(np.mean(results[t][name][k])) for t, k in cols]
        summary[name] = {"mean": float(np.mean(cells)), "worst": min(cells)}
        print(f"| {name} | " + " | ".join(f"{c:+.1f}" for c in cells) + f" | {np.mean(cells):+.2f} | {min(cells):+.1f} |")
    args.out.write_text(json.dumps({"machine": machine(), "seeds": args.seeds, "ks": ks, "results": results,
                                    "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
