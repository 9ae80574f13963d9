"""The main job, offline, on the bundled Open Clip Art example: transfer learning next to training from scratch.

    make demo

Fits what ``transferkit fit`` does by default (``auto``: here the zoo's three ImageNet backbones side by side under a
logistic-regression head, chosen and explained), one backbone (EfficientNet-Lite0, weights shipped in a package) as a
frozen feature extractor, and the same network trained from random initialisation on the same 120 images, and prints
the accuracies on the 120 held-out test images next to what each fit estimated and what each model reads from its
own confidence on those images without their labels.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from transferkit import Auto, Features, ImageClassifier, Scratch
from transferkit.evaluate import evaluate
from transferkit.finetune import SCRATCH, NetworkTuner

HERE = Path(__file__).parent / "clipart"
OUT = Path("demo-output")


def main() -> None:
    console = Console()
    console.rule("transferkit demo: 6 classes of clip art, 20 labeled images per class")
    rows = []
    # 15 epochs keep the baseline to about two minutes on 2 cores; early stopping usually ends it sooner.
    for strategy, what in ((Auto(), "the default: measures, chooses and says why"),
                           (Features(), "one pretrained backbone + logistic regression"),
                           (Scratch(tuner=NetworkTuner(**{**SCRATCH, "epochs": 15})),
                            "the same network from random init")):
        console.print(f"\n[bold]{strategy.name}[/]: {what}")
        start = time.perf_counter()
        model = ImageClassifier(strategy=strategy).fit(HERE / "train")
        seconds = time.perf_counter() - start
        model.save(OUT / strategy.name)
        result = evaluate(model, HERE / "test")
        at_fit = model.report_.estimate
        unlabeled = model.estimate_accuracy(HERE / "test")  # what `predict` reads, without the test labels
        rows.append((strategy.name, what, result.accuracy, at_fit.value if at_fit else None,
                     unlabeled["accuracy"] if unlabeled else None, result.macro_f1, seconds))
    table = Table("strategy", "what", "test accuracy", "macro-F1", "fit time", title="Held-out test set (120 images)")
    for strategy, what, acc, _, _, f1, seconds in rows:
        table.add_row(strategy, what, f"{acc:.1%}", f"{f1:.3f}", f"{seconds:.0f} s")
    console.print(table)
    trust = Table("strategy", "estimated at fit", "read without labels", "test accuracy",
                  title="The numbers a user sees before the test labels")
    for strategy, _, acc, at_fit, unlabeled, _, _ in rows:
        trust.add_row(strategy, *(f"{v:.1%}" if v is not None else "-" for v in (at_fit, unlabeled, acc)))
    console.print(trust)
    console.print("Estimated at fit: from the training labels (cross-validation; scratch: its validation split). Read "
                  "without labels: the model's confidence on the 120 test images, as `predict` reports it (scratch "
                  "records no temperature to read it with).")
    gain = rows[0][2] - rows[2][2]
    console.print(f"Transfer learning is [bold]{gain * 100:+.0f} points[/] over training from scratch on the same images.")
    console.print(f"Models saved under {OUT}/. Try: .venv/bin/transferkit predict {OUT}/auto {HERE}/test/birds/*.png")


if __name__ == "__main__":
    main()
