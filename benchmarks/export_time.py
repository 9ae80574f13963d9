"""How long ``transferkit export`` takes for the image default (three backbones side by side, fitted on the bundled
example): the first export on a machine, which exports each backbone's network into the feature cache, against a
later one, which finds them there and exports only the head. Whole processes paired by farm-bench, each run with a
fresh output folder; the first export's runs start from an empty cache, the later one's from a cache holding the
backbones' graphs alone.

    python benchmarks/export_time.py                  # about 4 minutes on 2 cores; results/export-time-<cpu>.json
    python benchmarks/export_time.py --before /tmp/b0/src   # and the first export against another tree's: 9 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import suite_data
from codebase_metrics import cpu_slug, machine
from speed import CLI, PY, TRAIN, bench
from unlabeled import commit

HERE = Path(__file__).resolve().parent
WORK = suite_data.WORK / "export-time"


def model() -> Path:
    folder = WORK / "default"
    if not folder.exists():
        subprocess.run([CLI, "fit", str(TRAIN), "--out", str(folder)], check=True, capture_output=True,
                       env={**os.environ, "TRANSFERKIT_CACHE": str(WORK / "fit-cache")})
    return folder


def graphs_only(folder: Path) -> Path:
    """A cache holding the backbones' graphs alone (made once, by an export)."""
    cache = WORK / "graphs-cache"
    if not (cache / "onnx-features").is_dir():
        shutil.rmtree(cache, ignore_errors=True)
        subprocess.run([CLI, "export", str(folder), "--out", str(WORK / "first-export")], check=True,
                       capture_output=True, env={**os.environ, "TRANSFERKIT_CACHE": str(cache)})
        shutil.rmtree(WORK / "first-export")
        for entry in cache.iterdir():
            if entry.name != "onnx-features":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return cache


def run(folder: Path, cache: Path | None, src: str | None = None) -> list[str]:
    seed = f"cp -r {cache}/onnx-features $d/cache/ && " if cache else ""
    path = f"PYTHONPATH={src} " if src else ""
    return ["sh", "-c", f"d=$(mktemp -d) && mkdir $d/cache && {seed}{path}TRANSFERKIT_CACHE=$d/cache {CLI} export "
                        f"{folder} --out $d/out >/dev/null 2>&1; s=$?; rm -rf $d; exit $s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="a source tree (its src folder) whose first export is timed against this one's")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    WORK.mkdir(parents=True, exist_ok=True)
    folder = model()
    cache = graphs_only(folder)
    result = {"machine": machine(), "commit": commit(), "model": str(folder), "python": PY,
              "later_vs_first": bench(run(folder, cache), run(folder, None), runs=args.runs)}
    if args.before:
        result["first_vs_before"] = bench(run(folder, None), run(folder, None, args.before), runs=args.runs)
    out = HERE / "results" / f"export-time-{cpu_slug(result['machine'])}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
