"""Could one backbone without unlabeled data match the four side by side (#23)? Pooled features of EfficientNet-Lite0's
intermediate stages, concatenated with its final features, under transferkit's own head (power 0.5, L2, one
logistic regression per block, logits averaged), against the default's test accuracy in the results files.

Cells: the few-shot suite's image tasks (``results/fewshot.jsonl``'s ``auto`` rows: clip art, Fashion-MNIST, MNIST,
Oxygen icons; k = 5, 10, 20) and the unlabeled suite's image cells without a pool (``results/unlabeled.jsonl``'s
``default`` rows: oxygen, oxygen->tango, tango->oxygen; k = 5, 10); seeds 0-4, the same samples as those runs.
Representations: ``final`` (what transferkit's one backbone uses; it reproduces the files' one-backbone rows),
``s3+s4+final``, ``s2..4+final`` (stages as blocks), ``s2..4+final one block``.

    python benchmarks/multistage.py      # writes results/multistage-<cpu>.md; features cached in work/multistage
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import suite_data
import unlabeled
from codebase_metrics import machine, write_results

HERE = Path(__file__).resolve().parent
CACHE = suite_data.WORK / "multistage" / "features.npz"
DIMS = (16, 24, 40, 112, 320)  # Lite0's five stages (timm forward_intermediates)
FINAL = 1280
KINDS = {"final": ((), False), "s3+s4+final": ((3, 4), True), "s2..4+final": ((2, 3, 4), True),
         "s2..4+final one block": ((2, 3, 4), False)}


class Stages:
    """Each image's mean-pooled stage activations and final pooled features, cached by path."""

    def __init__(self) -> None:
        import torch

        from transferkit.zoo import create_backbone, resolve

        spec = resolve("tf_efficientnet_lite0")
        self.torch, self.net = torch, create_backbone(spec, num_classes=0).eval()
        self.transform = spec.preprocessing.eval_transform()
        self.store = dict(np.load(CACHE)) if CACHE.exists() else {}

    def __call__(self, paths: list) -> np.ndarray:
        from transferkit.data.images import load_image

        todo = [p for p in dict.fromkeys(map(str, paths)) if p not in self.store]
        for i in range(0, len(todo), 64):
            chunk = todo[i:i + 64]
            x = self.torch.stack([self.transform(load_image(p)) for p in chunk])
            with self.torch.inference_mode():
                final, stages = self.net.forward_intermediates(x)
                rows = self.torch.cat([s.mean((2, 3)) for s in stages]
                                      + [self.net.forward_head(final, pre_logits=True)], 1).numpy()
            self.store.update(zip(chunk, rows))
        if todo:
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            np.savez(CACHE, **self.store)
        return np.stack([self.store[str(p)][:sum(DIMS) + FINAL] for p in paths])


def representation(rows: np.ndarray, kind: str) -> tuple[np.ndarray, tuple[int, ...]]:
    stages, as_blocks = KINDS[kind]
    bounds = np.cumsum((0, *DIMS))
    parts = [rows[:, bounds[s]:bounds[s + 1]] for s in stages] + [rows[:, bounds[-1]:]]
    widths = tuple(p.shape[1] for p in parts)
    return np.hstack(parts), (widths if as_blocks and len(parts) > 1 else ())


def accuracy(features: Stages, kind: str, items, labels, test_items, test_labels, seed: int) -> float:
    from transferkit.heads import fit_head

    classes = sorted(set(labels))
    x, blocks = representation(features(items), kind)
    head = fit_head(x, np.searchsorted(classes, labels), power="auto", blocks=blocks, seed=seed)
    predicted = np.array(classes)[head.predict_proba(representation(features(test_items), kind)[0]).argmax(1)]
    return float((predicted == np.asarray(test_labels)).mean())


def cells():
    """(suite, cell, k, seed, items, labels, test items, test labels, the default's accuracy)."""
    few = [json.loads(line) for line in (HERE / "results" / "fewshot.jsonl").read_text().splitlines() if line]
    auto = {(r["task"], r["k"], r["seed"]): r["accuracy"] for r in few if r["method"] == "auto"}
    for name in ("clipart", "fashion", "mnist", "icons"):
        task = suite_data.load_task(name)
        for k in (5, 10, 20):
            for seed in range(5):
                yield ("few-shot", name, k, seed, *task.sample(k, seed), task.test_items, task.test_labels,
                       auto[(name, k, seed)])
    default = {(r["cell"], r["k"], r["seed"]): r["accuracy"] for r in unlabeled._rows() if r["method"] == "default"}
    for name in ("oxygen", "oxygen->tango", "tango->oxygen"):
        data = unlabeled.cell(name)
        for k in (5, 10):
            for seed in range(5):
                yield ("shift", name, k, seed, *unlabeled.sample(data["labels"], k, seed, name), *data["test"],
                       default[(name, k, seed)])


def main() -> None:
    features, diffs = Stages(), {}
    for suite, name, k, seed, items, labels, test_items, test_labels, default in cells():
        for kind in KINDS:
            acc = accuracy(features, kind, items, labels, test_items, test_labels, seed)
            diffs.setdefault((suite, name, k), {}).setdefault(kind, []).append(100 * (acc - default))
        print(suite, name, k, seed, flush=True)
    lines = ["| suite | cell | k | " + " | ".join(KINDS) + " |", "|---|---|---|" + "---|" * len(KINDS)]
    for (suite, name, k), by_kind in diffs.items():
        lines.append(f"| {suite} | {name} | {k} | " + " | ".join(f"{np.mean(v):+.1f}" for v in by_kind.values()) + " |")
    lines.append("| **mean** | | | " + " | ".join(f"**{np.mean([np.mean(d[kind]) for d in diffs.values()]):+.1f}**"
                                           for kind in KINDS) + " |")
    cpu = machine()
    text = ("# One backbone's stages against the four backbones side by side (no unlabeled data)\n\n"
            "Test accuracy minus the default's (points, mean over seeds 0-4; the default's rows from "
            "results/fewshot.jsonl and results/unlabeled.jsonl). Machine: " + json.dumps(cpu) + "\n\n"
            + "\n".join(lines) + "\n")
    write_results("multistage", text, cpu)


if __name__ == "__main__":
    sys.exit(main())
