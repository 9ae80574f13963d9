"""Benchmark: transfer (frozen pretrained features + logistic regression) against training from scratch,
extraction speed against a naive fp32 loop, and the feature cache. Prints Markdown tables.

    python benchmarks/features_vs_scratch.py                 # full run (about 35 min on 2 CPU cores)
    python benchmarks/features_vs_scratch.py --quick         # one seed, k=5 and 10, bundled clip art only

Needs Debian's openclipart-png and dataset-fashion-mnist (apt-get install openclipart-png dataset-fashion-mnist).
Every number comes from this run on this machine; ratios are measured against a baseline in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import image_datasets as D  # noqa: E402

from transferkit import ImageClassifier, zoo  # noqa: E402
from transferkit.evaluate import evaluate  # noqa: E402
from transferkit.features import FeatureExtractor  # noqa: E402


def accuracy_runs(name, pool, test, ks, seeds, scratch_epochs, cache_dir):
    rows = []
    for k in ks:
        for seed in seeds:
            paths, labels = D.sample(pool, k, seed)
            for strategy in ("features", "scratch"):
                clf = ImageClassifier(strategy=strategy, seed=seed, epochs=scratch_epochs, cache_dir=cache_dir, verbose=False)
                start = time.perf_counter()
                clf.fit(paths, labels)
                seconds = time.perf_counter() - start
                acc = evaluate(clf, test).accuracy
                rows.append({"dataset": name, "k": k, "seed": seed, "strategy": strategy, "accuracy": acc, "fit_seconds": seconds})
                print(f"  {name} k={k} seed={seed} {strategy:8s} acc={acc:.3f} fit={seconds:.1f}s", file=sys.stderr, flush=True)
    return rows


def naive_features(model, transform, paths, batch_size=32):
    """What a first script does: fp32, default memory format, decode + transform + forward per batch."""
    out = []
    with torch.no_grad():
        for i in range(0, len(paths), batch_size):
            x = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[i : i + batch_size]])
            out.append(model(x).numpy())
    return np.concatenate(out)


def extraction_speed(paths, repeats=2):
    spec = zoo.resolve("tf_efficientnet_lite0")
    naive_model = zoo.create_backbone(spec).eval()
    transform = spec.preprocessing.eval_transform()
    naive_features(naive_model, transform, paths[:32])  # warm-up
    naive = min(_timed(lambda: naive_features(naive_model, transform, paths)) for _ in range(repeats))
    fast = FeatureExtractor(zoo.create_backbone(spec), spec.preprocessing, "bench", use_cache=False, progress=False)
    fast.extract(paths[:32])
    ours = min(_timed(lambda: fast.extract(paths)) for _ in range(repeats))
    return {"images": len(paths), "naive_img_s": len(paths) / naive, "transferkit_img_s": len(paths) / ours,
            "speedup": naive / ours, "precision": fast.precision}


def precision_accuracy(pool, test, k, seed, cache_dir):
    out = {}
    paths, labels = D.sample(pool, k, seed)
    for precision in ("fp32", "bf16"):
        clf = ImageClassifier(precision=precision, seed=seed, cache_dir=cache_dir, verbose=False).fit(paths, labels)
        out[precision] = evaluate(clf, test).accuracy
    return out


def cache_speed(pool, k, seed):
    paths, labels = D.sample(pool, k, seed)
    cache = tempfile.mkdtemp(prefix="tk-cache-bench-")
    try:
        first = _timed(lambda: ImageClassifier(seed=seed, cache_dir=cache, verbose=False).fit(paths, labels))
        second = _timed(lambda: ImageClassifier(seed=seed, cache_dir=cache, verbose=False).fit(paths, labels))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"images": len(paths), "first_s": first, "second_s": second, "speedup": first / second}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _mean_sd(values):
    return f"{100 * statistics.mean(values):.1f} ± {100 * (statistics.stdev(values) if len(values) > 1 else 0):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ks", default="5,10,20")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scratch-epochs", type=int, default=15)
    parser.add_argument("--datasets", default="clipart,clipart-large,fashion")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "transferkit-bench")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "features_vs_scratch.json")
    args = parser.parse_args()
    ks = [5, 10] if args.quick else [int(k) for k in args.ks.split(",")]
    seeds = [0] if args.quick else list(range(args.seeds))
    names = ["clipart"] if args.quick else args.datasets.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    cache_dir = str(args.work / "cache")
    shutil.rmtree(cache_dir, ignore_errors=True)
    sources = {
        "clipart": lambda: D.clipart_bundled(),
        "clipart-large": lambda: D.clipart_large(args.work),
        "fashion": lambda: D.fashion_mnist(args.work),
    }
    loaded = {n: sources[n]() for n in names}
    torch.set_num_threads(os.cpu_count() or 1)

    results = {"machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()}}
    rows = []
    for name, (pool, test) in loaded.items():
        rows += accuracy_runs(name, pool, test, ks, seeds, args.scratch_epochs, cache_dir)
    results["accuracy"] = rows

    speed_name = "fashion" if "fashion" in loaded else names[0]
    speed_pool, speed_test = loaded[speed_name]
    speed_paths = D.sample(speed_pool, 32, 0)[0]
    results["extraction"] = extraction_speed(speed_paths)
    results["precision_accuracy"] = precision_accuracy(speed_pool, speed_test, 20, 0, cache_dir)
    results["cache"] = [dict(dataset=n, k=k, **cache_speed(loaded[n][0], k, 0)) for n in names for k in (max(ks), 50)]

    print("\n### Transfer (features) against training from scratch: test accuracy %, mean ± sd over seeds\n")
    print(f"| dataset | k per class | classes | features | scratch (≤{args.scratch_epochs} epochs) | gain (points) | fit s: features / scratch |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        n_classes = len(loaded[name][0])
        for k in ks:
            f = [r for r in rows if r["dataset"] == name and r["k"] == k and r["strategy"] == "features"]
            s = [r for r in rows if r["dataset"] == name and r["k"] == k and r["strategy"] == "scratch"]
            gain = 100 * (statistics.mean(r["accuracy"] for r in f) - statistics.mean(r["accuracy"] for r in s))
            print(f"| {name} | {k} | {n_classes} | {_mean_sd([r['accuracy'] for r in f])} | {_mean_sd([r['accuracy'] for r in s])} "
                  f"| {gain:+.1f} | {statistics.mean(r['fit_seconds'] for r in f):.1f} / {statistics.mean(r['fit_seconds'] for r in s):.0f} |")
    e = results["extraction"]
    print("\n### Feature extraction, EfficientNet-Lite0, decode + preprocess + forward, batch 32\n")
    print("| path | images/s |\n|---|---|")
    print(f"| naive loop: fp32, default memory format, torch.no_grad | {e['naive_img_s']:.1f} |")
    print(f"| transferkit: channels_last + {e['precision']} autocast, inference_mode | {e['transferkit_img_s']:.1f} |")
    print(f"| speed-up | {e['speedup']:.2f}x |")
    p = results["precision_accuracy"]
    print(f"\nAccuracy with fp32 features {100 * p['fp32']:.1f}% vs bf16 features {100 * p['bf16']:.1f}% ({speed_name}, k=20, seed 0).")
    print("\n### Feature cache: the same fit twice\n")
    print("| dataset | images | first fit s | second fit s | speed-up |\n|---|---|---|---|---|")
    for c in results["cache"]:
        print(f"| {c['dataset']} (k={c['k']}) | {c['images']} | {c['first_s']:.2f} | {c['second_s']:.2f} | {c['speedup']:.1f}x |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
