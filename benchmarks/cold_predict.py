"""A cold ``transferkit predict`` of one input where the model's ONNX export is already cached, against the same
predict on PyTorch and against ``python -c "import torch, timm"``: whole processes paired by farm-bench.

Two models: the image default without a pool (``benchmarks/student.py``'s side-by-side model, fitted there once) and
a text default (``auto`` on 10 e-mails per class of the ``spam:easy`` cell, seed 0, fitted once into
``work/cold-predict/text``). Each run gets a fresh feature cache holding only the model's export (copied in), as a
machine that exported the model once and meets a new input.

    python benchmarks/cold_predict.py     # a few minutes on 2 cores; writes results/cold-predict-<cpu>.json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import student
import suite_data
from codebase_metrics import cpu_slug, machine
from speed import CLI, PY, bench
from unlabeled import cell, commit, sample

HERE = Path(__file__).resolve().parent
WORK = suite_data.WORK / "cold-predict"


def text_model() -> Path:
    from transferkit import TextClassifier

    folder = WORK / "text"
    if not folder.exists():
        data = cell("spam:easy")
        items, labels = sample(data["labels"], 10, 0, "spam:easy")
        TextClassifier(seed=0, verbose=False).fit(items, labels).save(folder)
    return folder


def exported(model: Path, one: str, flag: str) -> Path:
    """A cache folder holding ``model``'s ONNX export alone (made once, by a predict on ONNX Runtime)."""
    cache = WORK / f"cache-{model.parent.name}-{model.name}"
    if not (cache / "exports").is_dir():
        shutil.rmtree(cache, ignore_errors=True)
        subprocess.run([CLI, "predict", str(model), one, *flag.split(), "--runtime", "onnx"], check=True,
                       capture_output=True, env={**os.environ, "TRANSFERKIT_CACHE": str(cache)})
        for entry in cache.iterdir():
            if entry.name != "exports":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return cache


def pair(model: Path, one: str, flag: str) -> dict:
    cache = exported(model, one, flag)
    run = (f"d=$(mktemp -d) && cp -r {cache}/exports $d/ && TRANSFERKIT_CACHE=$d {CLI} predict {model} '{one}' {flag}"
           " --runtime {} >/dev/null 2>&1; s=$?; rm -rf $d; exit $s")
    return {"cached_export_vs_torch": bench(["sh", "-c", run.format("auto")], ["sh", "-c", run.format("torch")]),
            "cached_export_vs_import": bench(["sh", "-c", run.format("auto")], [PY, "-c", "import torch, timm"])}


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    WORK.mkdir(parents=True, exist_ok=True)
    image_model, folder = student.models()["side-by-side"], student.images()
    result = {"machine": machine(), "commit": commit(),
              "image": {"model": str(image_model), **pair(image_model, str(sorted(folder.iterdir())[0]), "")},
              "text": {"model": str(text_model()), **pair(text_model(), "Cheap meds, no prescription needed", "--text")}}
    out = HERE / "results" / f"cold-predict-{cpu_slug(result['machine'])}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
