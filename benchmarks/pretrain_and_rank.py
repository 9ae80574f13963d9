"""Train-then-reuse and model selection, measured.

    .venv/bin/python benchmarks/pretrain_and_rank.py                 # both parts (about an hour on 2 cores)
    .venv/bin/python benchmarks/pretrain_and_rank.py --parts pretrain --seeds 3

Part ``pretrain``: approach (1) of transfer learning. EfficientNet-Lite0's architecture is trained from scratch on
five Fashion-MNIST classes (t-shirt, trouser, pullover, dress, coat; ``--source-per-class`` images each, 64 px) and
registered in a temporary local zoo; then the other five classes (sandal, shirt, sneaker, bag, boot) are learned
from k = 5 labels per class with frozen features of that network, against frozen ImageNet features and against
training from scratch on the 25 images. Test: 100 images per class from Fashion-MNIST's test split.

Part ``rank``: ``transferkit rank``'s scores (LogME, CV kNN) for every zoo image backbone and the locally pretrained
one, against the accuracy each reaches when fine-tuned (``strategy="finetune"``), on the bundled Open Clip Art set
and Fashion-MNIST (20 labels per class). Reports Kendall's tau between scores and accuracies, the time ranking
took (cold feature cache) against the time fine-tuning every candidate took, and how far the first-ranked
backbone is from the best one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import image_datasets as D  # noqa: E402

WORK = Path(tempfile.gettempdir()) / "transferkit-bench"
SOURCE = ["tshirt", "trouser", "pullover", "dress", "coat"]
TARGET = ["sandal", "shirt", "sneaker", "bag", "boot"]
LOCAL_NAME = "fashion5-scratch"


def ensure_pretrained(per_class: int, epochs: int, how: str = "scratch") -> dict:
    from transferkit.pretrain import pretrain
    from transferkit.zoo import local_zoo_dir

    entry = local_zoo_dir() / LOCAL_NAME
    if (entry / "transferkit.json").is_file():
        return json.loads((entry / "transferkit.json").read_text())["trained_on"] | {"seconds": None}
    source = D.fashion_classes(WORK, SOURCE, "train", per_class)
    start = time.perf_counter()
    clf, _ = pretrain(source, LOCAL_NAME, from_scratch=how == "scratch", epochs=epochs, input_size=64,
                      batch_size=64, lr=None if how == "scratch" else 1e-3, verbose=True)
    info = {"seconds": time.perf_counter() - start, "val_accuracy": clf.metrics_["val_accuracy"],
            "n_images": per_class * len(SOURCE), "epochs_run": clf.metrics_.get("epochs_run")}
    print(json.dumps({"pretrained": info}), flush=True)
    return info


def part_pretrain(args) -> None:
    from transferkit import Features, ImageClassifier, Scratch

    info = ensure_pretrained(args.source_per_class, args.pretrain_epochs, args.pretrain_how)
    pool = D._pool(D.fashion_classes(WORK, TARGET, "train", 300))
    test = D.fashion_classes(WORK, TARGET, "t10k", 100)
    methods = {
        f"features on {LOCAL_NAME} (pretrained here)": dict(backbone=LOCAL_NAME, strategy=Features()),
        "features on ImageNet Lite0": dict(backbone="tf_efficientnet_lite0", strategy=Features()),
        "scratch (Lite0 architecture, 64 px)": dict(backbone="tf_efficientnet_lite0", strategy=Scratch(),
                                                    input_size=64),
    }
    rows: dict[str, list] = {m: [] for m in methods}
    for seed in range(args.seeds):
        paths, labels = D.sample(pool, args.k, seed)
        for name, params in methods.items():
            with tempfile.TemporaryDirectory() as cache:
                clf = ImageClassifier(seed=seed, cache_dir=cache, verbose=False, **params)
                start = time.perf_counter()
                clf.fit(paths, labels)
                seconds = time.perf_counter() - start
                accuracy = clf.score(test)
            rows[name].append((accuracy, seconds))
            print(json.dumps({"part": "pretrain", "method": name, "seed": seed, "accuracy": accuracy,
                              "seconds": seconds}), flush=True)
    print(f"\nPretrained {LOCAL_NAME} ({args.pretrain_how}) on {info.get('n_images')} images of {', '.join(SOURCE)} "
          f"(64 px; source validation accuracy {info.get('val_accuracy', float('nan')):.3f}"
          + (f", {info['seconds']:.0f} s" if info.get("seconds") else "") + ").")
    print(f"\n| target: {', '.join(TARGET)}, k = {args.k} per class | accuracy % | fit s |")
    print("|---|---|---|")
    for name, values in rows.items():
        acc = [100 * a for a, _ in values]
        sd = f" ± {statistics.stdev(acc):.1f}" if len(acc) > 1 else ""
        print(f"| {name} | {statistics.mean(acc):.1f}{sd} | {statistics.mean(s for _, s in values):.1f} |")


def part_rank(args) -> None:
    from scipy.stats import kendalltau

    from transferkit import FineTune, ImageClassifier
    from transferkit.rank import rank_models
    from transferkit.zoo import list_models

    ensure_pretrained(args.source_per_class, args.pretrain_epochs, args.pretrain_how)
    candidates = [m.name for m in list_models(modality="image") if m.offline]
    fashion_pool = D._pool(D.fashion_classes(WORK, D.FASHION_CLASSES, "train", 300))
    fashion_paths, fashion_labels = D.sample(fashion_pool, 20, 0)
    fashion_train = WORK / "rank-fashion-train.csv"
    fashion_train.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in zip(fashion_paths, fashion_labels)))
    datasets = {"Open Clip Art (bundled, 20/class)": (D.ROOT / "examples/clipart/train",
                                                     D.ROOT / "examples/clipart/test"),
                "Fashion-MNIST (20/class)": (fashion_train, D.fashion_classes(WORK, D.FASHION_CLASSES, "t10k", 100))}
    for title, (train, test) in datasets.items():
        with tempfile.TemporaryDirectory() as cold:
            start = time.perf_counter()
            ranking = rank_models(train, candidates, modality="image", cache_dir=cold, progress=False)
            rank_seconds = time.perf_counter() - start
        finetuned = {}
        finetune_seconds = 0.0
        for name in candidates:
            with tempfile.TemporaryDirectory() as cache:
                clf = ImageClassifier(backbone=name, strategy=FineTune(), cache_dir=cache, verbose=False)
                t0 = time.perf_counter()
                clf.fit(train)
                finetune_seconds += time.perf_counter() - t0
                finetuned[name] = clf.score(test)
            print(json.dumps({"part": "rank", "dataset": title, "model": name, "finetuned": finetuned[name]}),
                  flush=True)
        names = [r.model for r in ranking]
        tau_logme = kendalltau([r.logme for r in ranking], [finetuned[n] for n in names]).statistic
        tau_knn = kendalltau([r.knn_accuracy for r in ranking], [finetuned[n] for n in names]).statistic
        best = max(finetuned.values())
        print(f"\n{title}")
        print("| rank | model | LogME | kNN acc (CV) | rank s | fine-tuned acc % |")
        print("|---|---|---|---|---|---|")
        for i, r in enumerate(ranking, 1):
            print(f"| {i} | {r.model} | {r.logme:.3f} | {r.knn_accuracy:.3f} | {r.seconds:.1f} | "
                  f"{100 * finetuned[r.model]:.1f} |")
        print(f"Kendall's tau (LogME vs fine-tuned accuracy) {tau_logme:.2f}; (kNN vs fine-tuned) {tau_knn:.2f}. "
              f"Ranking took {rank_seconds:.0f} s, fine-tuning every candidate {finetune_seconds:.0f} s "
              f"({100 * rank_seconds / finetune_seconds:.1f}%). First-ranked {ranking[0].model}: "
              f"{100 * finetuned[ranking[0].model]:.1f}% vs best {100 * best:.1f}% "
              f"({100 * (best - finetuned[ranking[0].model]):.1f} points).", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="pretrain,rank")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--source-per-class", type=int, default=1200)
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--pretrain-how", choices=("scratch", "finetune"), default="scratch",
                        help="scratch: random init; finetune: every layer of ImageNet Lite0 retrained on the source")
    args = parser.parse_args()
    global LOCAL_NAME
    LOCAL_NAME = f"fashion5-{args.pretrain_how}"
    os.environ.setdefault("TRANSFERKIT_MODELS", str(WORK / "local-zoo"))
    for part in args.parts.split(","):
        {"pretrain": part_pretrain, "rank": part_rank}[part](args)


if __name__ == "__main__":
    main()
