"""Could one backbone match the four side by side without any unlabeled items (#23's fast default without a pool)?
An exploration on frozen features: the labeled images drawn again (random crop, rotation, flip, colour) stand in for
the pool the student has not got.

For each cell of ``benchmarks/unlabeled.py`` given, k labels per class and seed, the test accuracy of:

- ``default``: the default head on the four backbones side by side, labels only (what ``auto`` ships without a pool);
- ``one backbone``: the default backbone's head on the labels (``Auto(ensemble=False)``'s kind of model);
- ``one + drawn again``: that head fitted on the labels and ``--copies`` augmented copies of each labeled image,
  each copy labeled as its original;
- ``one + drawn again, teacher's labels``: the same copies labeled by the default head (distillation on them).

    python benchmarks/augmented_student.py --cells clipart,fashion,oxygen,oxygen->tango --k 5,10 --seeds 5-7
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import large_pool
import numpy as np
import suite_data
import unlabeled
from codebase_metrics import machine_line, t_interval, write_results
from pool_methods import features

ARMS = ("default", "one backbone", "one + drawn again", "one + drawn again, teacher's labels")
WORK = suite_data.WORK / "augmented"


def drawn_again(item: Path, copy: int) -> Path:
    """``item`` drawn again (``large_pool.drawn_again``, milder: seeded by its name and ``copy``), on disk once."""
    out = WORK / Path(item).parent.name / f"{Path(item).stem}-{copy}.png"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.png")
        large_pool.drawn_again(item, random.Random(f"{item}-{copy}"), smallest=0.7, degrees=15, colour=0.3).save(tmp)
        tmp.rename(out)
    return out


def main() -> None:
    from transferkit import ImageClassifier
    from transferkit.features import extract
    from transferkit.featurizers import Concat
    from transferkit.heads import block_bounds, fit_head

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="clipart,fashion,oxygen,oxygen->tango")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--seeds", default="5-7")
    parser.add_argument("--copies", type=int, default=8)
    args = parser.parse_args()
    cache = str(suite_data.WORK / "cache")
    first = ImageClassifier(verbose=False, cache_dir=cache)._featurizer()
    featurizer = Concat([first, *first.companions()])
    lines = ["| cell | k | seeds | default % | " + " | ".join(f"{a} - default" for a in ARMS[1:]) + " |",
             "|---|---|---|---|" + "---|" * (len(ARMS) - 1)]
    for name in args.cells.split(","):
        cell = unlabeled.cell(name)
        rows, blocks = features(cell)
        start, stop = block_bounds(blocks, sum(blocks))[0]  # the default backbone's columns
        classes = sorted(cell["labels"])
        test = rows(cell["test"][0])
        y_test = np.array([classes.index(c) for c in cell["test"][1]])
        for k in [int(v) for v in args.k.split(",")]:
            runs = []
            for seed in suite_data.seed_range(args.seeds):
                items, labels = unlabeled.sample(cell["labels"], k, seed, name)
                x, y = rows(items), np.array([classes.index(c) for c in labels])
                copies = [drawn_again(Path(i), c) for i in items for c in range(args.copies)]
                extraction = extract(featurizer, copies, cache_dir=cache, progress=False)
                xa, ya = extraction.features, np.repeat(y, args.copies)

                def right(head, cols=slice(None), test=test, y_test=y_test) -> float:
                    return float((head.predict_proba(test[:, cols]).argmax(1) == y_test).mean())

                teacher = fit_head(x, y, power="auto", blocks=blocks, seed=0)
                one = slice(start, stop)

                def single(rows_, labels_):
                    return fit_head(rows_, labels_, power="auto", unit_rows=True, seed=0)

                said = teacher.predict_proba(xa).argmax(1)
                runs.append({"default": right(teacher), "one backbone": right(single(x[:, one], y), one),
                             "one + drawn again": right(single(np.vstack([x[:, one], xa[:, one]]),
                                                               np.concatenate([y, ya])), one),
                             "one + drawn again, teacher's labels": right(single(
                                 np.vstack([x[:, one], xa[:, one]]), np.concatenate([y, said])), one)})
                print(name, k, seed, {a: round(100 * v, 1) for a, v in runs[-1].items()}, flush=True)
            base = 100 * np.array([r["default"] for r in runs])
            parts = []
            for arm in ARMS[1:]:
                mean, half = t_interval(100 * np.array([r[arm] for r in runs]) - base)
                parts.append(f"{mean:+.1f} ({mean - half:+.1f} to {mean + half:+.1f})")
            lines.append(f"| {name} | {k} | {len(runs)} | {base.mean():.1f} | " + " | ".join(parts) + " |")
    foot = (f"Test accuracy; {args.copies} copies per labeled image; differences paired by seed with 95% intervals; "
            f"seeds {args.seeds}. {machine_line()}")
    write_results("augmented-student", "## One backbone without a pool, taught on its labeled images drawn again "
                  "(`benchmarks/augmented_student.py`)\n\n" + "\n".join(lines) + f"\n\n{foot}\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
