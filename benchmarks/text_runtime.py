"""Which runtime a text job should run on where PyTorch's bfloat16 is native: `transferkit predict` of N texts on the
model's cached ONNX export against the same predict on PyTorch, whole processes paired by farm-bench, and what
``--runtime auto`` picks for that job (``loading.for_texts``: the export up to ``TEXT_FEW_MAX_CHARS`` characters).

The model is ``benchmarks/cold_predict.py``'s text default (``auto`` on 10 e-mails per class of ``spam:easy``, a tuned
MiniLM). The jobs are SpamAssassin test e-mails, whole or cut to their first 100 characters, written to a CSV and
predicted with ``--out`` (a fresh output file and a fresh cache holding only the model's export every run).

    python benchmarks/text_runtime.py     # about 15 minutes on 2 cores; writes results/text-runtime-<cpu>.json
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import tempfile
from pathlib import Path

from codebase_metrics import cpu_slug, machine
from cold_predict import exported, text_model
from speed import CLI, bench
from unlabeled import cell, commit

HERE = Path(__file__).resolve().parent
JOBS = (("e-mails", None, 100), ("e-mails", None, 250), ("e-mails", None, 400),
        ("first 100 characters", 100, 800), ("first 100 characters", 100, 1500), ("first 100 characters", 100, 2500))


def write_job(texts: list[str], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text"])
        writer.writerows([t] for t in texts)
    return path


def chosen(model: Path, job: Path, cache: Path, work: Path) -> str:
    """The runtime ``--runtime auto`` ran the job on (``predict --out --json`` says)."""
    done = subprocess.run([CLI, "predict", str(model), "--files", str(job), "--out", str(work / "auto.csv"), "--json"],
                          check=True, capture_output=True, text=True, env={**os.environ, "TRANSFERKIT_CACHE": str(cache)})
    (work / "auto.csv").unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])["runtime"]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transferkit.loading import TEXT_CHARS_READ

    model = text_model()
    mails = [t for t in cell("spam:easy")["test"][0] if t.strip()]
    cache = exported(model, mails[0][:100], "--text")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind, cut, n in JOBS:
            texts = [t[:cut] if cut else t for t in (mails * (n // len(mails) + 1))[:n]]
            job = write_job(texts, work / f"{n}.csv")
            run = (f"d=$(mktemp -d) && cp -r {cache}/exports $d/ && TRANSFERKIT_CACHE=$d {CLI} predict {model} "
                   f"--files {job} --out $d/p.csv --runtime {{}} >/dev/null 2>&1; s=$?; rm -rf $d; exit $s")
            timed = bench(["sh", "-c", run.format("onnx")], ["sh", "-c", run.format("torch")], runs=3)
            row = {"texts": kind, "n": n, "characters_counted": sum(min(len(t), TEXT_CHARS_READ) for t in texts),
                   "onnx_s": timed["a_median_s"], "torch_s": timed["b_median_s"],
                   "onnx_over_torch": timed["ratio_median"], "auto": chosen(model, job, cache, work)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {"machine": machine(), "commit": commit(), "model": str(model.relative_to(HERE)), "jobs": rows}
    out = HERE / "results" / f"text-runtime-{cpu_slug(result['machine'])}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("| texts | n | characters counted | cached export, s | PyTorch, s | ratio | auto runs |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['texts']} | {r['n']:,} | {r['characters_counted']:,} | {r['onnx_s']:.1f} | {r['torch_s']:.1f} | "
              f"{r['onnx_over_torch']:.2f} | {r['auto']} |")


if __name__ == "__main__":
    main()
