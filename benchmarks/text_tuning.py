"""How to tune a sentence encoder on a few labels: the options behind ``ContrastiveTuner``, on seeds the few-shot suite
does not use.

    python benchmarks/text_tuning.py                                   # questions and spam, k = 5, 10, seeds 5-7
    python benchmarks/text_tuning.py --configs frozen,pairs:20,batch:10,batch:20 --tasks bbc --ks 5

Each config tunes a fresh copy of the packaged all-MiniLM-L6-v2 on the suite's sample (every label, no split), fits
the default head on the tuned embeddings and scores the fixed test set. ``pairs:R`` is SetFit's sampled pairs,
``batch:R`` every pair inside class-balanced batches; ``R`` is how many times each text is embedded (the cost),
``frozen`` no tuning. Prints test accuracy and tuning seconds per task, k and config, with the machine, and writes
them to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402
from fewshot import machine  # noqa: E402


def score(task, k: int, seed: int, config: str, base) -> tuple[float, float]:
    from transferkit.features import extract
    from transferkit.finetune.contrastive import train_contrastive
    from transferkit.finetune.tuners import ContrastiveTuner
    from transferkit.heads import fit_head

    items, labels = task.sample(k, seed)
    classes = task.classes
    y = np.array([classes.index(c) for c in labels])
    encoder = copy.deepcopy(base)
    encoder.tuned, encoder._digest = True, None
    loss, _, rounds = config.partition(":")
    start = time.perf_counter()
    if loss != "frozen":
        train_contrastive(encoder, list(items), y, ContrastiveTuner(loss=loss, rounds=int(rounds)), seed=seed,
                          progress=False)
    seconds = time.perf_counter() - start
    x = extract(encoder, list(items), use_cache=False, progress=False).features
    test = extract(encoder, list(task.test_items), use_cache=False, progress=False).features
    truth = np.array([classes.index(c) for c in task.test_labels])
    return float((fit_head(x, y, power="auto").predict_proba(test).argmax(1) == truth).mean()), seconds


def main() -> None:
    from transferkit.featurizers import text_featurizer
    from transferkit.zoo import resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="questions,spam")
    parser.add_argument("--ks", default="5,10")
    parser.add_argument("--seeds", default="5-7", help="first-last (the suite uses 0-4)")
    parser.add_argument("--configs", default="frozen,pairs:20,batch:20")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "text-tuning.json")
    args = parser.parse_args()
    seeds = suite_data.seed_range(args.seeds)
    base = text_featurizer(resolve("all-MiniLM-L6-v2", "text"))
    rows = []
    for name in args.tasks.split(","):
        task = suite_data.load_task(name)
        for k in map(int, args.ks.split(",")):
            for seed in seeds:
                for config in args.configs.split(","):
                    accuracy, seconds = score(task, k, seed, config, base)
                    rows.append({"task": name, "k": k, "seed": seed, "config": config, "accuracy": accuracy,
                                 "seconds": seconds})
                    print(json.dumps(rows[-1]), flush=True)
    print(f"\nTest accuracy % (tuning seconds), mean over seeds {args.seeds}; machine: {machine()}\n")
    configs = args.configs.split(",")
    print("| task | k | " + " | ".join(configs) + " |")
    print("|---|---|" + "---|" * len(configs))
    for name in args.tasks.split(","):
        for k in map(int, args.ks.split(",")):
            cells = []
            for config in configs:
                mine = [r for r in rows if (r["task"], r["k"], r["config"]) == (name, k, config)]
                cells.append(f"{100 * np.mean([r['accuracy'] for r in mine]):.1f} "
                             f"({np.mean([r['seconds'] for r in mine]):.1f} s)")
            print(f"| {name} | {k} | " + " | ".join(cells) + " |")
    args.out.write_text(json.dumps({"machine": machine(), "seeds": args.seeds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
