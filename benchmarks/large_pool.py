"""A fit with 5,000 unlabeled images on this machine: wall time, peak memory and what each phase took (#23).

The pool is made from real images: every Oxygen icon of the suite's ``icons`` pool, drawn again with a random crop,
rotation, flip and colour change (seeded) until there are 5,000 distinct files. The labels are 10 per class from the
same theme (the ``oxygen`` cell of ``benchmarks/unlabeled.py``). ``transferkit fit`` runs as a whole process with a
fresh feature cache under ``/usr/bin/time -v``; the phases' seconds come from its ``--json`` (the unlabeled items'
features, learning from them, distilling).

    python benchmarks/large_pool.py         # about 10 minutes on 2 cores; writes results/large-pool-<cpu>.json
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import suite_data
from codebase_metrics import cpu_slug, machine
from speed import CLI
from unlabeled import cell, commit, sample

HERE = Path(__file__).resolve().parent
WORK = suite_data.WORK / "large-pool"
N_POOL = 5000


def pool(n: int = N_POOL) -> Path:
    folder = WORK / f"pool-{n}"
    if folder.exists():
        return folder
    sources = cell("oxygen")["pool"]
    tmp = WORK / "pool.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = random.Random(0)
    for i in range(n):
        drawn_again(sources[i % len(sources)], rng).save(tmp / f"{i:05d}.png")
    tmp.rename(folder)
    return folder


def drawn_again(source, rng: random.Random, smallest: float = 0.6, degrees: float = 20, colour: float = 0.5):
    """The image ``source`` with a random square crop (``smallest`` of its shorter side at least), rotation (up to
    ``degrees``), mirroring and colour change (saturation times 1 +- ``colour``), on a light background: RGB."""
    from PIL import Image, ImageEnhance, ImageOps

    image = Image.open(source).convert("RGBA")
    w, h = image.size
    side = int(min(w, h) * rng.uniform(smallest, 1.0))
    x, y = rng.randint(0, w - side), rng.randint(0, h - side)
    image = image.crop((x, y, x + side, y + side)).rotate(rng.uniform(-degrees, degrees), expand=False)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    rgb = Image.new("RGB", image.size, tuple(rng.randint(200, 255) for _ in range(3)))
    rgb.paste(image, mask=image.getchannel("A"))
    return ImageEnhance.Color(rgb).enhance(rng.uniform(1 - colour, 1 + colour))


def labeled() -> Path:
    folder = WORK / "labeled"
    if not folder.exists():
        items, labels = sample(cell("oxygen")["labels"], 10, 0, "oxygen")
        for item, label in zip(items, labels):
            (folder / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(item, folder / label / Path(item).name)
    return folder


def main() -> None:
    unlabeled, train = pool(), labeled()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log"
        start = time.perf_counter()
        with log.open("w") as fh:
            proc = subprocess.run(["/usr/bin/time", "-v", CLI, "fit", str(train), "--out", f"{tmp}/model",
                                   "--unlabeled", str(unlabeled), "--json"], stdout=subprocess.PIPE, stderr=fh,
                                  text=True, env={**os.environ, "TRANSFERKIT_CACHE": f"{tmp}/cache",
                                                  "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - start
        text = log.read_text()
        model_mb = sum(f.stat().st_size for f in Path(tmp, "model").rglob("*") if f.is_file()) / 2**20
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    fit = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    used, student = fit.get("unlabeled") or {}, fit.get("student") or {}
    phases = {"fit_seconds": fit.get("fit_seconds"), "unlabeled_features_seconds": used.get("features_seconds"),
              "learn_from_pool_seconds": used.get("learn_seconds"), "distill_seconds": student.get("seconds")}
    result = {"machine": machine(), "commit": commit(), "n_unlabeled": N_POOL, "n_labeled": 60, "exit": proc.returncode,
              "wall_s": round(wall, 1), "peak_rss_mb": round(int(peak.group(1)) / 1024) if peak else None,
              "model_folder_mb": round(model_mb, 1),
              "reason": fit.get("reason"), "student": fit.get("student"), "unlabeled": fit.get("unlabeled"),
              "phases": phases, "log_tail": text[-3000:] if proc.returncode else None}
    out = HERE / "results" / f"large-pool-{cpu_slug(result['machine'])}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "log_tail"}, indent=1))


if __name__ == "__main__":
    main()
