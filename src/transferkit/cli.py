"""The command line: thin, it parses arguments, calls the public API and prints (``--json`` for scripts).

Defaults are not restated here: strategy and tuner options default to ``None`` ("the strategy's own default"), and
the help texts read the defaults from the tuners (``transferkit.finetune.tuners``). Nothing heavy is imported
before a command needs it.
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .finetune.tuners import SCRATCH, TUNERS, NetworkTuner, cli_options

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


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"transferkit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Reuse pretrained networks on new tasks with little labeled data."""


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
        except OSError as exc:  # a path the OS refuses (too long, read-only, full disk) in a place not caught earlier
            where = f"{exc.filename}: " if exc.filename else ""
            err.print(f"[bold red]Error:[/] {where}{exc.strerror or exc}. Check the path, its permissions and the free "
                      "space.", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            hint = (" A fine-tuning fit keeps its checkpoints: run the same command with --resume to continue."
                    if func.__name__ == "fit" else "")
            err.print(f"[yellow]Interrupted.[/]{hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def _tuning_flags(func):
    """One option per tuning option of the schema (``finetune.tuners.cli_options``: flag, type, help, defaults), added
    to a command whose ``tuning`` parameter then receives the flags given, parsed, by option name."""
    import inspect

    options = cli_options()
    signature = inspect.signature(func, eval_str=True)

    def name(o) -> str:  # the flag's name (batch_size is --train-batch-size: fit's --batch-size is extraction's)
        return o.flag[2:].replace("-", "_")

    def flag(o):
        decls = f"{o.flag}/--no-{o.flag[2:]}" if o.type is bool else o.flag
        return inspect.Parameter(name(o), inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=Annotated[Optional[o.type], typer.Option(decls, help=o.help,
                                                                                     show_default=False)])

    @wraps(func)
    def wrapper(*args, **kwargs):
        tuning = {}
        for o in options:
            value = kwargs.pop(name(o))
            if value is not None and o.parse is not None:
                try:
                    value = o.parse(value)
                except ValueError:
                    raise typer.BadParameter(f"{o.flag} {value!r}: {o.help}") from None
            if value is not None:
                tuning[o.name] = value
        return func(*args, tuning=tuning, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[
        *(p for p in signature.parameters.values() if p.name != "tuning"), *map(flag, options)])
    return wrapper


ONLY_FOR = {"--weights": "image", "--path-column": "image", "--resume": "image", "--restart": "image",
            "--text-column": "text", "--long-text": "text"}  # fit's flags that are not tuning options


def _refuse_other_modality(given: dict[str, object], modality: str, data: Path) -> None:
    """The one check of "this flag applies only to images (texts)": tuning flags from the schema, the rest above."""
    applies = {o.flag: o.modalities for o in cli_options()} | {k: (v,) for k, v in ONLY_FOR.items()}
    foreign = [f for f, v in given.items() if v not in (None, False) and modality not in applies.get(f, (modality,))]
    if foreign:
        other = "texts" if modality == "image" else "images"
        raise typer.BadParameter(f"{', '.join(foreign)} appl{'ies' if len(foreign) == 1 else 'y'} to {other}, and "
                                 f"{data} holds {modality}s.")


@app.command()
@_friendly
@_tuning_flags
def fit(
    data: Annotated[Path, typer.Argument(help="Images: a folder with one subfolder per class, or a CSV with path,label columns. Texts: a CSV / TSV / JSONL with text and label columns, or a folder with one subfolder of .txt files per class. Which one is detected and printed.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the fitted model to (new, or a model folder with --overwrite).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Images: a zoo backbone (see `transferkit models`) or any timm name; default tf_efficientnet_lite0. Texts: a zoo encoder, a Hugging Face name, a model folder or a word-vector file; default all-MiniLM-L6-v2.")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Images: local weights file for the backbone (safetensors or a state dict).")] = None,
    unlabeled: Annotated[Optional[Path], typer.Option(help="Items without labels to learn from: a folder, a CSV / TSV / JSONL, or a .txt file of lines. The head on frozen features uses them where the labeled data shows it helps (self-training), and centres on them when they come from another source than the labels; auto then saves one backbone that learned the side-by-side backbones' labels of them (see --distill). Copies of labeled items count once; unreadable ones are skipped.")] = None,
    other: Annotated[Optional[Path], typer.Option(help="Examples of things that belong to none of the classes (a folder, a CSV / TSV / JSONL, or a .txt file of lines): `predict --reject` tells such items by the score that separates these best, and can compare new items with them.")] = None,
    strategy: Annotated[str, typer.Option(help="auto: measures, chooses and says why. features: frozen backbone/encoder + logistic regression. finetune: images: probe-initialised head, top stages retrained; texts: contrastive tuning on every pair of class-balanced batches (SetFit's objective). scratch: no transfer (images: same network, random init; texts: TF-IDF).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for the validation split, the head's cross-validation and training.")] = 0,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of each class held out to validate tuning (default: 0.2, or 0.1 once every class has 50 labels).")] = None,
    text_column: Annotated[Optional[str], typer.Option(help="Texts: the CSV / JSONL column holding the text (found by itself when named text, sentence, content, ...).")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Tables: the column holding the label (found by itself when named label, class, category, ...).")] = None,
    path_column: Annotated[Optional[str], typer.Option(help="Image tables: the column holding the image paths (found by itself when named path, file, ... or when it lists image files).")] = None,
    long_text: Annotated[Optional[str], typer.Option(help="Texts longer than the encoder's window (256 tokens for MiniLM): 'truncate' (default) keeps the beginning, 'chunk' averages every window.")] = None,
    time_budget: Annotated[Optional[float], typer.Option(help="auto: seconds tuning may take; over budget it keeps the frozen features.")] = None,
    distill: Annotated[bool, typer.Option(help="auto with --unlabeled: save one backbone that learned the side-by-side backbones' labels of the unlabeled items (kept unless held-out labels show it significantly worse); --no-distill keeps the side-by-side backbones, at several backbones' cost per prediction.")] = True,
    resume: Annotated[bool, typer.Option(help="Images: continue a fit that was interrupted, from its last checkpoint.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images or texts per batch when extracting features and predicting.")] = 32,
    precision: Annotated[str, typer.Option(help="auto (bfloat16 where this machine runs it natively), bf16 or fp32.")] = "auto",
    engine: Annotated[str, typer.Option(help="local, or ray: extract the features with Ray workers first (a local cluster, or --ray-address), then fit.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="With --engine ray: the cluster to use (auto, or HEAD:6379); none starts a local one.")] = None,
    workers: Annotated[int, typer.Option(help="With --engine ray: how many workers (actors) extract or predict.")] = 2,
    overwrite: Annotated[bool, typer.Option(help="Replace the model already in --out (other files in that folder are kept).")] = False,
    restart: Annotated[bool, typer.Option(help="Images: discard the checkpoints an interrupted fit left, and start afresh.")] = False,
    task: Annotated[str, typer.Option(help="What a label is. auto: decides and says how (lists, or cells with | or ;, are several labels; fractions are numbers). class: one class per item. labels: several per item (split at --separator, or an item listed once per label). number: predict a number (ridge on frozen features).")] = "auto",
    separator: Annotated[Optional[str], typer.Option(help="Several labels per item: what splits them in a table cell (auto looks for | and ;).")] = None,
    min_precision: Annotated[Optional[float], typer.Option(help="Several labels per item: give a label only where its out-of-fold precision reaches this (default: each label's threshold with the best F1).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the fit's metrics.")] = False,
    tuning: dict | None = None,  # the tuning flags (``_tuning_flags``)
) -> None:
    """Fit a classifier on labeled images or texts and save it as a model folder.

    Examples:

      transferkit fit photos/ --out model

      transferkit fit photos/ --out model --strategy finetune --unfreeze 2 --epochs 8

      transferkit fit reviews.csv --out textmodel --text-column review --label-column stars

      transferkit fit photos/ --out model --unlabeled more_photos/    # also learn from items without labels

      transferkit fit photos/ --out model --other not_any_of_these/    # what --reject should reject

      transferkit fit tickets.csv --out tagger --separator "|"    # several labels per item

      transferkit fit listings.csv --out pricer --task number    # predict a number
    """
    from .bundle import check_destination
    from .data import is_text_source
    from .runtime import is_primary_process

    check_destination(out_dir, overwrite)  # before any work: a fit never ends in "cannot save there"
    text = is_text_source(data, text_column=text_column, path_column=path_column)
    modality = "text" if text else "image"
    tuning = tuning or {}
    _refuse_other_modality({**{o.flag: tuning.get(o.name) for o in cli_options()}, "--weights": weights,
                            "--path-column": path_column, "--resume": resume, "--restart": restart,
                            "--text-column": text_column, "--long-text": long_text}, modality, data)
    chosen = _strategy(strategy, tuning, modality, time_budget, distill)
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"--engine must be local or ray, got {engine!r}.")
    if not as_json:
        err.print(f"{'Text' if text else 'Image'} data: {data}", highlight=False)
    if text:
        from . import TextClassifier

        clf = TextClassifier(model or _default("text"), chosen, seed=seed, val_fraction=val_fraction,
                             precision=precision, batch_size=batch_size, long_text=long_text or "truncate",
                             text_column=text_column, label_column=label_column, verbose=not as_json, task=task,
                             separator=separator, min_precision=min_precision)
        if engine == "ray":
            _warm_with_ray(clf, data, strategy, workers, ray_address, as_json, unlabeled)
        clf.fit(data, X_unlabeled=unlabeled, X_other=other)
        clf.save(out_dir, overwrite=overwrite)
        _print_fit(clf, out_dir, as_json, "TEXT...")
        return
    import shutil

    from . import ImageClassifier

    workdir = out_dir.parent / f".{out_dir.name}.training"
    if workdir.exists() and not resume and is_primary_process():
        if not restart:
            from .errors import BadInputError

            raise BadInputError(f"An interrupted fit left checkpoints in {workdir}; they are kept. Pass --resume to "
                                "continue it, or --restart to discard them and start afresh.")
        shutil.rmtree(workdir)
    clf = ImageClassifier(model or _default("image"), chosen, weights=str(weights) if weights else None, seed=seed,
                          val_fraction=val_fraction, precision=precision, batch_size=batch_size,
                          path_column=path_column, label_column=label_column, workdir=str(workdir), resume=resume,
                          verbose=not as_json, task=task, separator=separator, min_precision=min_precision)
    if engine == "ray":
        _warm_with_ray(clf, data, strategy, workers, ray_address, as_json, unlabeled)
    clf.fit(data, X_unlabeled=unlabeled, X_other=other)
    clf.save(out_dir, overwrite=overwrite)  # atomic: the model folder appears only now, complete (rank 0 only)
    if not is_primary_process():
        return
    shutil.rmtree(workdir, ignore_errors=True)
    _print_fit(clf, out_dir, as_json, "IMAGE...")


def _warm_with_ray(clf, data: Path, strategy: str, workers: int, address: str | None, quiet: bool,
                   unlabeled: Path | None) -> None:
    """Extract the features a fit will read with Ray workers, into the local cache (the fit then reads them): the
    labeled items', and the unlabeled ones' it will learn from (the same seeded sample of a large pool)."""
    from .distributed import warm_cache_with_ray
    from .unlabeled import sample_pool

    items = list(clf._read(data).items)
    if unlabeled is not None:
        items += sample_pool(list(clf._read(unlabeled).items), clf.seed)
    featurizer = clf._featurizer()
    featurizers = [featurizer, *(featurizer.companions() if strategy == "auto" else [])]
    total = sum(warm_cache_with_ray(f, items, workers=workers, batch_size=clf.batch_size, cache_dir=clf.cache_dir,
                                    address=address) for f in featurizers)
    if not quiet:
        err.print(f"Ray: {workers} worker(s) extracted {total} feature rows into the cache.", highlight=False)


def _default(modality: str) -> str:
    from .zoo._registry import DEFAULTS

    return DEFAULTS[modality]


def _strategy(name: str, tuning: dict, modality: str, time_budget: float | None, distill: bool = True):
    """The strategy object for the CLI's options (``tuning``: the tuning flags given): options a strategy has no use
    for are errors, not ignored."""
    from .strategies import STRATEGIES, Auto, Features, FineTune, Scratch

    flags = ", ".join(o.flag for o in cli_options() if o.name in tuning)
    if name not in STRATEGIES:
        raise typer.BadParameter(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}.")
    if time_budget is not None and name != "auto":
        raise typer.BadParameter("--time-budget applies to --strategy auto.")
    if not distill and name != "auto":
        raise typer.BadParameter("--no-distill applies to --strategy auto (the only strategy that distills).")
    tuner = next(t for t in TUNERS.values() if t.modality == modality)
    if name == "features" or (name == "scratch" and "scratch" not in tuner.strategies):
        if tuning:
            what = "keeps it frozen" if name == "features" else f"learns TF-IDF for {modality}s"
            raise typer.BadParameter(f"{flags} tune a network; --strategy {name} {what}. Use finetune or auto.")
        return Features() if name == "features" else Scratch()
    if name == "scratch":
        return Scratch(tuner=tuner(**{**SCRATCH, **tuning}).validated())
    finetune = FineTune(tuner=tuner(**tuning).validated() if tuning else None)
    return finetune if name == "finetune" else Auto(time_budget=time_budget, distill=distill,
                                                    finetune=finetune if tuning else None)


def _print_fit(clf, out_dir: Path, as_json: bool, what: str) -> None:
    from .evaluate import estimate_note

    report = clf.report_
    if as_json:
        print(json.dumps({"model": str(out_dir), "classes": clf.classes_.tolist(), "target": clf.target_,
                          **report.summary()},
                         default=_json_default))
        return
    rate = report.items_per_second
    speed = f", {rate:.0f} {clf.noun}s/s" if rate else ""
    kind = clf.target_["kind"]
    shape = {"class": f"{len(clf.classes_)} classes", "labels": f"{len(clf.classes_)} labels per item at most",
             "number": "a number per item"}[kind]
    out.print(f"Saved [bold]{out_dir}[/]: {shape}, {_estimate_line(report)}, "
              f"{report.fit_seconds:.1f} s{speed}.")
    note = estimate_note(report.estimate, clf.noun)
    if note:
        err.print(f"[yellow]Note: {note}.[/]", highlight=False)
    out.print(f"Next: transferkit evaluate {out_dir} TEST_DATA   or   transferkit predict {out_dir} {what}")


def _estimate_line(report) -> str:
    """The accuracy a fit reports, with how it was measured, its sample size and interval."""
    r = report.estimate
    if r is None:
        return "no accuracy estimate (too few labels to hold any out)"
    low, high = r.interval
    return f"{r.name} [bold]{r.value:.3f}[/] (95% {low:.2f}-{high:.2f}; {report.estimate_detail()})"


def _json_default(value):
    try:
        import numpy as np

        if isinstance(value, (np.floating, np.integer, np.bool_)):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


@app.command()
@_friendly
def evaluate(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder written by `transferkit fit`, or hf://OWNER/NAME on the Hugging Face Hub.")],
    data: Annotated[Path, typer.Argument(help="Labeled test data in the form the model was fit on (class subfolders, a CSV, a JSONL).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (accuracy, macro_f1, per_class, confusion_matrix).")] = False,
    tta: Annotated[bool, typer.Option(help="Images: test-time augmentation, averaging each image with its mirror image.")] = False,
    runtime: Annotated[str, typer.Option(help="torch, or onnx (ONNX Runtime; a model folder is exported once and cached). An export folder (`transferkit export`) always runs on ONNX Runtime.")] = "torch",
    report: Annotated[Optional[Path], typer.Option(help="Also write a self-contained HTML report here (a new file, or an earlier report): metrics, confusion matrix, per-class precision/recall, calibration and the most confidently wrong examples.")] = None,
    reject: Annotated[Optional[str], typer.Option(help=REJECT_HELP + " The data may then hold classes the model was not trained on: it reports how many of each kind were rejected.")] = None,
) -> None:
    """Measure a saved model on labeled data: accuracy, macro-F1, per-class report, confusion matrix, calibration.

    Examples:

      transferkit evaluate model test/

      transferkit evaluate model test/ --report report.html

      transferkit evaluate model test_with_new_classes/ --reject auto
    """
    from .evaluate import evaluate as run_evaluation

    if report is not None:
        from .report.html import check_report_path

        check_report_path(report)
    model = _load(model_dir, verbose=not as_json, tta=tta, runtime=runtime)
    result = run_evaluation(model, data, reject=reject)
    if not hasattr(result, "accuracy"):  # several labels per item, or numbers
        _print_shape_evaluation(result, model_dir, data, report, as_json)
        return
    if report is not None:
        from .report import evaluation_report, write_report

        write_report(report, evaluation_report(result, str(model_dir), str(data), {"reason": model.report.reason}))
        if not as_json:
            err.print(f"Report written to {report}", highlight=False)
    if as_json:
        print(json.dumps(result.to_dict(), default=_json_default))
        return
    low, high = result.interval
    out.print(f"[bold]{model_dir}[/] on {data}: {result.n_examples} examples, accuracy [bold]{result.accuracy:.3f}[/] "
              f"(95% {low:.2f}-{high:.2f}), macro-F1 {result.macro_f1:.3f}, expected calibration error {result.ece:.3f}")
    if result.label_free:
        out.print(f"Read from the model's confidence without these labels, as `predict` reports it: "
                  f"{result.label_free['accuracy']:.3f} (the fit estimated {result.label_free['at_fit']:.3f}).")
    if result.open_set:
        from .openset import open_set_line

        out.print(escape(open_set_line(result.open_set, model.noun)))
    for note in result.notes:
        err.print(f"[yellow]Note: {note}.[/]", highlight=False, soft_wrap=True)
    from .report.html import printable

    table = Table("class", "precision", "recall", "F1", "support", title="Per class")
    for row in result.per_class:
        table.add_row(printable(row["class"]), f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    out.print(table)
    cm = Table("true \\ predicted", *[printable(c)[:10] for c in result.classes], title="Confusion matrix")
    for c, row in zip(result.classes, result.confusion_matrix):
        cm.add_row(printable(c), *[f"[bold]{v}[/]" if i == result.classes.index(c) else (str(v) if v else "·") for i, v in enumerate(row)])
    out.print(cm)
    _report_skipped(result.skipped)


def _print_shape_evaluation(result, model_dir: Path, data: Path, report: Path | None, as_json: bool) -> None:
    """``evaluate``'s output for a model of several labels per item or of numbers."""
    from .report.html import printable

    if report is not None:
        from .report import shape_report, write_report

        write_report(report, shape_report(result, str(model_dir), str(data)))
        if not as_json:
            err.print(f"Report written to {report}", highlight=False)
    if as_json:
        print(json.dumps(result.to_dict(), default=_json_default))
        return
    m = result.metrics

    def shown(key: str, name: str) -> str:
        low, high = m[f"{key}_interval"]
        return f"{name} [bold]{m[key]:.3f}[/] (95% {low:.2f}-{high:.2f})"

    if result.kind == "number":
        out.print(f"[bold]{model_dir}[/] on {data}: {result.n_examples} examples, {shown('r2', 'R²')}, "
                  f"{shown('mae', 'mean absolute error')}, {shown('rmse', 'RMSE')}")
    else:
        out.print(f"[bold]{model_dir}[/] on {data}: {result.n_examples} examples, {shown('micro_f1', 'micro-F1')}, "
                  f"{shown('macro_f1', 'macro-F1')}, {shown('mean_ap', 'mean average precision')}, "
                  f"{shown('subset_accuracy', 'every label right')}")
        table = Table("label", "precision", "recall", "F1", "support", "predicted", title="Per label")
        for row in m["per_label"]:
            table.add_row(printable(row["label"]), f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                          f"{row['f1']:.3f}", str(row["support"]), str(row["predicted"]))
        out.print(table)
    for note in result.notes:
        err.print(f"[yellow]Note: {note}.[/]", highlight=False, soft_wrap=True)
    _report_skipped(result.skipped)


@app.command()
@_friendly
def predict(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder written by `transferkit fit`, or hf://OWNER/NAME on the Hugging Face Hub.")],
    inputs: Annotated[Optional[list[str]], typer.Argument(metavar="INPUT...", help="Images: files or folders of images. Texts: the texts themselves, or files (.txt: one text per line; .csv/.jsonl: the text column); '-' or nothing reads one text per line from standard input.")] = None,
    top: Annotated[int, typer.Option(help="How many classes to show per input.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line: input, label, probability, top.")] = False,
    tta: Annotated[bool, typer.Option(help="Images: test-time augmentation, averaging each image with its mirror image.")] = False,
    runtime: Annotated[str, typer.Option(help="auto: with --out, the runtime measured faster on this kind of machine (ONNX Runtime for image models on a CPU, exported once and cached), else torch; or torch, or onnx. An export folder (`transferkit export`) always runs on ONNX Runtime.")] = "auto",
    engine: Annotated[str, typer.Option(help="local, or ray: with --out, predict on Ray workers (a local cluster, or --ray-address).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="With --engine ray: the cluster to use (auto, or HEAD:6379); none starts a local one.")] = None,
    workers: Annotated[int, typer.Option(help="With --engine ray: how many workers (actors), each with the model loaded once.")] = 2,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write every prediction to this .csv, .jsonl or .parquet file as it comes (bounded memory, progress with ETA); run again after a kill to continue where it stopped.")] = None,
    as_text: Annotated[bool, typer.Option("--text", help="Texts: every INPUT is a text to classify, even one that names a file.")] = False,
    as_files: Annotated[bool, typer.Option("--files", help="Texts: every INPUT is a file of texts (one per line, or a table's text column).")] = False,
    reject: Annotated[Optional[str], typer.Option(help=REJECT_HELP)] = None,
    unknown_label: Annotated[str, typer.Option(help="With --reject: the label of an input that belongs to no trained class.")] = "unknown",
) -> None:
    """Classify images or texts with a saved model.

    After 20 or more inputs it says how accurate the model probably is on them (read from its confidence, no labels needed), and warns when that is below the fit's estimate: the inputs look unlike the training data. A network validated on fewer than 50 held-out items prints no such estimate.

    Examples:

      transferkit predict model photo.jpg more_photos/ --top 3

      echo "great value" | transferkit predict textmodel --json

      transferkit predict model /data/100k_images/ --out predictions.csv --top 3

      transferkit predict model camera_trap/ --reject auto --unknown-label other
    """
    if as_text and as_files:
        raise typer.BadParameter("--text and --files exclude each other.")
    from .openset import rejection_rate

    rate = rejection_rate(reject)  # checked before any work
    chosen = "torch" if runtime == "auto" else runtime  # auto: decided below, once the size of the job is known
    model = _load(model_dir, verbose=False, tta=tta, runtime=chosen)
    if model.modality == "text":
        items = _text_inputs(model, inputs or ["-"], as_text, as_files)
        key = "text"
    else:
        if as_text or as_files:
            raise typer.BadParameter("--text and --files apply to text models; this model classifies images.")
        if not inputs:
            raise typer.BadParameter("give image files or folders to classify")
        items = [p for f in map(Path, inputs) for p in (
            model.read(f).items if f.is_dir() or f.suffix.lower() in (".csv", ".tsv", ".jsonl") else (f,))]
        key = "file"
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"--engine must be local or ray, got {engine!r}.")
    if engine == "ray" and out_file is None:
        raise typer.BadParameter("--engine ray writes its predictions to a file: give --out predictions.csv.")
    if runtime == "auto" and out_file is not None and engine == "local" and not hasattr(model, "manifest") \
            and rate is None and model.kind == "class":  # rejection reads the torch features
        from .loading import auto_runtime
        from .share import local_model_path

        if auto_runtime(local_model_path(model_dir), verbose=not as_json, n_items=len(items)) == "onnx":
            model = _load(model_dir, verbose=False, tta=tta, runtime="onnx")
    if out_file is not None:
        if engine == "ray":
            from .distributed import predict_with_ray

            counts = predict_with_ray(model_dir, items, out_file, workers=workers, top=top, runtime=chosen,
                                      address=ray_address, progress=not as_json, reject=rate, unknown=unknown_label)
        else:
            from .bulk import predict_to_file

            counts = predict_to_file(model, items, out_file, top=top, progress=not as_json, reject=rate,
                                     unknown=unknown_label)
        summary = {"out": str(out_file), "runtime": "onnx" if hasattr(model, "manifest") else "torch", **counts}
        if as_json:
            print(json.dumps(summary))
        else:
            out.print(f"Wrote {counts['written']} prediction(s) to [bold]{out_file}[/]"
                      + (f" ({counts['already_there']} already there from an earlier run)" if counts["already_there"] else "")
                      + (f"; {counts['rejected']} of them belong to no trained class ({unknown_label!r})" if counts.get("rejected") else "")
                      + (f"; {counts['unreadable']} input(s) could not be read (see the error column)" if counts["unreadable"] else "")
                      + ".")
            _say_label_free(counts.get("estimate"), model.noun)
            if rate is None:
                _say_unfamiliar(counts.get("unfamiliar"), model.noun)
        return
    proba, accepted, scores, ok, skipped = model.predict_open(items, rate)
    names = [str(p) for p, keep in zip(items, ok) if keep]
    kind = model.kind
    columns = {"class": ("label", "probability", *(["top"] if top > 1 else [])), "labels": ("labels", "probabilities"),
               "number": ("value",)}[kind]
    table = Table(key, *columns)
    for row, (name, p) in enumerate(zip(names, proba)):
        best = {key: name, **model.describe(p, top)}
        if accepted is not None:
            best.update({"label": best["label"] if accepted[row] else unknown_label, "known": bool(accepted[row]),
                         "known_score": float(scores[row])})
        if as_json:
            print(json.dumps(best, default=_json_default))
            continue
        shown = name if len(name) <= 80 else name[:77] + "..."
        if kind == "number":
            table.add_row(shown, f"{best['value']:.4g}")
        elif kind == "labels":
            chances = sorted(best["probabilities"].items(), key=lambda kv: -kv[1])[:5]
            table.add_row(shown, ", ".join(map(str, best["labels"])) or "(none)",
                          ", ".join(f"{c} {v:.2f}" for c, v in chances))
        else:
            rest = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in best["top"][1:])
            table.add_row(shown, str(best["label"]), f"{best['probability']:.3f}", *([rest] if top > 1 else []))
    if as_json:
        for path, why in skipped:
            print(json.dumps({key: str(path), "error": why}))
    elif names:
        out.print(table)
        _say_label_free(model.label_free(proba), model.noun)
        if rate is None:
            from .openset import unfamiliar

            _say_unfamiliar(unfamiliar(model.open_set, scores), model.noun)
    _report_skipped(skipped if not as_json else [])
    if not names:
        from .errors import BadInputError

        raise BadInputError(f"None of the {len(items)} input(s) could be read, so nothing was predicted"
                            + (f" (e.g. {skipped[0][0]}: {skipped[0][1]})." if skipped else "."))
    if skipped:
        raise typer.Exit(1)


REJECT_HELP = ("auto, or the share of items of the trained classes that may be rejected (e.g. 0.02): answer the "
               "unknown label for an input that belongs to none of the trained classes (the score the fit chose: "
               "softmax confidence, energy or nearest labeled item).")


def _say_unfamiliar(reading: dict | None, noun: str) -> None:
    """The warning that many inputs look unlike every trained class (``openset.unfamiliar``), if there is one."""
    from .openset import unfamiliar_line

    warning = unfamiliar_line(reading, noun)
    if warning:
        err.print(f"[yellow]{escape(warning)}[/]")


def _say_label_free(estimate: dict | None, noun: str) -> None:
    """The model's accuracy on what it just predicted, read from its confidence; a warning when it is below the
    fit's interval (``evaluate.label_free_lines``)."""
    from .evaluate import label_free_lines

    for line in label_free_lines(estimate, noun):
        if line.startswith("Warning"):
            err.print(f"[yellow]{escape(line)}[/]")
        else:
            out.print(escape(line))


FILE_LIKE = (".txt", ".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".png", ".jpg", ".jpeg")


def _load(model_dir: Path, verbose: bool, tta: bool, runtime: str = "torch"):
    from .loading import load_predictor

    return load_predictor(model_dir, runtime=runtime, tta=tta, verbose=verbose)


def _text_inputs(model, inputs: list[str], as_text: bool, as_files: bool) -> list[str]:
    """'-' reads standard input; a file is read as texts; anything else is a text. A word that looks like a file name
    but names no file is an error, not a text to classify (``--text`` says it is one)."""
    texts: list[str] = []
    for item in inputs:
        if item == "-" and not as_text:
            texts += [line for line in sys.stdin.read().splitlines() if line.strip()]
            continue
        looks_like_file = len(item) < 4096 and "\n" not in item and (
            "/" in item or item.lower().endswith(FILE_LIKE)) and " " not in item.strip()
        if as_text:
            texts.append(item)
        elif as_files or looks_like_file:
            if not Path(item).is_file():
                raise typer.BadParameter(f"{item} is not a file. To classify these words as a text, pass --text.")
            texts += list(model.read(Path(item)).items)
        elif len(item) < 4096 and "\n" not in item and Path(item).is_file():
            texts += list(model.read(Path(item)).items)
        else:
            texts.append(item)
    if not texts:
        raise typer.BadParameter("no text to classify: give texts as arguments, files, or lines on standard input")
    return texts


@app.command()
@_friendly
def serve(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder (`transferkit fit`), hf://OWNER/NAME on the Hub, or an ONNX export (`transferkit export`).")],
    host: Annotated[str, typer.Option(help="The address to listen on; 127.0.0.1 (this machine only) unless you mean otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8000,
    runtime: Annotated[str, typer.Option(help="auto (the runtime measured faster on this kind of machine: ONNX Runtime for image models on a CPU, exported once and cached), torch or onnx.")] = "auto",
    max_request_mb: Annotated[float, typer.Option(help="The largest request body accepted, in MiB.")] = 20.0,
    max_batch: Annotated[int, typer.Option(help="Inputs of concurrent requests run through the model together, up to this many.")] = 32,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /model, OpenAPI docs at /docs.

    Examples:

      transferkit serve model --port 8000

      curl -F files=@photo.jpg -F files=@other.png 'http://127.0.0.1:8000/predict?top=3'

      curl -H 'content-type: application/json' -d '{"texts": ["great value"]}' http://127.0.0.1:8000/predict
    """
    from .serve import Limits
    from .serve import serve as run_server

    if not 0 < port < 65536:
        raise typer.BadParameter(f"--port must be between 1 and 65535, got {port}.")
    if max_request_mb <= 0 or max_batch < 1:
        raise typer.BadParameter("--max-request-mb must be positive and --max-batch at least 1.")
    model = _load(model_dir, verbose=False, tta=False, runtime=runtime)
    model.use_cache = False
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]Listening on {host}: anyone who can reach this machine can use the model.[/]")
    err.print(f"Serving {model_dir} ({model.modality}, {len(model.classes)} classes) on http://{host}:{port} "
              f"(docs: http://{host}:{port}/docs). Ctrl-C stops it.", highlight=False)
    run_server(model, host=host, port=port, limits=Limits(max_request_mb=max_request_mb, max_batch=max_batch),
               model_info={"model": str(model_dir), "runtime": "onnx" if hasattr(model, "manifest") else "torch"})


@app.command()
@_friendly
def export(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder written by `transferkit fit`, or hf://OWNER/NAME on the Hugging Face Hub.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="The folder to write the export to.")],
    format_: Annotated[str, typer.Option("--format", help="onnx: one graph from the input to class probabilities, run by ONNX Runtime.")] = "onnx",
    quantize: Annotated[Optional[str], typer.Option(help="int8: also write a dynamically quantised graph (ONNX Runtime's tools); give --check-data to measure what it costs in accuracy.")] = None,
    check_data: Annotated[Optional[Path], typer.Option(help="Labeled data to check the export on (and to measure --quantize's accuracy change); default: generated inputs.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier export in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the export's manifest as JSON.")] = False,
) -> None:
    """Export a model to ONNX, checked against the model before it is reported written.

    Examples:

      transferkit export model --out model-onnx

      transferkit export model --out model-onnx --quantize int8 --check-data test/

      transferkit predict model-onnx photo.jpg        # runs on ONNX Runtime, without PyTorch
    """
    from .export import export_onnx
    from .predictor import Predictor

    if format_ != "onnx":
        raise typer.BadParameter(f"--format must be onnx, got {format_!r}.")
    predictor = Predictor.load(model_dir)
    items = labels = None
    if check_data is not None:
        data = predictor.read(check_data, require_labels=quantize is not None)
        items, labels = list(data.items), list(data.labels or []) or None
    manifest = export_onnx(predictor, out_dir, check_items=items, check_labels=labels, quantize=quantize,
                           overwrite=overwrite)
    if as_json:
        print(json.dumps(manifest, default=_json_default))
        return
    c = manifest["check"]
    out.print(f"Wrote [bold]{out_dir}[/] ({manifest['export_seconds']:.0f} s): ONNX Runtime matches the model on "
              f"{c['inputs']} inputs (largest probability difference {c['max_abs_difference']:.1e}, tolerance "
              f"{c['tolerance']:g}; the same class for all).")
    if c.get("skipped"):
        listed = "; ".join(f"{s['item']} ({s['reason']})" for s in c["skipped"][:10])
        more = f" and {len(c['skipped']) - 10} more" if len(c["skipped"]) > 10 else ""
        err.print(f"[yellow]{len(c['skipped'])} input(s) of --check-data could not be read and were not checked:[/] "
                  f"{listed}{more}", highlight=False)
    q = manifest.get("quantized")
    if q:
        size = f"{q['bytes_int8'] / 2**20:.1f} MiB against {q['bytes_fp32'] / 2**20:.1f} MiB"
        if "accuracy_change" in q:
            out.print(f"int8: {size}; accuracy {q['accuracy_int8']:.3f} against {q['accuracy_fp32']:.3f} in float32 on "
                      f"{q['n']} labeled examples ({100 * q['accuracy_change']:+.1f} points).")
        else:
            out.print(f"int8: {size}; {q['note']}.")


@app.command()
@_friendly
def push(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder written by `transferkit fit` (its README.md is the model card).")],
    repo: Annotated[str, typer.Option("--repo", help="The Hugging Face Hub repository to upload to, OWNER/NAME (created if missing).")],
    private: Annotated[bool, typer.Option(help="Create the repository as private.")] = False,
    token: Annotated[Optional[str], typer.Option(envvar="HF_TOKEN", show_default=False, help="A Hub token with write access (default: HF_TOKEN, or the login of `hf auth login`).")] = None,
    message: Annotated[Optional[str], typer.Option(help="The commit message.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {repo, url} as JSON.")] = False,
) -> None:
    """Upload a model folder, with its model card, to the Hugging Face Hub.

    Examples:

      transferkit push model --repo alice/clipart-birds

      transferkit predict hf://alice/clipart-birds photo.jpg    # anyone, once it is public
    """
    from .share import push as push_model

    url = push_model(model_dir, repo, token=token, private=private, message=message)
    if as_json:
        print(json.dumps({"repo": repo, "url": url}))
    else:
        out.print(f"Pushed [bold]{model_dir}[/] to {repo}: {url}\nLoad it with hf://{repo}", highlight=False)


@app.command("app")
@_friendly
def app_command(
    project_dir: Annotated[Path, typer.Argument(metavar="PROJECT_DIR", help="The project folder (created if missing); the CLI reads its data/ too.")] = Path("transferkit-project"),
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="The address to listen on: 127.0.0.1 (this machine only) unless you mean otherwise; any other address requires a token.")] = "127.0.0.1",
    token: Annotated[Optional[str], typer.Option(envvar="TRANSFERKIT_APP_TOKEN", show_default=False, help="The token browsers must present (default on a non-local --host: a new random one, printed).")] = None,
    modality: Annotated[Optional[str], typer.Option(help="image or text, for a new project (else the page asks).")] = None,
    model: Annotated[Optional[str], typer.Option(help="The backbone or text encoder to train with (default: the zoo's default).")] = None,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in the default browser.")] = False,
) -> None:
    """A local web app: collect and label examples, train, try the model live, fix what it gets wrong, download it.

    Examples:

      transferkit app birds-project                 # then open http://127.0.0.1:8765

      transferkit app reviews --modality text --port 9000

      transferkit fit birds-project/data/train --out model    # the same data, from the command line
    """
    from .app.project import Project
    from .app.web import LOCAL_HOSTS, new_token, run_app

    if host not in LOCAL_HOSTS and token is None:
        token = new_token()
    project = Project(project_dir, modality)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/" + (f"?token={token}" if token else "")
    out.print(f"transferkit app: project [bold]{project.root}[/]\nOpen {url}  (Ctrl-C to stop)", highlight=False,
              soft_wrap=True)
    if host not in LOCAL_HOSTS:
        err.print(f"[yellow]Listening on {host}: anyone who can reach this machine and has the token can use it.[/]")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    run_app(project, host=host, port=port, token=token, model=model)


@app.command()
@_friendly
def pretrain(
    data: Annotated[Path, typer.Argument(help="A data-rich source task: labeled images (class subfolders or a CSV).")],
    name: Annotated[str, typer.Option("--name", help="Name of the new backbone in the local zoo (reuse it with --model NAME).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Architecture (and, unless --scratch, starting weights): a zoo or timm name.")] = "tf_efficientnet_lite0",
    scratch: Annotated[bool, typer.Option("--scratch", help="Train from random weights instead of fine-tuning every layer of the pretrained model.")] = False,
    epochs: Annotated[Optional[int], typer.Option(help=f"Maximum epochs (default: {SCRATCH['epochs']} from scratch, {NetworkTuner.epochs} fine-tuning).")] = None,
    lr: Annotated[Optional[float], typer.Option(help=f"Peak learning rate (default: {SCRATCH['lr']:g} from scratch, {NetworkTuner.lr:g} fine-tuning).")] = None,
    input_size: Annotated[Optional[int], typer.Option(help="Train and later use the backbone at this image size (e.g. 64 for small images; default: the architecture's own).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch, in training and in extracting features.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed for the split and training.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a local zoo entry of the same name.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object describing the new entry.")] = False,
) -> None:
    """Train a network on a data-rich task and add it to the local model zoo.

    Then `transferkit fit OTHER_DATA --model NAME` transfers it to a task with few labels, with any strategy.
    """
    from .pretrain import pretrain as run_pretrain
    from .zoo import local_zoo_dir

    clf, folder = run_pretrain(data, name, base=model, from_scratch=scratch, epochs=epochs, lr=lr,
                               batch_size=batch_size, input_size=input_size, seed=seed, overwrite=overwrite,
                               verbose=not as_json)
    r = clf.report_
    info = {"name": name, "folder": str(folder), "classes": clf.classes_.tolist(), "val_accuracy": r.val_accuracy,
            "epochs_run": r.epochs_run, "fit_seconds": r.fit_seconds, "n_train": r.n_train, "n_val": r.n_val}
    if as_json:
        print(json.dumps(info, default=_json_default))
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
    from .rank import rank_models
    from .zoo import list_models

    modality = "text" if is_text_source(data) else "image"
    if models_:
        names = [m.strip() for m in models_.split(",") if m.strip()]
    else:
        names = [m.name for m in list_models(modality=modality) if m.offline]
    rows = rank_models(data, names, modality=modality, progress=not as_json, seed=seed)
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
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The HTML report to write (a new file, or an earlier report).")] = Path("compare.html"),
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
    from .data import is_text_source
    from .report import comparison_report, write_report
    from .report.html import check_report_path
    from .strategies import STRATEGIES, FineTune, Scratch, make_strategy

    check_report_path(out_file)
    text = is_text_source(data)
    names = [s.strip() for s in (strategies or "features,scratch").split(",") if s.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise typer.BadParameter(f"--strategies: unknown {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}.")
    if epochs is not None and text:
        raise typer.BadParameter("--epochs applies to images.")
    sizes = [int(k) for k in ks.split(",") if k.strip()]
    if text:
        from . import TextClassifier as cls
    else:
        from . import ImageClassifier as cls
    reader = cls(verbose=False)
    source = reader._read(data, require_labels=True)
    held = reader._read(test, require_labels=True) if test else None

    def make(strategy: str, seed: int):
        chosen = {"finetune": FineTune(tuner=NetworkTuner(epochs=epochs)),
                  "scratch": Scratch(tuner=NetworkTuner(**{**SCRATCH, "epochs": epochs}))}.get(strategy) if epochs \
            else make_strategy(strategy)
        return cls(model or _default("text" if text else "image"), chosen, seed=seed, verbose=False)

    def show(point) -> None:
        if not as_json:
            err.print(f"k={point.k:<4} seed={point.seed} {point.strategy:<9} accuracy {point.accuracy:.3f}  "
                      f"{point.seconds:.1f} s", highlight=False)

    from .data.hygiene import content_keys, duplicate_notes

    keys = content_keys(source.items, make("features", 0)._featurizer().item_key)
    for note in duplicate_notes(source.items, source.labels, keys, "data"):
        err.print(f"[yellow]Note: {note}: a copy in the training sample and in the test split inflates accuracy.[/]",
                  highlight=False, soft_wrap=True)
    points = learning_curve(list(source.items), list(source.labels), sizes, seeds, names, make,
                            test=(list(held.items), list(held.labels)) if held else None, on_point=show)
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
    text_only: Annotated[bool, typer.Option("--text", help="Only text encoders.")] = False,
    image_only: Annotated[bool, typer.Option("--image", help="Only image backbones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the zoo as a JSON list.")] = False,
) -> None:
    """List the model zoo: image backbones and text encoders whose pretrained weights ship in packages (offline).

    Online, any timm name (e.g. resnet50.a1_in1k) works as an image --model, and any sentence-transformers or
    transformers name (e.g. sentence-transformers/all-mpnet-base-v2) as a text --model. A local model folder or a
    word-vector file (GloVe, word2vec, fastText .vec) also works for texts.
    """
    from rich.table import Column

    from .zoo import DEFAULTS, list_models

    modality = "text" if text_only else "image" if image_only else None
    specs = list_models(pattern, modality)
    if as_json:
        print(json.dumps([{"name": s.name, "modality": s.modality, "aliases": list(s.aliases), "kind": s.kind,
                           "source": s.source, "package": s.package, "feature_dim": s.dim, "license": s.license,
                           "max_tokens": s.max_tokens, "default": s.name == DEFAULTS[s.modality],
                           "preprocessing": s.preprocessing.to_dict() if s.preprocessing else None} for s in specs]))
        return
    images = [s for s in specs if s.modality == "image"]
    texts = [s for s in specs if s.modality == "text"]
    if images:
        table = Table(Column("name", no_wrap=True), "aliases", "input", "normalise", "dim", "weights",
                      title="Image backbones (offline)",
                      caption="* the default. Any timm name also works online: --model resnet50.a1_in1k")
        for s in images:
            pre = s.preprocessing
            norm = "0.5/0.5" if pre.mean == (0.5, 0.5, 0.5) else "ImageNet"
            name = f"[bold]{s.name}[/]*" if s.name == DEFAULTS["image"] else s.name
            table.add_row(name, ", ".join(s.aliases), f"{pre.input_size} {pre.interpolation}", norm, str(s.dim or ""),
                          "local" if s.source == "local" else "offline" if s.offline else s.source)
        out.print(table)
    if texts:
        table = Table(Column("name", no_wrap=True), "aliases", "window", "dim", "weights", "about",
                      title="Text encoders (offline)",
                      caption="* the default. Online: any sentence-transformers name; offline: a model folder or a "
                              "word-vector file (GloVe, word2vec, fastText)")
        for e in texts:
            name = f"[bold]{e.name}[/]*" if e.name == DEFAULTS["text"] else e.name
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
