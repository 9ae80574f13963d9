"""A fast image default without a pool (#23): which of the zoo's four backbones side by side could stand in for all
four. An exploration on frozen features, on seeds the suite's tables do not use (5-9), before ``auto`` changes.

For each cell of ``benchmarks/unlabeled.py`` given, k labels per class and seed: the test accuracy of the default head
on the four side by side (``heads.fit_head``, per-block heads, no pool), and of the same head on each smaller set of
them (their blocks of the same cached features).

    python benchmarks/subsets.py clipart fashion oxygen oxygen->tango tango->oxygen --k 5,10 --seeds 5-9

The runs at f8c4b8a (seeds 5-9, then the suite's seeds 0-4 with ``mnist``; ``results/subsets-amd-epyc-avx512.md``,
both tables and a summary) made ``auto`` put Lite0, Lite2 and MobileNetV2 side by side (``zoo.SIDE_BY_SIDE``): the
cheapest set that read as the four on both seed ranges. A new run overwrites that file with its own table.

Each set's cost (in the results file's summary) is read from ``results/throughput-*.json`` (ONNX Runtime float32,
batch 64): a set's milliseconds per image are its members' summed; decoding is left out.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pool_methods

MEMBERS = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenet_v2")
SHORT = {"tf_efficientnet_lite0": "L0", "tf_efficientnet_lite1": "L1", "tf_efficientnet_lite2": "L2",
         "mobilenet_v2": "MN2"}
SETS = [s for n in (1, 2, 3) for s in combinations(range(4), n)]


def name(subset) -> str:
    return "+".join(SHORT[MEMBERS[i]] for i in subset)


def accuracies(cell, x, y, pool, test, y_test, blocks) -> dict[str, float]:
    """``pool_methods.paired_table``'s measure (the pool unused)."""
    from transferkit.heads import block_bounds, fit_head

    def right(head, columns) -> float:
        return float((head.predict_proba(test[:, columns]).argmax(1) == y_test).mean())

    bounds = block_bounds(blocks, x.shape[1])
    out = {"four": right(fit_head(x, y, power="auto", blocks=blocks), slice(None))}
    for subset in SETS:
        columns = np.concatenate([np.arange(*bounds[i]) for i in subset])
        head = fit_head(x[:, columns], y, power="auto", blocks=tuple(blocks[i] for i in subset))
        out[name(subset)] = right(head, columns)
    return out


def main() -> None:
    pool_methods.paired_table(*pool_methods.arguments(__doc__), accuracies, ("four", *map(name, SETS)),
                              "Smaller sets of the four backbones, no pool (`benchmarks/subsets.py`)", "subsets", MEMBERS)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
