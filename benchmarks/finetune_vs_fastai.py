"""Benchmark for fine-tuning: transferkit's features / finetune / auto / scratch against fastai's
``vision_learner(...).fine_tune(...)`` with the same backbone and the same pretrained weights.

    pip install fastai==2.8.12        # benchmark-only dependency (make bench-deps)
    python benchmarks/finetune_vs_fastai.py --datasets fashion --ks 5,20,100 --seeds 1

Records test accuracy and wall time per run and prints a Markdown table (mean ± sd over seeds). Every run uses
EfficientNet-Lite0 with the packaged ImageNet weights; fastai gets them loaded into its body by hand (checked:
only the classifier keys are missing) and mean = std = 0.5 normalisation, as timm's preprocessing says.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import image_datasets as D  # noqa: E402

from transferkit import ImageClassifier, zoo  # noqa: E402
from transferkit.data import read_images  # noqa: E402
from transferkit.evaluate import evaluate  # noqa: E402


def run_transferkit(strategy, paths, labels, test, seed, cache_dir, scratch_epochs=None):
    epochs = scratch_epochs if strategy == "scratch" else None
    clf = ImageClassifier(strategy=strategy, seed=seed, cache_dir=cache_dir, verbose=False, epochs=epochs)
    start = time.perf_counter()
    clf.fit(paths, labels)
    seconds = time.perf_counter() - start
    extra = {"auto_choice": clf.metrics_.get("auto_choice")} if strategy == "auto" else {}
    return evaluate(clf, test).accuracy, seconds, extra


def run_fastai(paths, labels, test, seed, epochs):
    from fastai.vision.all import (ImageDataLoaders, Normalize, Resize, aug_transforms, accuracy, set_seed,
                                   vision_learner)

    spec = zoo.resolve("tf_efficientnet_lite0")
    pre = spec.preprocessing
    set_seed(seed, reproducible=True)
    start = time.perf_counter()
    bs = max(2, min(32, int(0.8 * len(paths)) // 2))  # fastai drops the last partial batch: keep it below the set
    dls = ImageDataLoaders.from_lists(
        "/", [str(p) for p in paths], labels, valid_pct=0.2, seed=seed, bs=bs,
        item_tfms=Resize(pre.input_size), batch_tfms=[*aug_transforms(), Normalize.from_stats(pre.mean, pre.std)],
        num_workers=0,
    )
    learn = vision_learner(dls, spec.arch, pretrained=False, metrics=accuracy)
    state = zoo.create_backbone(spec, num_classes=0).state_dict()
    body = learn.model[0].model
    result = body.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and all("classifier" in k for k in result.missing_keys), result
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
    test_items = read_images(test)
    dl = learn.dls.test_dl([str(p) for p in test_items.paths])
    with learn.no_bar():
        preds, _ = learn.get_preds(dl=dl)
    predicted = np.array(learn.dls.vocab)[preds.argmax(1).numpy()]
    seconds = time.perf_counter() - start
    return float((predicted == np.array(test_items.labels)).mean()), seconds, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="clipart-large,fashion")
    parser.add_argument("--ks", default="5,10,20,100")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--methods", default="features,finetune,auto,scratch,fastai")
    parser.add_argument("--fastai-epochs", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "transferkit-bench")
    parser.add_argument("--scratch-epochs", type=int, default=15, help="epoch cap for the scratch column")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "finetune_vs_fastai.json")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --json and skip them")
    parser.add_argument("--table-from", type=Path, nargs="+", help="print the table of these result files, run nothing")
    parser.add_argument("--threads", type=int, help="torch threads (default: all; measured: two 1-thread grids side by side were no faster)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.table_from:
        print_table([row for path in args.table_from for row in json.loads(path.read_text())], methods)
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = json.loads(args.json.read_text()) if args.resume and args.json.is_file() else []
    run_grid(args, methods, rows)
    print_table(rows, methods)


def run_grid(args, methods, rows) -> None:
    done = {(r["dataset"], r["k"], r["seed"], r["method"]) for r in rows}
    sources = {"clipart": D.clipart_bundled, "clipart-large": lambda: D.clipart_large(args.work),
               "fashion": lambda: D.fashion_mnist(args.work)}
    for name in args.datasets.split(","):
        pool, test = sources[name]()
        for k in [int(v) for v in args.ks.split(",")]:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                paths, labels = D.sample(pool, k, seed)
                for method in methods:
                    if (name, k, seed, method) in done:
                        continue
                    if method == "fastai":
                        acc, seconds, extra = run_fastai(paths, labels, test, seed, args.fastai_epochs)
                    else:
                        acc, seconds, extra = run_transferkit(method, paths, labels, test, seed, str(args.work / "cache"),
                                                              args.scratch_epochs)
                    rows.append({"dataset": name, "k": k, "seed": seed, "method": method, "accuracy": acc,
                                 "seconds": seconds, "n_train": len(paths), **extra})
                    print(f"  {name} k={k} seed={seed} {method:8s} acc={acc:.3f} {seconds:.0f}s {extra or ''}",
                          file=sys.stderr, flush=True)
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    tmp = args.json.with_suffix(".tmp")
                    tmp.write_text(json.dumps(rows, indent=2))
                    tmp.replace(args.json)


def select(rows, name, k, method) -> list[dict]:
    return [r for r in rows if r["dataset"] == name and r["k"] == k and r["method"] == method]


def print_table(rows, methods) -> None:
    print("\n| dataset | k | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for k in sorted({r["k"] for r in rows if r["dataset"] == name}):
            cells = []
            for m in methods:
                sel = select(rows, name, k, m)
                if not sel:
                    cells.append("-")
                    continue
                acc = [100 * r["accuracy"] for r in sel]
                sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
                cells.append(f"{statistics.mean(acc):.1f} ± {sd:.1f} ({statistics.mean(r['seconds'] for r in sel):.0f} s)"
                             + (f" n={len(sel)}" if len(sel) < 3 else ""))
            print(f"| {name} | {k} | " + " | ".join(cells) + " |")
    print_targets(rows)


def print_targets(rows) -> None:
    """The issue's targets per dataset and k, on the mean over seeds: auto against the better of features and
    finetune, finetune against fastai (accuracy and time), finetune against features."""
    def mean(name, k, method, field):
        sel = [r[field] for r in select(rows, name, k, method)]
        return statistics.mean(sel) * (100 if field == "accuracy" else 1) if sel else float("nan")

    print("\n| dataset | k | auto - best(features, finetune) | finetune - fastai | time finetune / fastai "
          "| finetune - features |")
    print("|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for k in sorted({r["k"] for r in rows if r["dataset"] == name}):
            acc = {m: mean(name, k, m, "accuracy") for m in ("features", "finetune", "auto", "fastai")}
            ratio = mean(name, k, "finetune", "seconds") / mean(name, k, "fastai", "seconds")
            print(f"| {name} | {k} | {acc['auto'] - max(acc['features'], acc['finetune']):+.1f} "
                  f"| {acc['finetune'] - acc['fastai']:+.1f} | {ratio:.2f} | {acc['finetune'] - acc['features']:+.1f} |")


if __name__ == "__main__":
    main()
