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
    data: Annotated[Path, typer.Argument(help="Images: a folder with one subfolder per class, or a CSV with path,label columns. Texts: a CSV / TSV / JSONL with text and label columns, or a folder with one subfolder of .txt files per class. Which one is detected and printed.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the fitted model to.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Images: a zoo backbone (see `transferkit models`) or any timm name; default tf_efficientnet_lite0. Texts: a zoo encoder, a Hugging Face name, a model folder or a word-vector file; default all-MiniLM-L6-v2.")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Images: local weights file for the backbone (safetensors or a state dict).")] = None,
    strategy: Annotated[str, typer.Option(help="auto: measures, chooses and says why. features: frozen backbone/encoder + logistic regression. finetune: images: probe-initialised head, top stages retrained; texts: contrastive tuning on pairs (SetFit's recipe). scratch: no transfer (images: same network, random init; texts: TF-IDF).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for the validation split, the head's cross-validation and training.")] = 0,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of each class held out for validation (default: 0.2; images: 0.1 once every class has 50 labels).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum training epochs (default: images 12 finetune, 30 scratch; texts 1 pass over the pairs).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default: images 3e-4 finetune (lower stages layer-decayed), 2e-3 scratch; texts 2e-5).")] = None,
    unfreeze: Annotated[str, typer.Option(help="Images, finetune: how many top stages to retrain, or 'all'. The head always trains.")] = "3",
    layer_decay: Annotated[float, typer.Option(help="Images, finetune: each stage trains at this fraction of the learning rate of the stage above.")] = 0.7,
    l2sp: Annotated[float, typer.Option(help="Images, finetune: pull weights towards their pretrained values (L2-SP); 0 is off, try 0.01.")] = 0.0,
    bn_statistics: Annotated[str, typer.Option(help="Images, finetune: 'frozen' keeps BatchNorm's pretrained statistics (best on small data); 'train' re-estimates them in retrained stages.")] = "frozen",
    text_column: Annotated[Optional[str], typer.Option(help="Texts: the CSV / JSONL column holding the text (found by itself when named text, sentence, content, ...).")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Texts: the column holding the label (found by itself when named label, class, category, ...).")] = None,
    long_text: Annotated[str, typer.Option(help="Texts longer than the encoder's window (256 tokens for MiniLM): 'truncate' keeps the beginning, 'chunk' averages every window.")] = "truncate",
    time_budget: Annotated[Optional[float], typer.Option(help="auto: seconds it may spend; over budget it keeps the frozen features.")] = None,
    resume: Annotated[bool, typer.Option(help="Images: continue a fit that was interrupted, from its last checkpoint.")] = False,
    devices: Annotated[int, typer.Option(help="Images: devices (GPUs, or CPU processes) to train on with DDP.")] = 1,
    num_nodes: Annotated[int, typer.Option(help="Images: machines to train on with DDP (launch with torchrun or SLURM).")] = 1,
    batch_size: Annotated[int, typer.Option(help="Images or texts per batch for extraction and training.")] = 32,
    precision: Annotated[str, typer.Option(help="auto (bfloat16 where the hardware supports it), bf16 or fp32.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the fit's metrics.")] = False,
) -> None:
    """Fit a classifier on labeled images or texts and save it as a model folder."""
    from .data import is_text_source

    if is_text_source(data):
        clf = _fit_text(data, model, strategy, seed, val_fraction, epochs, lr, text_column, label_column, long_text,
                        time_budget, batch_size, precision, as_json)
        clf.save(out_dir)
        _print_fit(clf, out_dir, as_json, "TEXT...")
        return
    from . import ImageClassifier

    import shutil

    from .finetune.engine import is_primary_process

    workdir = out_dir.parent / f".{out_dir.name}.training"
    if workdir.exists() and not resume and is_primary_process():
        err.print(f"[yellow]An interrupted fit left checkpoints in {workdir}; starting afresh "
                  "(pass --resume to continue it instead).[/]")
        shutil.rmtree(workdir)
    if not as_json:
        err.print(f"Image data: {data}", highlight=False)
    clf = ImageClassifier(
        backbone=model or "tf_efficientnet_lite0", strategy=strategy, weights=str(weights) if weights else None,
        seed=seed, val_fraction=val_fraction, epochs=epochs, lr=lr, batch_size=batch_size, precision=precision,
        unfreeze=unfreeze, layer_decay=layer_decay, l2sp=l2sp, bn_statistics=bn_statistics, time_budget=time_budget, devices=devices,
        num_nodes=num_nodes, workdir=str(workdir), resume=resume, verbose=not as_json,
    )
    clf.fit(data)
    clf.save(out_dir)  # atomic: the model folder appears only now, complete (rank 0 only)
    if not is_primary_process():
        return
    shutil.rmtree(workdir, ignore_errors=True)
    _print_fit(clf, out_dir, as_json, "IMAGE...")


def _fit_text(data, model, strategy, seed, val_fraction, epochs, lr, text_column, label_column, long_text,
              time_budget, batch_size, precision, as_json):
    from . import TextClassifier

    clf = TextClassifier(
        encoder=model or "all-MiniLM-L6-v2", strategy=strategy, seed=seed, val_fraction=val_fraction or 0.2,
        epochs=epochs or 1, lr=lr or 2e-5, text_column=text_column, label_column=label_column, long_text=long_text, time_budget=time_budget,
        batch_size=batch_size, precision=precision, verbose=not as_json,
    )
    return clf.fit(data)


def _print_fit(clf, out_dir: Path, as_json: bool, what: str) -> None:
    if as_json:
        print(json.dumps({"model": str(out_dir), "strategy": clf.strategy_, "classes": clf.classes_.tolist(),
                          "reason": clf.reason_, "skipped": [[str(p), w] for p, w in getattr(clf, "skipped_", [])],
                          **clf.metrics_}, default=float))
        return
    m = clf.metrics_
    rate = m.get("images_per_second") or m.get("texts_per_second")
    speed = f", {rate:.0f} {'images' if 'images_per_second' in m else 'texts'}/s" if rate else ""
    out.print(f"Saved [bold]{out_dir}[/]: {len(clf.classes_)} classes, validation accuracy "
              f"[bold]{m['val_accuracy']:.3f}[/] (macro-F1 {m['val_macro_f1']:.3f}), {m['fit_seconds']:.1f} s{speed}.")
    out.print(f"Next: transferkit evaluate {out_dir} TEST_DATA   or   transferkit predict {out_dir} {what}")


@app.command()
@_friendly
def evaluate(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder written by `transferkit fit`.")],
    data: Annotated[Path, typer.Argument(help="Labeled test data in the form the model was fit on (class subfolders, a CSV, a JSONL).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (accuracy, macro_f1, per_class, confusion_matrix).")] = False,
    tta: Annotated[bool, typer.Option(help="Test-time augmentation: average each image with its mirror image.")] = False,
    report: Annotated[Optional[Path], typer.Option(help="Also write a self-contained HTML report here: metrics, confusion matrix, per-class precision/recall, calibration (reliability diagram, ECE) and the most confidently wrong examples.")] = None,
) -> None:
    """Measure a saved model on labeled data: accuracy, macro-F1, per-class report, confusion matrix, calibration."""
    from .estimators import load_model
    from .evaluate import evaluate as run_evaluation

    clf = load_model(model_dir, verbose=not as_json, **({"tta": tta} if tta else {}))
    result = run_evaluation(clf, data)
    if report is not None:
        from .report import evaluation_report, write_report

        write_report(report, evaluation_report(result, str(model_dir), str(data), {"reason": clf.reason_}))
        if not as_json:
            err.print(f"Report written to {report}", highlight=False)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    out.print(f"[bold]{model_dir}[/] on {data}: {result.n_examples} examples, accuracy [bold]{result.accuracy:.3f}[/], "
              f"macro-F1 {result.macro_f1:.3f}, expected calibration error {result.ece:.3f}")
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
    inputs: Annotated[Optional[list[str]], typer.Argument(metavar="INPUT...", help="Images: files or folders of images. Texts: the texts themselves, or files (.txt: one text per line; .csv/.jsonl: the text column); '-' or nothing reads one text per line from standard input.")] = None,
    top: Annotated[int, typer.Option(help="How many classes to show per input.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line: input, label, probability, top.")] = False,
    tta: Annotated[bool, typer.Option(help="Images: test-time augmentation, averaging each image with its mirror image.")] = False,
) -> None:
    """Classify images or texts with a saved model."""
    from .estimators import TextClassifier, load_model

    clf = load_model(model_dir, verbose=False, **({"tta": tta} if tta else {}))
    if isinstance(clf, TextClassifier):
        names, items = _text_inputs(clf, inputs or ["-"])
        proba, skipped = clf.predict_proba(items), []
        key = "text"
    else:
        from .data import read_images

        if not inputs:
            raise typer.BadParameter("give image files or folders to classify")
        paths = [p for f in map(Path, inputs) for p in (read_images(f).paths if f.is_dir() else (f,))]
        proba, ok, skipped = clf.predict_files(paths)
        names = [str(p) for p, keep in zip(paths, ok) if keep]
        key = "file"
    classes = clf.classes_.tolist()
    table = Table(key, "label", "probability", *(["top"] if top > 1 else []))
    for name, p in zip(names, proba):
        order = p.argsort()[::-1][: max(top, 1)]
        best = {key: name, "label": classes[order[0]], "probability": float(p[order[0]]),
                "top": [{"label": classes[i], "probability": float(p[i])} for i in order]}
        if as_json:
            print(json.dumps(best))
        else:
            rest = ", ".join(f"{classes[i]} {p[i]:.2f}" for i in order[1:])
            shown = name if len(name) <= 80 else name[:77] + "..."
            table.add_row(shown, best["label"], f"{best['probability']:.3f}", *([rest] if top > 1 else []))
    if as_json:
        for path, why in skipped:
            print(json.dumps({"file": str(path), "error": why}))
    else:
        out.print(table)
        _report_skipped(skipped)
    if skipped:
        raise typer.Exit(1)


def _text_inputs(clf, inputs: list[str]) -> tuple[list[str], list[str]]:
    """(names to show, texts): '-' reads standard input, an existing file is read as texts, anything else is a text."""
    from .data import read_texts

    texts: list[str] = []
    for item in inputs:
        if item == "-":
            texts += [line for line in sys.stdin.read().splitlines() if line.strip()]
        elif len(item) < 4096 and "\n" not in item and Path(item).is_file():
            texts += list(read_texts(Path(item), text_column=clf.text_column).texts)
        else:
            texts.append(item)
    if not texts:
        raise typer.BadParameter("no text to classify: give texts as arguments, files, or lines on standard input")
    return texts, texts


@app.command()
@_friendly
def pretrain(
    data: Annotated[Path, typer.Argument(help="A data-rich source task: labeled images (class subfolders or a CSV).")],
    name: Annotated[str, typer.Option("--name", help="Name of the new backbone in the local zoo (reuse it with --model NAME).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Architecture (and, unless --scratch, starting weights): a zoo or timm name.")] = "tf_efficientnet_lite0",
    scratch: Annotated[bool, typer.Option("--scratch", help="Train from random weights instead of fine-tuning every layer of the pretrained model.")] = False,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs (default: 30 from scratch, 12 fine-tuning).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default: 2e-3 from scratch, 3e-4 fine-tuning).")] = None,
    input_size: Annotated[Optional[int], typer.Option(help="Train and later use the backbone at this image size (e.g. 64 for small images; default: the architecture's own).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed for the split and training.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a local zoo entry of the same name.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object describing the new entry.")] = False,
) -> None:
    """Train a network on a data-rich task and add it to the local model zoo.

    Then `transferkit fit OTHER_DATA --model NAME` transfers it to a task with few labels, with any strategy.
    """
    from .estimators import pretrain as run_pretrain
    from .zoo import local_zoo_dir

    clf, folder = run_pretrain(data, name, base=model, from_scratch=scratch, epochs=epochs, lr=lr,
                               batch_size=batch_size, input_size=input_size, seed=seed, overwrite=overwrite,
                               verbose=not as_json)
    info = {"name": name, "folder": str(folder), "classes": clf.classes_.tolist(), **{
        k: clf.metrics_.get(k) for k in ("val_accuracy", "epochs_run", "fit_seconds", "n_train", "n_val")}}
    if as_json:
        print(json.dumps(info, default=float))
        return
    out.print(f"Registered [bold]{name}[/] in {local_zoo_dir()} (validation accuracy on the source task "
              f"{info['val_accuracy']:.3f}). Reuse it: transferkit fit DATA --model {name}")


@app.command()
@_friendly
def rank(
    data: Annotated[Path, typer.Argument(help="Labeled data, images or texts, as for `transferkit fit`.")],
    models_: Annotated[Optional[str], typer.Option("--models", help="Comma-separated candidates (default: every offline backbone, or every text encoder, in the zoo).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the cross-validation folds.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ranking as a JSON list, best first.")] = False,
) -> None:
    """Rank pretrained models for your data in seconds, without fine-tuning.

    Scores each model's frozen features with LogME and a cross-validated kNN accuracy (features are cached, so the
    `fit` that follows reuses them).
    """
    from .data import is_text_source
    from .rank import rank_image_models, rank_text_encoders
    from .zoo import list_models, list_text_encoders

    text = is_text_source(data)
    if models_:
        names = [m.strip() for m in models_.split(",") if m.strip()]
    else:
        names = [e.name for e in list_text_encoders()] if text else [m.name for m in list_models() if m.offline]
    ranker = rank_text_encoders if text else rank_image_models
    rows = ranker(data, names, progress=not as_json, seed=seed)
    if as_json:
        print(json.dumps([r.to_dict() for r in rows]))
        return
    table = Table("#", "model", "LogME", "kNN accuracy (CV)", "dim", "seconds",
                  title=f"Which pretrained model suits {data}?",
                  caption="Higher LogME = features explain the labels better (You et al., 2021). Fit the first with "
                          "--model NAME.")
    for i, r in enumerate(rows, 1):
        table.add_row(str(i), f"[bold]{r.model}[/]" if i == 1 else r.model, f"{r.logme:.3f}", f"{r.knn_accuracy:.3f}",
                      str(r.feature_dim), f"{r.seconds:.1f}" + (" (cached)" if r.cached else ""))
    out.print(table)


@app.command()
@_friendly
def compare(
    data: Annotated[Path, typer.Argument(help="Labeled data, images or texts, as for `transferkit fit`.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The HTML report to write.")] = Path("compare.html"),
    ks: Annotated[str, typer.Option(help="Labeled examples per class to try, comma-separated.")] = "2,5,10,20",
    seeds: Annotated[int, typer.Option(help="Repeats per size, each with another sample of labels.")] = 2,
    strategies: Annotated[Optional[str], typer.Option(help="Comma-separated (default: features,scratch; add finetune or auto to include them).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Backbone or text encoder (defaults as for fit).")] = None,
    test: Annotated[Optional[Path], typer.Option(help="Labeled test data; default: 30% of DATA held out once.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Images: training epochs for scratch / finetune (default: their fit defaults).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every run and the recommendation as JSON.")] = False,
) -> None:
    """Learning curves: transfer against scratch over the number of labels per class.

    Fits each strategy on k labels per class (for each k and seed), scores all on one held-out split, and writes a
    self-contained HTML report: accuracy and time against labels per class, and a recommendation drawn from them.
    """
    from .compare import learning_curve, recommend
    from .data import is_text_source, read_images, read_texts
    from .report import comparison_report, write_report

    text = is_text_source(data)
    names = [s.strip() for s in (strategies or "features,scratch").split(",") if s.strip()]
    sizes = [int(k) for k in ks.split(",") if k.strip()]
    if text:
        from . import TextClassifier

        source = read_texts(data, require_labels=True)
        items, labels = list(source.texts), list(source.labels)
        held = read_texts(test, require_labels=True) if test else None
        held = (list(held.texts), list(held.labels)) if held else None

        def make(strategy: str, seed: int):
            return TextClassifier(encoder=model or "all-MiniLM-L6-v2", strategy=strategy, seed=seed, verbose=False)
    else:
        from . import ImageClassifier

        source = read_images(data)
        if source.labels is None:
            raise typer.BadParameter(f"{data} has no labels")
        items, labels = list(source.paths), list(source.labels)
        held = read_images(test) if test else None
        held = (list(held.paths), list(held.labels)) if held else None

        def make(strategy: str, seed: int):
            return ImageClassifier(backbone=model or "tf_efficientnet_lite0", strategy=strategy, seed=seed,
                                   epochs=epochs, verbose=False)

    def show(point) -> None:
        if not as_json:
            err.print(f"k={point.k:<4} seed={point.seed} {point.strategy:<9} accuracy {point.accuracy:.3f}  "
                      f"{point.seconds:.1f} s", highlight=False)

    points = learning_curve(items, labels, sizes, seeds, names, make, test=held, on_point=show)
    advice = recommend(points)
    write_report(out_file, comparison_report(points, advice, str(data), model or "default model"))
    if as_json:
        print(json.dumps({"report": str(out_file), "recommendation": advice, "runs": [p.to_dict() for p in points]}))
        return
    for line in advice:
        out.print(line)
    out.print(f"Report: [bold]{out_file}[/]")


@app.command()
def models(
    pattern: Annotated[Optional[str], typer.Argument(help='Shell pattern to filter names, e.g. "*lite*".')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the zoo as a JSON list.")] = False,
) -> None:
    """List the model zoo: image backbones and text encoders whose pretrained weights ship in packages (offline).

    Online, any timm name (e.g. resnet50.a1_in1k) works as an image --model, and any sentence-transformers or
    transformers name (e.g. sentence-transformers/all-mpnet-base-v2) as a text --model. A local model folder or a
    word-vector file (GloVe, word2vec, fastText .vec) also works for texts.
    """
    from .zoo import DEFAULT_BACKBONE, DEFAULT_TEXT_ENCODER, list_models, list_text_encoders

    specs = list_models(pattern)
    encoders = list_text_encoders(pattern)
    if as_json:
        print(json.dumps([{"name": s.name, "modality": "image", "aliases": list(s.aliases), "family": s.family,
                           "source": s.source, "package": s.package, "feature_dim": s.feature_dim,
                           "license": s.license, "preprocessing": s.preprocessing.to_dict(),
                           "default": s.name == DEFAULT_BACKBONE} for s in specs]
                         + [{"name": e.name, "modality": "text", "aliases": list(e.aliases), "family": e.kind,
                             "source": e.source, "package": e.package, "feature_dim": e.dim, "license": e.license,
                             "max_tokens": e.max_tokens, "default": e.name == DEFAULT_TEXT_ENCODER}
                            for e in encoders]))
        return
    from rich.table import Column

    if specs:
        table = Table(Column("name", no_wrap=True), "aliases", "input", "normalise", "dim", "weights",
                      title="Image backbones (offline)",
                      caption="* the default. Any timm name also works online: --model resnet50.a1_in1k")
        for s in specs:
            pre = s.preprocessing
            norm = "0.5/0.5" if pre.mean == (0.5, 0.5, 0.5) else "ImageNet"
            name = f"[bold]{s.name}[/]*" if s.name == DEFAULT_BACKBONE else s.name
            table.add_row(name, ", ".join(s.aliases), f"{pre.input_size} {pre.interpolation}", norm,
                          str(s.feature_dim), "local" if s.source == "local" else "offline" if s.offline else s.source)
        out.print(table)
    if encoders:
        table = Table(Column("name", no_wrap=True), "aliases", "window", "dim", "weights", "about",
                      title="Text encoders (offline)",
                      caption="* the default. Online: any sentence-transformers name; offline: a model folder or a "
                              "word-vector file (GloVe, word2vec, fastText)")
        for e in encoders:
            name = f"[bold]{e.name}[/]*" if e.name == DEFAULT_TEXT_ENCODER else e.name
            table.add_row(name, ", ".join(e.aliases), f"{e.max_tokens} tokens", str(e.dim), "offline", e.description)
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
