"""Does folding batch normalisations into the convolutions (``runtime.fold_batchnorm``) move accuracy where the
backbones run in bfloat16? In float32 the folded network's features agree with the network's to about 1e-6; in
bfloat16 the folded weights round differently. The few-shot suite's image tasks, the three side by side
(``zoo.SIDE_BY_SIDE``) in the precision this machine picks, every feature computed afresh both ways (no cache), the
default head (``heads.fit_head``) on k = 5 and 10 labels per class, seeds 0-4, test accuracy paired by seed.

    python benchmarks/fold_accuracy.py --tasks clipart,icons,fashion,mnist   # results/fold-accuracy-<cpu>.md
"""

from __future__ import annotations

import argparse

import numpy as np
import suite_data
from codebase_metrics import machine_line, t_interval, write_results
from unlabeled import commit


def accuracies(name: str, ks: list[int], seeds: range) -> dict[tuple[str, int, int], float]:
    from transferkit import zoo
    from transferkit.features import extract
    from transferkit.featurizers import Concat, ImageBackbone, _image
    from transferkit.heads import fit_head

    task = suite_data.load_task(name)
    samples = {(k, s): task.sample(k, s) for k in ks for s in seeds}
    items = sorted({str(i) for its, _ in samples.values() for i in its} | {str(i) for i in task.test_items})
    index = {item: i for i, item in enumerate(items)}
    classes = sorted(set(task.test_labels))
    y_test = np.array([classes.index(c) for c in task.test_labels])
    folding = _image.fold_batchnorm
    out = {}
    try:
        for mode in ("folded", "unfolded"):
            _image.fold_batchnorm = folding if mode == "folded" else (lambda network, size: network)
            featurizer = Concat([ImageBackbone.from_spec(zoo.resolve(m)) for m in zoo.SIDE_BY_SIDE])
            features = extract(featurizer, items, use_cache=False, progress=True).features
            test = features[[index[str(i)] for i in task.test_items]]
            for (k, seed), (its, labels) in samples.items():
                y = np.array([classes.index(c) for c in labels])
                head = fit_head(features[[index[str(i)] for i in its]], y, power=0.5, blocks=tuple(featurizer.blocks))
                out[(mode, k, seed)] = float((head.predict_proba(test).argmax(1) == y_test).mean())
    finally:
        _image.fold_batchnorm = folding
    return out


def main() -> None:
    from transferkit.featurizers import ImageBackbone
    from transferkit.zoo import resolve

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="clipart,icons,fashion,mnist")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--seeds", default="0-4")
    args = parser.parse_args()
    ks, seeds = [int(v) for v in args.k.split(",")], suite_data.seed_range(args.seeds)
    precision = ImageBackbone.from_spec(resolve("lite0")).resolved_precision
    lines = ["| task | k | seeds | unfolded % | folded % | folded - unfolded (95% CI) |", "|---|---|---|---|---|---|"]
    for name in args.tasks.split(","):
        acc = accuracies(name, ks, seeds)
        for k in ks:
            plain = 100 * np.array([acc[("unfolded", k, s)] for s in seeds])
            folded = 100 * np.array([acc[("folded", k, s)] for s in seeds])
            mean, half = t_interval(folded - plain)
            lines.append(f"| {name} | {k} | {len(plain)} | {plain.mean():.2f} | {folded.mean():.2f} | "
                         f"{mean:+.2f} ({mean - half:+.2f} to {mean + half:+.2f}) |")
            print(lines[-1], flush=True)
    write_results("fold-accuracy", "## Batch normalisations folded, accuracy (`benchmarks/fold_accuracy.py`)\n\n"
                  + "\n".join(lines) + f"\n\nThe three side by side in {precision}; the default head on frozen "
                  f"features; test accuracy, seeds {args.seeds}, differences paired by seed; at {commit()}. {machine_line()}\n")


if __name__ == "__main__":
    main()
