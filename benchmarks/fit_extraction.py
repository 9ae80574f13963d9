"""How fast a fit's large extraction runs: the default's three backbones side by side (``auto`` on 5 Fashion-MNIST
photos per class, seed 0) reading 1,200 other photos of the task's pool, no feature cache, in one process: in float32
(``precision="fp32"``: ONNX Runtime, as on a CPU without native bfloat16) and as ``auto`` resolves the precision on
this machine (bfloat16 on PyTorch where it is native). Each is timed ``--runs`` times after a warm-up.

    python benchmarks/fit_extraction.py --label after      # appends to results/fit-extraction-<cpu>.jsonl
    PYTHONPATH=/path/to/older/src python benchmarks/fit_extraction.py --label before   # the code before, same machine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import suite_data
from codebase_metrics import cpu_slug, machine
from unlabeled import commit

HERE = Path(__file__).resolve().parent
N_ITEMS = 1200  # above onnx_features.MIN_ITEMS: a fit's extraction of this many runs on ONNX Runtime in float32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="what the code is (before, after)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    from transferkit import ImageClassifier
    from transferkit.features import extract

    task = suite_data.load_task("fashion")
    items, labels = task.sample(5, 0)
    pool = [p for c in task.classes for p in task.pool[c]][:N_ITEMS]
    cache = str(suite_data.WORK / "cache")
    out = HERE / "results" / f"fit-extraction-{cpu_slug()}.jsonl"
    for precision in ("fp32", "auto"):
        model = ImageClassifier(precision=precision, seed=0, verbose=False, cache_dir=cache).fit(items, labels)
        featurizer = model.featurizer_
        extract(featurizer, pool, use_cache=False, cache_dir=cache, onnx=True)  # warm-up: weights placed, graphs made
        seconds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            extract(featurizer, pool, use_cache=False, cache_dir=cache, onnx=True)  # as a fit extracts
            seconds.append(round(time.perf_counter() - start, 2))
        row = {"label": args.label, "precision": precision, "resolved": featurizer.members[0].resolved_precision,
               "featurizer": featurizer.name, "n_items": len(pool), "seconds": seconds,
               "machine": {**machine(), "commit": commit()}}
        with out.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "machine"}), flush=True)


if __name__ == "__main__":
    main()
