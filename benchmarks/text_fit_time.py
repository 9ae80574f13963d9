"""Text fits as whole processes: `transferkit fit` against SetFit in a script that imports it, in the same run (#26).

For each (task, k, seed) the same k labeled texts per class (``suite_data.Task.sample``) are written to a CSV, then:

- ``transferkit``: ``transferkit fit train.csv --out MODEL`` with a fresh, empty feature cache (nothing computed before
  counts); the time is the whole process, from its start to its exit (saving the model included). The accuracy comes
  from ``transferkit evaluate`` on the task's test set afterwards (not timed).
- ``setfit``: ``python -c`` of a script that imports SetFit 1.2, loads the same MiniLM folder and trains with SetFit's
  defaults (``batch_size=16, num_epochs=1``, as ``benchmarks/fewshot.py`` runs it); the time is from the process's
  start to the end of ``Trainer.train()`` (its prediction of the test set afterwards is not timed).

The two alternate, one at a time on an otherwise idle machine, each with ``OMP_NUM_THREADS`` threads. SetFit is
imported from ``--setfit-path`` (e.g. ``pip install --no-deps --target /tmp/sfx setfit==1.2.0 accelerate datasets
dill evaluate multiprocess psutil xxhash``), so transferkit's own environment stays as users install it.

    python benchmarks/text_fit_time.py --task spam --ks 5,10,20 --seeds 0-1 --setfit-path /tmp/sfx
    python benchmarks/text_fit_time.py --table
    python benchmarks/text_fit_time.py --results results/text-fit-time-amd-epyc-avx512.jsonl ...   # another machine
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import suite_data
from codebase_metrics import machine
from unlabeled import commit

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "text-fit-time.jsonl"
CLI = [sys.executable, "-m", "transferkit.cli"]

SETFIT = """
import sys, time, csv, json, warnings, logging
warnings.simplefilter("ignore")
from datasets import Dataset
from setfit import SetFitModel, Trainer, TrainingArguments
logging.getLogger("setfit").setLevel(logging.ERROR)
csv.field_size_limit(sys.maxsize)  # whole e-mails
folder, train, test, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = list(csv.DictReader(open(train, encoding="utf-8")))
classes = sorted({r["label"] for r in rows})
model = SetFitModel.from_pretrained(folder, labels=classes)
args = TrainingArguments(batch_size=16, num_epochs=1, seed=seed, show_progress_bar=False, report_to="none",
                         save_strategy="no", logging_strategy="no")
data = Dataset.from_dict({"text": [r["text"] for r in rows], "label": [classes.index(r["label"]) for r in rows]})
Trainer(model=model, args=args, train_dataset=data).train()
trained = time.time()
tests = list(csv.DictReader(open(test, encoding="utf-8")))
predicted = model.predict([r["text"] for r in tests], batch_size=64, show_progress_bar=False)
predicted = [classes[int(p)] if not isinstance(p, str) else p for p in predicted]
accuracy = sum(p == r["label"] for p, r in zip(predicted, tests)) / len(tests)
print(json.dumps({"trained": trained, "accuracy": accuracy}))
"""


def write_csv(path: Path, items: list[str], labels: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(zip(items, labels))
    return path


def run_transferkit(train: Path, test: Path, work: Path, env: dict) -> dict:
    env = {**env, "TRANSFERKIT_CACHE": str(work / "cache")}
    start = time.time()
    fitted = subprocess.run([*CLI, "fit", str(train), "--out", str(work / "model"), "--json"], env=env,
                            capture_output=True, text=True)
    seconds = time.time() - start
    if fitted.returncode != 0:
        raise SystemExit(f"transferkit fit failed: {fitted.stderr[-2000:]}")
    report = json.loads(fitted.stdout.strip().splitlines()[-1])
    evaluated = subprocess.run([*CLI, "evaluate", str(work / "model"), str(test), "--json"], env=env,
                               capture_output=True, text=True)
    accuracy = json.loads(evaluated.stdout.strip().splitlines()[-1])["accuracy"]
    return {"seconds": round(seconds, 2), "accuracy": accuracy, "choice": report.get("strategy")}


def run_setfit(train: Path, test: Path, seed: int, env: dict, setfit_path: str) -> dict:
    from transferkit.zoo import resolve
    from transferkit.zoo._text import encoder_folder

    folder = encoder_folder(resolve("all-MiniLM-L6-v2", "text"))
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (setfit_path, env.get("PYTHONPATH", "")) if p)}
    start = time.time()
    done = subprocess.run([sys.executable, "-c", SETFIT, str(folder), str(train), str(test), str(seed)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"SetFit failed: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": round(out["trained"] - start, 2), "accuracy": out["accuracy"]}


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows) if rows else float("nan")


def table(rows: list[dict]) -> str:
    cells: dict[tuple, dict[str, list[dict]]] = {}
    for r in rows:
        cells.setdefault((r["task"], r["k"]), {}).setdefault(r["method"], []).append(r)
    lines = ["| task | k | seeds | transferkit s | SetFit s | time ratio (median of pairs) | transferkit acc % | "
             "SetFit acc % |", "|---|---|---|---|---|---|---|---|"]
    for (task, k), by in sorted(cells.items()):
        ours, theirs = by.get("transferkit", []), by.get("setfit", [])
        pairs = {r["seed"]: r for r in theirs}
        ratios = [r["seconds"] / pairs[r["seed"]]["seconds"] for r in ours if r["seed"] in pairs]
        lines.append(f"| {task} | {k} | {len(ratios)} | {_mean(ours, 'seconds'):.1f} | {_mean(theirs, 'seconds'):.1f} | "
                     f"{statistics.median(ratios) if ratios else float('nan'):.2f} | "
                     f"{100 * _mean(ours, 'accuracy'):.1f} | {100 * _mean(theirs, 'accuracy'):.1f} |")
    where = sorted({f"{r['cpu']} ({', '.join(r['flags']) or 'no flags of note'}), {r['threads']} threads, commit "
                    f"{r['commit']}" for r in rows})
    return "\n".join(lines) + "\n\nWhole processes, one at a time. Machine: " + "; ".join(where) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="spam")
    parser.add_argument("--ks", default="5,10,20")
    parser.add_argument("--seeds", default="0-1")
    parser.add_argument("--setfit-path", default="")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file rows go to and tables read")
    args = parser.parse_args()
    results = args.results
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []
    if args.table:
        print(table(rows) if rows else "No results yet: run benchmarks/text_fit_time.py.")
        return
    task = suite_data.load_task(args.task)
    m = machine()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    for k in (int(x) for x in args.ks.split(",")):
        for seed in suite_data.seed_range(args.seeds):
            items, labels = task.sample(k, seed)
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                train = write_csv(work / "train.csv", items, labels)
                test = write_csv(work / "test.csv", task.test_items, task.test_labels)
                for method in ("transferkit", "setfit"):
                    result = (run_transferkit(train, test, work, env) if method == "transferkit"
                              else run_setfit(train, test, seed, env, args.setfit_path))
                    row = {"task": args.task, "k": k, "seed": seed, "method": method, **result,
                           "n_test": len(task.test_items), "cpu": m["cpu"], "flags": m["flags"],
                           "threads": int(env["OMP_NUM_THREADS"]), "commit": commit()}
                    print(json.dumps(row), flush=True)
                    with results.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps(row) + "\n")
    print(table([json.loads(line) for line in results.read_text().splitlines()]))


if __name__ == "__main__":
    main()
