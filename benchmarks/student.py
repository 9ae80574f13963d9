"""What the one-network student costs to use, against the side-by-side default it learned from (#23).

Two models fitted by ``auto`` on the same 10 Oxygen icons per class (seed 0; the ``oxygen->tango`` cell of
``benchmarks/unlabeled.py``, whose pool of Tango icons makes ``auto`` keep a student; an in-domain pool that changes
nothing the teacher learned keeps the teacher, so the ``oxygen`` cell, used before 56c1ea4, no longer makes one):
without unlabeled items (the backbones ``auto`` puts side by side, its default when there is no pool: three since
f81c4cc, four before) and with the cell's pool (the student: EfficientNet-Lite0 alone). Then, whole processes
paired by farm-bench on this machine:

1. ``transferkit predict MODEL FOLDER --out p.csv`` over the same images (the ``oxygen`` cell's test images and pool, copied
   into one folder), a fresh feature and export cache for every run, with the default runtime and with torch;
2. a cold ``transferkit predict`` of one image with the student (a fresh feature cache, as for an image it has not
   seen), against ``python -c "import torch, timm"``.

    python benchmarks/student.py          # about 15 minutes on 2 cores; writes results/student-<cpu>.json
    python benchmarks/student.py --cold   # only 2., updating that file's cold_predict_vs_import and its commit

The two models are fitted once into ``work/student/`` and reused: delete that folder after a change to how ``auto``
fits them, or the run measures the old models.

Accuracy is measured by ``benchmarks/unlabeled.py`` (its "student" column), over every cell and seed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import suite_data
from codebase_metrics import machine
from speed import CLI, PY, bench
from unlabeled import cell, commit, sample

HERE = Path(__file__).resolve().parent
WORK = suite_data.WORK / "student"
CELL = "oxygen->tango"


def models() -> dict[str, Path]:
    """The two saved models (fitted once, reused on later runs)."""
    from transferkit import ImageClassifier

    data = cell(CELL)
    items, labels = sample(data["labels"], 10, 0, CELL)
    out = {}
    for name, pool in (("side-by-side", None), ("student", data["pool"])):
        folder = WORK / name
        if not folder.exists():
            clf = ImageClassifier(seed=0, cache_dir=str(suite_data.WORK / "cache"), verbose=False)
            clf.fit(items, labels, X_unlabeled=pool)
            if name == "student" and not clf.metrics_.get("student", {}).get("kept"):
                raise SystemExit(f"auto kept no student on {CELL}: {clf.reason_}")
            clf.save(folder)
        out[name] = folder
    return out


def images() -> Path:
    folder = WORK / "images"
    if not folder.exists():
        data = cell("oxygen")
        tmp = WORK / "images.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for i, path in enumerate([*data["test"][0], *data["pool"]]):
            shutil.copy(path, tmp / f"{i:04d}-{Path(path).name}")
        tmp.rename(folder)
    return folder


def predict_command(model: Path, folder: Path, runtime: str) -> list[str]:
    """One predict run with its own fresh cache (features and exports), removed after."""
    return ["sh", "-c", f"d=$(mktemp -d) && TRANSFERKIT_CACHE=$d {CLI} predict {model} {folder} --out $d/p.csv "
                        f"--runtime {runtime} >/dev/null 2>&1; s=$?; rm -rf $d; exit $s"]


def cold_predict(model: Path, folder: Path) -> dict:
    """One image through a fresh process and a fresh feature cache, paired with importing torch and timm."""
    one = sorted(folder.iterdir())[0]
    return bench(["sh", "-c", f"d=$(mktemp -d) && TRANSFERKIT_CACHE=$d {CLI} predict {model} {one} >/dev/null; "
                              f"s=$?; rm -rf $d; exit $s"], [PY, "-c", "import torch, timm"])


def paired_predict(fitted: dict[str, Path], fast: str, slow: str, folder: Path) -> dict:
    """What the saved models ``fitted[fast]`` and ``fitted[slow]`` are, ``predict --out`` over ``folder`` with each,
    paired, with the default runtime and with torch, and a cold ``predict`` of one image with ``fast``."""
    from transferkit import ImageClassifier

    n = len(list(folder.iterdir()))
    loaded = {k: ImageClassifier.load(v, verbose=False) for k, v in fitted.items()}
    result: dict = {"images": n, "models": {k: {"featurizer": clf.featurizer_.name, "reason": clf.reason_}
                                            for k, clf in loaded.items()}}
    for runtime in ("auto", "torch"):
        result[f"predict_{runtime}"] = bench(predict_command(fitted[fast], folder, runtime),
                                             predict_command(fitted[slow], folder, runtime), runs=3)
        r = result[f"predict_{runtime}"]
        print(f"predict --runtime {runtime}, {n} images: {fast} {r['a_median_s']} s, {slow} {r['b_median_s']} s, "
              f"ratio {r['ratio_median']}", file=sys.stderr)
    result["cold_predict_vs_import"] = cold_predict(fitted[fast], folder)
    return result


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    fitted, folder = models(), images()
    m = machine()
    out = HERE / "results" / f"student-{re.sub(r'[^a-z0-9]+', '-', m['cpu'].lower()).strip('-')}.json"
    if "--cold" in sys.argv[1:]:
        result = {**json.loads(out.read_text()), "machine": m, "cold_commit": commit(),
                  "cold_predict_vs_import": cold_predict(fitted["student"], folder)}
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["cold_predict_vs_import"], indent=1))
        return
    result = {"machine": m, "commit": commit(), "cold_commit": commit(),
              **paired_predict(fitted, "student", "side-by-side", folder)}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
