"""Which use of an in-domain unlabeled pool could lift the frozen head (#23's missing in-domain gain): an exploration
on frozen features, on seeds the suite does not use (5-9), before anything is built into ``auto``.

For each cell of ``benchmarks/unlabeled.py`` given, k labels per class and seed, on the features the fit uses (images:
the zoo's four backbones side by side, per-block heads; texts: frozen MiniLM), test accuracy of:

- ``head``: the default head on the labels (``heads.fit_head``: power transform, L2 per block, C = 30);
- ``pool mean``: the same head centred on the labels' and the pool's mean instead of the labels' alone;
- ``kNN + head (no pool)``: the control, label spreading on the labels alone (a kNN vote) averaged with the head;
- ``spreading``: scikit-learn's ``LabelSpreading`` (kNN graph, 10 neighbours, alpha 0.8) over labels and pool;
- ``spreading + head``: its probabilities averaged with the head's;
- ``spreading -> head``: the head refitted on the labels and the pool's spread labels (class-balanced, the most
  confident 5 per label of each class), a model of the head's kind alone.

    python benchmarks/pool_methods.py oxygen spam:easy --k 5,10 --seeds 5-9   # writes results/pool-methods-<cpu>.md
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import suite_data
import unlabeled
from codebase_metrics import machine, write_results

ARMS = ("head", "pool mean", "kNN + head (no pool)", "spreading", "spreading + head", "spreading -> head")


def features(cell: dict):
    from transferkit import ImageClassifier, TextClassifier
    from transferkit.features import extract
    from transferkit.featurizers import Concat

    cache = str(suite_data.WORK / "cache")
    if cell["modality"] == "image":
        first = ImageClassifier(verbose=False, cache_dir=cache)._featurizer()
        featurizer = Concat([first, *first.companions()])
    else:
        featurizer = TextClassifier(verbose=False)._featurizer()
    items = sorted({i for c in cell["labels"].values() for i in c} | set(cell["pool"]) | set(cell["test"][0]), key=str)
    extraction = extract(featurizer, items, cache_dir=cache, progress=True)
    assert extraction.ok.all(), "every item of the cell is readable"
    index = {str(item): i for i, item in enumerate(items)}
    return (lambda chosen: extraction.features[[index[str(i)] for i in chosen]]), tuple(featurizer.blocks)


def head_centred_on(x, y, source, blocks):
    """The default head on ``x``, its normalisation's mean taken from ``source`` (``heads.fit_head`` otherwise)."""
    from transferkit.heads import _logistic, block_bounds, class_weighting, normaliser

    head, _ = normaliser(source, "l2", 0.5, blocks)
    z = head.normalise(x)
    bounds = block_bounds(head.blocks, head.n_features)
    coefs, intercepts = [], []
    for start, stop in bounds:
        coef, intercept = _logistic(z[:, start:stop] if head.blocks else z, y, 30.0, class_weighting(y), 0, None)
        coefs.append(coef / len(bounds))
        intercepts.append(intercept / len(bounds))
    return replace(head, coef=np.concatenate(coefs, axis=1), intercept=np.sum(intercepts, axis=0), C=30.0)


def accuracies(x, y, pool, test, y_test, blocks) -> dict[str, float]:
    from sklearn.semi_supervised import LabelSpreading

    from transferkit.heads import fit_head, normaliser

    def right(proba) -> float:
        return float((proba.argmax(1) == y_test).mean())

    head = fit_head(x, y, power=0.5, blocks=blocks)
    centred = head_centred_on(x, y, np.vstack([x, pool]), blocks)
    norm, _ = normaliser(np.vstack([x, pool]), "l2", 0.5, blocks)
    zx, zp, zt = norm.normalise(x), norm.normalise(pool), norm.normalise(test)
    control = LabelSpreading(kernel="knn", n_neighbors=min(10, len(y) - 1), alpha=0.8, max_iter=100).fit(zx, y)
    spread = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.8, max_iter=100)
    spread.fit(np.vstack([zx, zp]), np.r_[y, -np.ones(len(zp), int)])
    guess = spread.label_distributions_[len(y):]
    label = guess.argmax(1)
    per_class = int(np.bincount(y).min()) * 5
    chosen = [i for c in range(guess.shape[1])
              for i in np.flatnonzero(label == c)[np.argsort(-guess[label == c, c], kind="stable")][:per_class]]
    refit = head_centred_on(np.vstack([x, pool[chosen]]), np.r_[y, label[chosen]], np.vstack([x, pool]), blocks)
    p_head = centred.predict_proba(test)
    return {"head": right(head.predict_proba(test)), "pool mean": right(p_head),
            "kNN + head (no pool)": right(control.predict_proba(zt) + p_head),
            "spreading": right(spread.predict_proba(zt)), "spreading + head": right(spread.predict_proba(zt) + p_head),
            "spreading -> head": right(refit.predict_proba(test))}


def main() -> None:
    from scipy.stats import t as student

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells", nargs="+")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--seeds", default="5-9")
    args = parser.parse_args()
    lines = ["| cell | k | seeds | head % | " + " | ".join(f"{a} - head" for a in ARMS[1:]) + " |",
             "|---|---|---|---|" + "---|" * (len(ARMS) - 1)]
    for name in args.cells:
        cell = unlabeled.cell(name)
        rows, blocks = features(cell)
        classes = sorted(cell["labels"])
        pool, test = rows(cell["pool"]), rows(cell["test"][0])
        y_test = np.array([classes.index(c) for c in cell["test"][1]])
        for k in (int(v) for v in args.k.split(",")):
            runs = []
            for seed in suite_data.seed_range(args.seeds):
                items, labels = unlabeled.sample(cell["labels"], k, seed, name)
                y = np.array([classes.index(c) for c in labels])
                runs.append(accuracies(rows(items), y, pool, test, y_test, blocks))
                print(name, k, seed, {a: round(100 * v, 1) for a, v in runs[-1].items()}, flush=True)
            base = 100 * np.array([r["head"] for r in runs])
            cells = []
            for arm in ARMS[1:]:
                d = 100 * np.array([r[arm] for r in runs]) - base
                half = float(student.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
                cells.append(f"{d.mean():+.1f} ({d.mean() - half:+.1f} to {d.mean() + half:+.1f})")
            lines.append(f"| {name} | {k} | {len(runs)} | {base.mean():.1f} | " + " | ".join(cells) + " |")
    m = machine()
    text = ("## Uses of an in-domain unlabeled pool on frozen features (`benchmarks/pool_methods.py`)\n\n"
            + "\n".join(lines) + f"\n\nTest accuracy; differences paired by seed with 95% intervals; seeds "
            f"{args.seeds} (the suite's tables use 0-4). Machine: {m['cpu']} ({', '.join(m['flags'])}), "
            f"{m['threads']} threads.\n")
    write_results("pool-methods", text, m)


if __name__ == "__main__":
    main()
