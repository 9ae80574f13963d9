"""The command line: thin, it parses arguments, calls the public API and prints (``--json`` for scripts)."""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="transferkit",
    help="Reuse pretrained networks on new tasks with little labeled data.\n\n"
    "Typical use: [bold]transferkit fit photos/ --out model[/] then [bold]transferkit evaluate model test/[/] "
    "and [bold]transferkit predict model image.jpg[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def _friendly(func):
    """Print transferkit's own errors as one readable message (exit code 2) instead of a traceback."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from .errors import TransferkitError

        try:
            return func(*args, **kwargs)
        except TransferkitError as exc:
            err.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except ValueError as exc:  # configuration checks (e.g. TrainConfig) say which field and its limit
            if "must be" not in str(exc):
                raise
            err.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@_friendly
def fit(
    data: Annotated[Path, typer.Argument(help="Folder with one subfolder per class, or a CSV with path,label columns.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the fitted model to.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Backbone: a zoo name (see `transferkit models`) or any timm name.")] = "tf_efficientnet_lite0",
    weights: Annotated[Optional[Path], typer.Option(help="Local weights file for the backbone (safetensors or a state dict).")] = None,
    strategy: Annotated[str, typer.Option(help="features: frozen backbone + logistic regression. finetune: probe-initialised head, top stages retrained. auto: decides between them and says why. scratch: same network, random init (the no-transfer baseline).")] = "features",
    seed: Annotated[int, typer.Option(help="Seed for the validation split, the head's cross-validation and training.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum training epochs (default: 12 finetune, 30 scratch; early stopping usually ends sooner).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate of the top layers (default: 1e-4 finetune, 2e-3 scratch).")] = None,
    unfreeze: Annotated[str, typer.Option(help="finetune: how many top stages to retrain, or 'all'. The head always trains.")] = "3",
    layer_decay: Annotated[float, typer.Option(help="finetune: each stage trains at this fraction of the learning rate of the stage above.")] = 0.7,
    l2sp: Annotated[float, typer.Option(help="finetune: pull weights towards their pretrained values (L2-SP); 0 is off, try 0.01.")] = 0.0,
    bn_statistics: Annotated[str, typer.Option(help="finetune: 'frozen' keeps BatchNorm's pretrained statistics (best on small data); 'train' re-estimates them in retrained stages.")] = "frozen",
    time_budget: Annotated[Optional[float], typer.Option(help="auto: seconds it may spend; over budget it keeps the frozen features.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a fit that was interrupted, from its last checkpoint.")] = False,
    devices: Annotated[int, typer.Option(help="Devices (GPUs, or CPU processes) to train on with DDP.")] = 1,
    num_nodes: Annotated[int, typer.Option(help="Machines to train on with DDP (launch with torchrun or SLURM).")] = 1,
    batch_size: Annotated[int, typer.Option(help="Images per batch for extraction and training.")] = 32,
    precision: Annotated[str, typer.Option(help="auto (bfloat16 where the hardware supports it), bf16 or fp32.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the fit's metrics.")] = False,
) -> None:
    """Fit a classifier on labeled images and save it as a model folder."""
    from . import ImageClassifier

    import shutil

    from .finetune.engine import is_primary_process

    workdir = out_dir.parent / f".{out_dir.name}.training"
    if workdir.exists() and not resume and is_primary_process():
        err.print(f"[yellow]An interrupted fit left checkpoints in {workdir}; starting afresh "
                  "(pass --resume to continue it instead).[/]")
        shutil.rmtree(workdir)
    clf = ImageClassifier(
        backbone=model, strategy=strategy, weights=str(weights) if weights else None, seed=seed, epochs=epochs,
        lr=lr, batch_size=batch_size, precision=precision, unfreeze=unfreeze, layer_decay=layer_decay, l2sp=l2sp, bn_statistics=bn_statistics,
        time_budget=time_budget, devices=devices, num_nodes=num_nodes, workdir=str(workdir), resume=resume,
        verbose=not as_json,
    )
    clf.fit(data)
    clf.save(out_dir)  # atomic: the model folder appears only now, complete (rank 0 only)
    if not is_primary_process():
        return
    shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        print(json.dumps({"model": str(out_dir), "strategy": clf.strategy_, "classes": clf.classes_.tolist(),
                          "skipped": [[str(p), w] for p, w in clf.skipped_], **clf.metrics_}, default=float))
        return
    m = clf.metrics_
    speed = f", {m['images_per_second']:.0f} images/s" if m.get("images_per_second") else ""
    out.print(f"Saved [bold]{out_dir}[/]: {len(clf.classes_)} classes, validation accuracy "
              f"[bold]{m['val_accuracy']:.3f}[/] (macro-F1 {m['val_macro_f1']:.3f}), {m['fit_seconds']:.1f} s{speed}.")
    out.print(f"Next: transferkit evaluate {out_dir} TEST_DATA   or   transferkit predict {out_dir} IMAGE...")


@app.command()
@_friendly
def evaluate(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder written by `transferkit fit`.")],
    data: Annotated[Path, typer.Argument(help="Labeled test data: class subfolders or a CSV with path,label.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (accuracy, macro_f1, per_class, confusion_matrix).")] = False,
    tta: Annotated[bool, typer.Option(help="Test-time augmentation: average each image with its mirror image.")] = False,
) -> None:
    """Measure a saved model on labeled data: accuracy, macro-F1, per-class report and confusion matrix."""
    from . import ImageClassifier
    from .evaluate import evaluate as run_evaluation

    clf = ImageClassifier.load(model_dir, verbose=not as_json, tta=tta)
    result = run_evaluation(clf, data)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    out.print(f"[bold]{model_dir}[/] on {data}: {result.n_images} images, accuracy [bold]{result.accuracy:.3f}[/], "
              f"macro-F1 {result.macro_f1:.3f}")
    table = Table("class", "precision", "recall", "F1", "support", title="Per class")
    for row in result.per_class:
        table.add_row(row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    out.print(table)
    cm = Table("true \\ predicted", *[c[:10] for c in result.classes], title="Confusion matrix")
    for c, row in zip(result.classes, result.confusion_matrix):
        cm.add_row(c, *[f"[bold]{v}[/]" if i == result.classes.index(c) else (str(v) if v else "·") for i, v in enumerate(row)])
    out.print(cm)
    _report_skipped(result.skipped)


@app.command()
@_friendly
def predict(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder written by `transferkit fit`.")],
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Images (or folders of images) to classify.")],
    top: Annotated[int, typer.Option(help="How many classes to show per image.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line: file, label, probability, top.")] = False,
    tta: Annotated[bool, typer.Option(help="Test-time augmentation: average each image with its mirror image.")] = False,
) -> None:
    """Classify images with a saved model."""
    from . import ImageClassifier
    from .data import read_images

    clf = ImageClassifier.load(model_dir, verbose=False, tta=tta)
    paths = [p for f in files for p in (read_images(f).paths if f.is_dir() else (f,))]
    proba, ok, skipped = clf.predict_files(paths)
    classes = clf.classes_.tolist()
    readable = [p for p, keep in zip(paths, ok) if keep]
    table = Table("file", "label", "probability", *(["top"] if top > 1 else []))
    for path, p in zip(readable, proba):
        order = p.argsort()[::-1][: max(top, 1)]
        best = {"file": str(path), "label": classes[order[0]], "probability": float(p[order[0]]),
                "top": [{"label": classes[i], "probability": float(p[i])} for i in order]}
        if as_json:
            print(json.dumps(best))
        else:
            rest = ", ".join(f"{classes[i]} {p[i]:.2f}" for i in order[1:])
            table.add_row(str(path), best["label"], f"{best['probability']:.3f}", *([rest] if top > 1 else []))
    if as_json:
        for path, why in skipped:
            print(json.dumps({"file": str(path), "error": why}))
    else:
        out.print(table)
        _report_skipped(skipped)
    if skipped:
        raise typer.Exit(1)


@app.command()
def models(
    pattern: Annotated[Optional[str], typer.Argument(help='Shell pattern to filter names, e.g. "*lite*".')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the zoo as a JSON list.")] = False,
) -> None:
    """List the model zoo: backbones whose pretrained weights ship in packages and work offline.

    Any timm model name (e.g. resnet50.a1_in1k) also works with --model when the Hugging Face hub is reachable.
    """
    from .zoo import DEFAULT_BACKBONE, list_models

    specs = list_models(pattern)
    if as_json:
        print(json.dumps([{"name": s.name, "aliases": list(s.aliases), "family": s.family, "source": s.source,
                           "package": s.package, "feature_dim": s.feature_dim, "license": s.license,
                           "preprocessing": s.preprocessing.to_dict(), "default": s.name == DEFAULT_BACKBONE}
                          for s in specs]))
        return
    from rich.table import Column

    table = Table(Column("name", no_wrap=True), "aliases", "input", "normalise", "dim", "weights",
                  title="transferkit model zoo (offline)", caption="* the default. Any timm name also works online: --model resnet50.a1_in1k")
    for s in specs:
        pre = s.preprocessing
        norm = "0.5/0.5" if pre.mean == (0.5, 0.5, 0.5) else "ImageNet"
        name = f"[bold]{s.name}[/]*" if s.name == DEFAULT_BACKBONE else s.name
        table.add_row(name, ", ".join(s.aliases), f"{pre.input_size} {pre.interpolation}", norm,
                      str(s.feature_dim), "offline" if s.offline else s.source)
    out.print(table)


def _report_skipped(skipped) -> None:
    if skipped:
        err.print(f"[yellow]Skipped {len(skipped)} unreadable file(s):[/]")
        for path, why in skipped[:20]:
            err.print(f"  {path}: {why}", highlight=False)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
