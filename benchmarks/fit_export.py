"""What ``fit`` leaving the model's ONNX export in the cache costs and saves: whole processes paired by farm-bench.

For an image task (the bundled clip-art training set, ``auto``: the zoo's backbones side by side) and a text task
(``auto`` on 10 e-mails per class of ``benchmarks/unlabeled.py``'s ``spam:easy`` cell, seed 0, written to a CSV):

- ``fit``: ``transferkit fit DATA --out M`` (which exports) against ``--no-export``;
- ``fit, then 3 predicts``: the same fit followed by three ``transferkit predict M INPUT`` of one input each, as a
  user trying a new model does, against the same with ``--no-export`` (whose predicts start PyTorch each time).

Every run gets a fresh cache (``TRANSFERKIT_CACHE``) holding only the zoo backbones' ONNX graphs, as on a machine
that exported those once (a first export on a machine also exports each backbone's graph: ``first_fit_s`` times one
fit with an empty cache). The features are extracted afresh in every run.

    python benchmarks/fit_export.py     # about 15 minutes on 2 cores; writes results/fit-export-<cpu>.json
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import suite_data
from codebase_metrics import cpu_slug, machine
from speed import CLI, ROOT, TRAIN, bench
from unlabeled import cell, commit, sample

HERE = Path(__file__).resolve().parent
WORK = suite_data.WORK / "fit-export"


def text_data() -> tuple[Path, list[str]]:
    """The text task as a CSV, and three test e-mails to predict."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "spam-easy-k10.csv"
    data = cell("spam:easy")
    if not path.exists():
        items, labels = sample(data["labels"], 10, 0, "spam:easy")
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows(zip(items, labels))
    return path, [" ".join(t.split()[:60]) for t in data["test"][0][:3]]


def graphs_cache(data: Path) -> Path:
    """A cache holding only the image backbones' ONNX graphs, made by one fit (an empty cache otherwise)."""
    cache = WORK / "graphs-cache"
    if not (cache / "onnx-features").is_dir():
        shutil.rmtree(cache, ignore_errors=True)
        subprocess.run([CLI, "fit", str(data), "--out", str(WORK / "graphs-model")], check=True, capture_output=True,
                       env={**os.environ, "TRANSFERKIT_CACHE": str(cache)})
        shutil.rmtree(WORK / "graphs-model")
        for entry in cache.iterdir():
            if entry.name != "onnx-features":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return cache


def commands(data: Path, inputs: list[str], flag: str, cache: Path) -> tuple[str, str]:
    """(fit alone, fit then a predict of each input), each in a fresh copy of ``cache``."""
    fit = f"{CLI} fit {shlex.quote(str(data))} --out $d/m {flag}".strip()
    predicts = " && ".join(f"{CLI} predict $d/m {shlex.quote(one)}" + (" --text" if data.suffix == ".csv" else "")
                           for one in inputs)

    def wrap(body: str) -> str:
        return (f"d=$(mktemp -d) && cp -r {cache}/. $d/ && export TRANSFERKIT_CACHE=$d && {{ {body}; }} >/dev/null 2>&1; "
                "s=$?; rm -rf $d; exit $s")

    return wrap(fit), wrap(f"{fit} && {predicts}")


def first_fit(data: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([CLI, "fit", str(data), "--out", f"{tmp}/m"], check=True, capture_output=True,
                       env={**os.environ, "TRANSFERKIT_CACHE": f"{tmp}/cache"})
        return round(time.perf_counter() - start, 2)


def task(data: Path, inputs: list[str], runs: int) -> dict:
    cache = graphs_cache(data) if data.suffix != ".csv" else Path(tempfile.mkdtemp(dir=WORK))
    (exported, exported_then), (plain, plain_then) = (commands(data, inputs, f, cache) for f in ("", "--no-export"))
    return {"data": str(data.relative_to(ROOT) if data.is_relative_to(ROOT) else data), "inputs": len(inputs),
            "fit": bench(["sh", "-c", exported], ["sh", "-c", plain], runs),
            "fit_then_predicts": bench(["sh", "-c", exported_then], ["sh", "-c", plain_then], runs),
            "first_fit_s": first_fit(data)}


def main(runs: int = 3) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    WORK.mkdir(parents=True, exist_ok=True)
    images = [str(p) for p in sorted((TRAIN.parent / "test" / "birds").glob("*.png"))[:3]]
    text, texts = text_data()
    result = {"machine": machine(), "commit": commit(), "image": task(TRAIN, images, runs),
              "text": task(text, texts, runs)}
    out = HERE / "results" / f"fit-export-{cpu_slug(result['machine'])}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
