"""What the side-by-side default costs to use: the three backbones ``auto`` puts side by side now
(``zoo.SIDE_BY_SIDE``: Lite0, Lite2, MobileNetV2) against the four it used before (with Lite1), both fitted by ``auto``
on the same 10 Oxygen icons per class without unlabeled items (seed 0; the ``oxygen`` cell of
``benchmarks/unlabeled.py``). Whole processes paired by farm-bench on this machine:

1. ``transferkit predict MODEL FOLDER --out p.csv`` over the cell's test images and pool (one folder), a fresh
   feature and export cache for every run, with the default runtime and with torch;
2. a cold ``transferkit predict`` of one image with the three (a fresh feature cache), against
   ``python -c "import torch, timm"``.

    python benchmarks/side_by_side.py     # about 15 minutes on 2 cores; writes results/side-by-side-<cpu>.json

Accuracy: ``benchmarks/subsets.py`` (frozen features, every set of the four) and ``benchmarks/unlabeled.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import student
import suite_data
from codebase_metrics import cpu_slug, machine
from unlabeled import cell, commit, sample

HERE = Path(__file__).resolve().parent
WORK = suite_data.WORK / "side-by-side"
FOUR = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenet_v2")


def fitted_with(members: tuple[str, ...], *data, **options):
    """``auto``'s image fit on ``data`` (``ImageClassifier.fit``'s arguments) with ``members`` side by side."""
    from transferkit import ImageClassifier, zoo

    now, zoo.SIDE_BY_SIDE = zoo.SIDE_BY_SIDE, members  # what ``companions`` reads at fit time
    try:
        return ImageClassifier(seed=0, verbose=False, **options).fit(*data)
    finally:
        zoo.SIDE_BY_SIDE = now


def models() -> dict[str, Path]:
    """The two saved models, fitted once into ``work/side-by-side/`` (delete it after a change to ``auto``)."""
    from transferkit import zoo

    data = cell("oxygen")
    items, labels = sample(data["labels"], 10, 0, "oxygen")
    out = {}
    for name, members in (("three", zoo.SIDE_BY_SIDE), ("four", FOUR)):
        folder = WORK / name
        if not folder.exists():
            fitted_with(members, items, labels, cache_dir=str(suite_data.WORK / "cache")).save(folder)
        out[name] = folder
    return out


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    fitted, folder = models(), student.images()
    m = machine()
    result = {"machine": m, "commit": commit(), **student.paired_predict(fitted, "three", "four", folder)}
    out = HERE / "results" / f"side-by-side-{cpu_slug(m)}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
