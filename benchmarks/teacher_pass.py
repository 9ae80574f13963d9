"""The side-by-side teacher over a large folder of unlabeled images, streamed: resident memory as it goes (#23).

The teacher is ``auto``'s model without a pool (the four zoo backbones side by side; ``benchmarks/student.py``'s
``side-by-side``, fitted once on 10 Oxygen icons per class). The images are ``benchmarks/large_pool.py``'s: Oxygen
icons drawn again with a random crop, rotation, flip and colour change, ``--n`` of them. One whole
``transferkit predict MODEL FOLDER --out p.csv`` process with a fresh cache (features and exports), its resident
memory (with its children's) sampled every 2 s beside the rows written so far.

    python benchmarks/teacher_pass.py --n 10000   # about 15 minutes on 2 cores; writes results/teacher-pass-<cpu>-<n>.json
    python benchmarks/teacher_pass.py --n 100000  # #23's size: about 60-80 minutes here
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from codebase_metrics import cpu_slug, machine
from large_pool import pool
from speed import CLI
from student import models
from unlabeled import commit

HERE = Path(__file__).resolve().parent


def resident_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) if "VmRSS" in status else 0
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, AttributeError):
            continue
    return total / 1024


def rows_written(out: Path) -> int:
    """Rows of a predictions CSV so far (its header left out)."""
    return max(sum(1 for _ in out.open()) - 1, 0) if out.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    args = parser.parse_args()
    folder, teacher = pool(args.n), models()["side-by-side"]
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.csv"
        start = time.perf_counter()
        proc = subprocess.Popen([CLI, "predict", str(teacher), str(folder), "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "TRANSFERKIT_CACHE": f"{tmp}/cache", "HF_HUB_OFFLINE": "1"})
        while proc.poll() is None:
            samples.append((round(time.perf_counter() - start, 1), rows_written(out), round(resident_mb(proc.pid))))
            time.sleep(2)
        wall = time.perf_counter() - start
        written = rows_written(out)
    peak = max(s[2] for s in samples)
    after_first = [s[2] for s in samples if s[1] >= 1000]
    result = {"machine": machine(), "commit": commit(), "n_images": args.n, "rows_written": written,
              "exit": proc.returncode, "wall_s": round(wall, 1), "images_per_s": round(written / wall, 1),
              "peak_rss_mb": peak, "rss_mb_from_1000_rows": [min(after_first), max(after_first)] if after_first else None,
              "samples_s_rows_mb": samples[::5]}
    (HERE / "results" / f"teacher-pass-{cpu_slug(result['machine'])}-{args.n}.json").write_text(
        json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "samples_s_rows_mb"}, indent=1))


if __name__ == "__main__":
    main()
