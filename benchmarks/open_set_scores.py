"""Which score could lift "none of these" to #24's AUROC of 0.85 (an exploration before ``openset`` changes)?

``benchmarks/open_set.py``'s cells (a third of each task's classes held out of training, the default ``auto`` fit on
k labeled items per class of the rest), scored on the fitted model's features of the task's test items. Besides the
scores the fit chooses among (``msp``, ``energy``, ``knn``: the nearest labeled item's cosine in the head's
normalised space), scores the literature reports strong on pretrained features:

- ``knn5``: the mean cosine of the 5 nearest labeled items;
- ``centroid``: the largest cosine to a class's mean (nearest prototype);
- ``maha``: minus the smallest Mahalanobis distance to a class mean under one shared, shrunk covariance
  (Lee et al. 2018; scikit-learn's Ledoit-Wolf shrinkage, on the head's unit rows).

(The nearest item by the mean of per-backbone cosines is ``knn`` itself: the head scales each backbone's block to
unit length.)

    python benchmarks/open_set_scores.py --tasks clipart,fashion,icons --k 10,20 --seeds 0-4
"""

from __future__ import annotations

import argparse

import numpy as np
import suite_data
from codebase_metrics import machine_line, t_interval, write_results
from open_set import held_out

SCORES = ("msp", "energy", "knn", "knn5", "centroid", "maha")


def extra_scores(head, bank, train_y, rows) -> dict[str, np.ndarray]:
    """The further scores of ``rows`` against ``bank``, the labeled items' unit rows (``openset.unit_rows``)."""
    from sklearn.covariance import LedoitWolf

    from transferkit.openset import unit_rows

    z = unit_rows(head, rows)
    sims = z @ bank.T
    classes = np.unique(train_y)
    means = np.stack([bank[train_y == c].mean(0) for c in classes])
    unit_means = means / np.linalg.norm(means, axis=1, keepdims=True)
    centred = bank - means[np.searchsorted(classes, train_y)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    maha = np.stack([np.einsum("ij,jk,ik->i", z - m, precision, z - m) for m in means], axis=1)
    return {"knn5": np.sort(sims, axis=1)[:, -5:].mean(1), "centroid": (z @ unit_means.T).max(1),
            "maha": -maha.min(1)}


def main() -> None:
    from sklearn.metrics import roc_auc_score

    from transferkit import ImageClassifier
    from transferkit.openset import scores, unit_rows

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="clipart,fashion,icons")
    parser.add_argument("--k", default="10,20")
    parser.add_argument("--seeds", default="0-4")
    args = parser.parse_args()
    lines = ["| task | k | seeds | " + " | ".join(f"AUROC {s}" for s in SCORES) + " |",
             "|---|---|---|" + "---|" * len(SCORES)]
    for name in args.tasks.split(","):
        task = suite_data.load_task(name)
        for k in [int(v) for v in args.k.split(",")]:
            runs = []
            for seed in suite_data.seed_range(args.seeds):
                unseen = held_out(task.classes, seed, task.name)
                items, labels = task.sample(k, seed)
                train = [(i, c) for i, c in zip(items, labels) if c not in unseen]
                clf = ImageClassifier(seed=seed, cache_dir=str(suite_data.WORK / "cache"), verbose=False)
                clf.fit([i for i, _ in train], [c for _, c in train])
                rows = clf.embed(list(task.test_items))
                bank = unit_rows(clf.head_, clf.embed([i for i, _ in train]))
                train_y = np.array([c for _, c in train])
                known = np.array([c not in unseen for c in task.test_labels])
                every = scores(clf.head_, rows, bank) | extra_scores(clf.head_, bank, train_y, rows)
                runs.append({s: float(roc_auc_score(known, every[s])) for s in SCORES})
                print(name, k, seed, {s: round(v, 3) for s, v in runs[-1].items()}, flush=True)
            parts = []
            for s in SCORES:
                mean, half = t_interval([r[s] for r in runs])
                parts.append(f"{mean:.3f} ± {half:.3f}")
            lines.append(f"| {name} | {k} | {len(runs)} | " + " | ".join(parts) + " |")
            _write(lines, args.seeds)  # after each row: a stopped run keeps what it measured


def _write(lines: list[str], seeds: str) -> None:
    foot = f"AUROC of known vs held-out classes' test items, mean over seeds {seeds} with 95% t-intervals."
    write_results("open-set-scores", "## Open-set scores on the default fit's features (`benchmarks/open_set_scores.py`)"
                  "\n\n" + "\n".join(lines) + f"\n\n{foot} {machine_line()}\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
