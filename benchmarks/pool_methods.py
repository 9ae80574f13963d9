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
from codebase_metrics import machine, t_interval, write_results

ARMS = ("head", "pool mean", "kNN + head (no pool)", "spreading", "spreading + head", "spreading -> head")


def features(cell: dict, members: tuple[str, ...] | None = None):
    """The cell's rows on the features the fit uses (images: the default backbone and its side-by-side companions,
    or the zoo backbones ``members`` side by side)."""
    from transferkit import ImageClassifier, TextClassifier, zoo
    from transferkit.features import extract
    from transferkit.featurizers import Concat, ImageBackbone

    cache = str(suite_data.WORK / "cache")
    if cell["modality"] == "image":
        first = ImageClassifier(verbose=False, cache_dir=cache)._featurizer()
        featurizer = Concat([ImageBackbone.from_spec(zoo.resolve(m), precision=first.precision) for m in members]
                            if members else [first, *first.companions()])
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


def paired_table(cells: list[str], ks: list[int], seeds: str, measure, arms: tuple[str, ...], title: str,
                 stem: str, members: tuple[str, ...] | None = None) -> None:
    """For each cell, k and seed, ``measure(cell, x, y, pool, test, y_test, blocks) -> {arm: accuracy}`` on the
    features the fit uses; one row per (cell, k): the first arm's mean and each other arm's difference from it,
    paired by seed, with a 95% t-interval ("-" for an arm the cell lacks). Written to ``results/<stem>-<cpu>.md``.
    ``members``: the image backbones side by side (``features``; default: the fit's)."""
    base = arms[0]
    lines = [f"| cell | k | seeds | {base} % | " + " | ".join(f"{a} - {base}" for a in arms[1:]) + " |",
             "|---|---|---|---|" + "---|" * (len(arms) - 1)]
    for name in cells:
        cell = unlabeled.cell(name)
        rows, blocks = features(cell, members)
        classes = sorted(cell["labels"])
        pool, test = rows(cell["pool"]), rows(cell["test"][0])
        y_test = np.array([classes.index(c) for c in cell["test"][1]])
        for k in ks:
            runs = []
            for seed in suite_data.seed_range(seeds):
                items, labels = unlabeled.sample(cell["labels"], k, seed, name)
                y = np.array([classes.index(c) for c in labels])
                runs.append(measure(cell, rows(items), y, pool, test, y_test, blocks))
                print(name, k, seed, {a: round(100 * v, 1) for a, v in runs[-1].items()}, flush=True)
            first = 100 * np.array([r[base] for r in runs])
            parts = []
            for arm in arms[1:]:
                if arm not in runs[0]:
                    parts.append("-")
                    continue
                mean, half = t_interval(100 * np.array([r[arm] for r in runs]) - first)
                parts.append(f"{mean:+.1f} ({mean - half:+.1f} to {mean + half:+.1f})")
            lines.append(f"| {name} | {k} | {len(runs)} | {first.mean():.1f} | " + " | ".join(parts) + " |")
    m = machine()
    write_results(stem, f"## {title}\n\n" + "\n".join(lines) + "\n\nTest accuracy; differences paired by seed with 95% "
                  f"intervals; seeds {seeds} (the suite's tables use 0-4). Machine: {m['cpu']} "
                  f"({', '.join(m['flags'])}), {m['threads']} threads.\n", m)


def arguments(doc: str) -> tuple[list[str], list[int], str]:
    """The cells, the labels per class and the seeds an exploration's command line names."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("cells", nargs="+")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--seeds", default="5-9")
    args = parser.parse_args()
    return args.cells, [int(v) for v in args.k.split(",")], args.seeds


def main() -> None:
    paired_table(*arguments(__doc__),
                 lambda cell, x, y, pool, test, y_test, blocks: accuracies(x, y, pool, test, y_test, blocks), ARMS,
                 "Uses of an in-domain unlabeled pool on frozen features (`benchmarks/pool_methods.py`)", "pool-methods")


if __name__ == "__main__":
    main()
