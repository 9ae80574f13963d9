"""Text: transferkit's strategies against SetFit on the same MiniLM body, over labels per class and seeds.

    .venv/bin/python benchmarks/text_vs_setfit.py                       # everything (hours on 2 cores)
    .venv/bin/python benchmarks/text_vs_setfit.py --datasets bbc --ks 8 --seeds 3 --methods auto,setfit

For each dataset, k (texts per class, or ``all``) and seed it fits on k texts per class and scores on a fixed,
balanced test set (200 per class, never trained on). Wall time is the fit alone, from a cold feature cache (each
fit gets an empty one); test texts are embedded afterwards with a shared cache, outside the timed part.

Methods: ``features``, ``finetune``, ``auto``, ``scratch`` (TF-IDF) from transferkit; ``setfit``: SetFit 1.2 with its
defaults (oversampled pairs, one epoch, logistic head) on the packaged all-MiniLM-L6-v2 folder. SetFit is a
benchmark-only dependency (``make bench-deps``). ``--setfit-ks`` limits where SetFit runs: its pair count grows with
the square of k (BBC at k = 16 makes about 5,000 pairs, half an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from text_datasets import bbc_news, spam_assassin, split  # noqa: E402

WORK = Path(tempfile.gettempdir()) / "transferkit-bench"
SHARED_CACHE = WORK / "text-cache"
FINETUNE_MAX_K = 64  # contrastive tuning on every text of a large set takes hours on a CPU; not measured above this


def run_transferkit(strategy: str, train, train_labels, test, test_labels, seed: int) -> dict:
    from transferkit import TextClassifier

    with tempfile.TemporaryDirectory() as cold:
        start = time.perf_counter()
        clf = TextClassifier(strategy=strategy, seed=seed, cache_dir=cold, verbose=False).fit(train, train_labels)
        seconds = time.perf_counter() - start
    clf.cache_dir = str(SHARED_CACHE)  # the test set is embedded outside the timed fit
    accuracy = clf.score(test, test_labels)
    return {"accuracy": accuracy, "seconds": seconds, "choice": clf.metrics_.get("auto_choice", strategy)}


def run_setfit(train, train_labels, test, test_labels, seed: int) -> dict:
    import logging

    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from transferkit.zoo import resolve_text_encoder
    from transferkit.zoo._text import encoder_folder

    logging.getLogger("setfit").setLevel(logging.ERROR)
    folder = encoder_folder(resolve_text_encoder("all-MiniLM-L6-v2"))
    classes = sorted(set(train_labels))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SetFitModel.from_pretrained(str(folder), labels=classes)
        args = TrainingArguments(batch_size=16, num_epochs=1, seed=seed, show_progress_bar=False,
                                 report_to="none", save_strategy="no", logging_strategy="no")
        data = Dataset.from_dict({"text": list(train), "label": [classes.index(c) for c in train_labels]})
        trainer = Trainer(model=model, args=args, train_dataset=data)
        trainer.train()
    seconds = time.perf_counter() - start
    predictions = model.predict(list(test), batch_size=64, show_progress_bar=False)
    predicted = [classes[int(p)] if not isinstance(p, str) else p for p in predictions]
    accuracy = sum(p == t for p, t in zip(predicted, test_labels)) / len(test_labels)
    return {"accuracy": accuracy, "seconds": seconds, "choice": "setfit"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="bbc,spam")
    parser.add_argument("--ks", default="8,16,64,all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--methods", default="scratch,features,finetune,auto,setfit")
    parser.add_argument("--setfit-ks", default="8", help="ks at which SetFit runs (comma list, or 'all' for every k)")
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--jsonl", type=Path, default=None, help="Append each result as one JSON line here too.")
    parser.add_argument("--table-from", type=Path, default=None,
                        help="Print the table of results saved with --jsonl (several runs) and exit.")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.table_from:
        results: dict[tuple, list[dict]] = {}
        for line in args.table_from.read_text().splitlines():
            row = json.loads(line)
            results.setdefault((row["dataset"], row["k"], row["method"]), []).append(row)
        order = {k: i for i, k in enumerate(args.ks.split(","))}
        results = dict(sorted(results.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))))
        print_table(results, methods)
        return
    setfit_ks = None if args.setfit_ks == "all" else set(args.setfit_ks.split(","))
    results: dict[tuple, list[dict]] = {}
    for name in args.datasets.split(","):
        texts, labels = bbc_news() if name == "bbc" else spam_assassin(WORK)
        for k_text in args.ks.split(","):
            k = None if k_text == "all" else int(k_text)
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                train, train_labels, test, test_labels = split(texts, labels, k, seed, args.test_per_class)
                for method in methods:
                    if method == "setfit" and setfit_ks is not None and k_text not in setfit_ks:
                        continue
                    if method == "finetune" and (k is None or k > FINETUNE_MAX_K):
                        continue
                    if method == "setfit":
                        row = run_setfit(train, train_labels, test, test_labels, seed)
                    else:
                        row = run_transferkit(method, train, train_labels, test, test_labels, seed)
                    row |= {"dataset": name, "k": k_text, "seed": seed, "method": method, "n_train": len(train)}
                    print(json.dumps(row), flush=True)
                    if args.jsonl:
                        with open(args.jsonl, "a") as fh:
                            fh.write(json.dumps(row) + "\n")
                    results.setdefault((name, k_text, method), []).append(row)
    print_table(results, methods)


def print_table(results: dict[tuple, list[dict]], methods: list[str]) -> None:
    print("\n| dataset | k/class | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for (name, k) in dict.fromkeys((d, k) for d, k, _ in results):
        cells = []
        for m in methods:
            rows = results.get((name, k, m))
            if not rows:
                cells.append("-")
                continue
            acc = [100 * r["accuracy"] for r in rows]
            sec = statistics.mean(r["seconds"] for r in rows)
            sd = f" ± {statistics.stdev(acc):.1f}" if len(acc) > 1 else ""
            picks = ""
            if m == "auto":
                picks = " (" + "/".join(r["choice"][:2] for r in rows) + ")"
            cells.append(f"{statistics.mean(acc):.1f}{sd} ({sec:.0f} s){picks}")
        print(f"| {name} | {k} | " + " | ".join(cells) + " |")
    print("\nAccuracy % on the fixed test set (mean ± sd over seeds), mean fit seconds; auto's picks per seed: "
          "fe = features, fi = finetune, sc = scratch.")


if __name__ == "__main__":
    main()
