"""The command line: thin, it parses arguments, calls the public API and prints (``--json`` for scripts).

Defaults are not restated here: strategy and tuner options default to ``None`` ("the strategy's own default"), and
the help texts read the defaults from the tuners (``transferkit.finetune.tuners``). Nothing heavy is imported
before a command needs it.
"""

from __future__ import annotations

import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from . import jobs, show
from .finetune.tuners import SCRATCH, NetworkTuner, cli_options
from .jobs import FitOptions
from .loading import AUTO_EXPORT_MIN_ITEMS, TEXT_FEW_MAX_CHARS, for_texts, load_predictor, predict_runtime
from .show import err, json_line, out

app = typer.Typer(
    name="transferkit",
    help="Reuse pretrained networks on new tasks with little labeled data.\n\n"
    "Typical use: [bold]transferkit fit photos/ --out model[/] then [bold]transferkit evaluate model test/[/] "
    "and [bold]transferkit predict model image.jpg[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
MODEL_HELP = "A model folder written by `transferkit fit`, or hf://OWNER/NAME on the Hugging Face Hub."
ModelArg = Annotated[Path, typer.Argument(metavar="MODEL", help=MODEL_HELP)]
Tta = Annotated[bool, typer.Option(help="Images: test-time augmentation, averaging each image with its mirror image.")]
RayAddress = Annotated[Optional[str], typer.Option(help="With --engine ray: the cluster to use (auto, or HEAD:6379); "
                                                        "none starts a local one.")]
REJECT_HELP = ("auto, or the share of items of the trained classes that may be rejected (e.g. 0.02): answer the "
               "unknown label for an input that belongs to none of the trained classes (the score the fit chose: "
               "softmax confidence, energy or nearest labeled item).")


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
            err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:  # a path the OS refuses (too long, read-only, full disk) in a place not caught earlier
            where = f"{exc.filename}: " if exc.filename else ""
            err.print(f"[bold red]Error:[/] {escape(where)}{escape(str(exc.strerror or exc))}. Check the path, its permissions and the free "
                      "space.", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            hint = (" A fine-tuning fit keeps its checkpoints: run the same command with --resume to continue."
                    if func.__name__ == "fit" else "")
            err.print(f"[yellow]Interrupted.[/]{hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def _flags(options: list, into: str):
    """Adds one option per entry of a schema (``CliOption``: flag, type, help, default) to a command, whose ``into``
    parameter then receives the values given, parsed, by option name (tuning: only the flags given)."""
    import inspect

    def decorate(func):
        signature = inspect.signature(func, eval_str=True)

        def name(o) -> str:  # the flag's name (batch_size is --train-batch-size: fit's --batch-size is extraction's)
            return o.flag[2:].replace("-", "_")

        def flag(o):
            decls = f"{o.flag}/--no-{o.flag[2:]}" if o.type is bool else o.flag
            option = typer.Option(decls, help=o.help, show_default=o.default is not None)
            return inspect.Parameter(name(o), inspect.Parameter.KEYWORD_ONLY, default=o.default,
                                     annotation=Annotated[Optional[o.type], option])

        @wraps(func)
        def wrapper(*args, **kwargs):
            given = {}
            for o in options:
                value = kwargs.pop(name(o))
                if value is not None and o.parse is not None:
                    try:
                        value = o.parse(value)
                    except ValueError:
                        raise typer.BadParameter(f"{o.flag} {value!r}: {o.help}") from None
                if value is not None or o.default is not None:
                    given[o.name] = value
            return func(*args, **{into: given}, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
            *(p for p in signature.parameters.values() if p.name != into), *map(flag, options)])
        return wrapper

    return decorate


@app.command()
@_friendly
@_flags(cli_options(), "tuning")
@_flags(FitOptions.cli_options(), "options")
def fit(
    data: Annotated[Path, typer.Argument(help="Images: a folder with one subfolder per class, or a CSV with path,label columns. Texts: a CSV / TSV / JSONL with text and label columns, or a folder with one subfolder of .txt files per class. Which one is detected and printed.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the fitted model to (new, or a model folder with --overwrite).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Images: a zoo backbone (see `transferkit models`) or any timm name; default tf_efficientnet_lite0. Texts: a zoo encoder, a Hugging Face name, a model folder or a word-vector file; default all-MiniLM-L6-v2.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the fit's metrics.")] = False,
    options: dict | None = None,  # fit's other options (``jobs.FitOptions``)
    tuning: dict | None = None,  # the tuning flags (``finetune.tuners``)
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
    if not as_json:
        err.print(f"Data: {data}", highlight=False)
    clf = jobs.fit_to_folder(data, out_dir, jobs.FitOptions(**options or {}), model=model, tuning=tuning,
                             verbose=not as_json)
    from .runtime import is_primary_process

    if is_primary_process():
        show.fit(clf, out_dir, as_json)


@app.command()
@_friendly
def evaluate(
    model_dir: ModelArg,
    data: Annotated[Path, typer.Argument(help="Labeled test data in the form the model was fit on (class subfolders, a CSV, a JSONL).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (accuracy, macro_f1, per_class, confusion_matrix).")] = False,
    tta: Tta = False,
    runtime: Annotated[str, typer.Option(help=f"auto: what `predict` runs, ONNX Runtime where the model's export is already cached (for texts where PyTorch runs bfloat16 natively, only up to about {TEXT_FEW_MAX_CHARS:,} characters of text), else torch; or torch, or onnx (ONNX Runtime; a model folder is exported once and cached). An export folder (`transferkit export`) always runs on ONNX Runtime; int8: its int8 graph (`export --quantize int8`) whatever its check measured.")] = "auto",
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
    from .report import write_evaluation
    from .report.html import check_report_path

    if report is not None:
        check_report_path(report)
    model = load_predictor(model_dir, verbose=not as_json, tta=tta, runtime=predict_runtime(model_dir, runtime))
    chosen = (lambda loaded, items: for_texts(loaded, model_dir, items)) if runtime == "auto" else None  # as predict
    result = run_evaluation(model, data, reject=reject, runtime_for=chosen)
    if report is not None:
        write_evaluation(report, result, model, str(model_dir), str(data))
    json_line(result.to_dict()) if as_json else show.evaluated(result, model, model_dir, data, report)


@app.command()
@_friendly
def predict(
    model_dir: ModelArg,
    inputs: Annotated[Optional[list[str]], typer.Argument(metavar="INPUT...", help="Images: files or folders of images. Texts: the texts themselves, or files (.txt: one text per line; .csv/.jsonl: the text column); '-' or nothing reads one text per line from standard input.")] = None,
    top: Annotated[int, typer.Option(help="How many classes to show per input.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line: input, label, probability, top.")] = False,
    tta: Tta = False,
    runtime: Annotated[str, typer.Option(help=f"auto: on a CPU, the model's ONNX export where it is already cached (for texts where PyTorch runs bfloat16 natively, only up to about {TEXT_FEW_MAX_CHARS:,} characters of text: past that, PyTorch is the faster), and with --out a job of {AUTO_EXPORT_MIN_ITEMS:,} inputs or more exports once and caches it; else torch. On a CPU with integer dot products (VNNI, AMX) an image model's cached export runs in int8 (its backbones' int8 graphs made once per machine). Or torch, or onnx. An export folder (`transferkit export`) always runs on ONNX Runtime; int8: its int8 graph (`export --quantize int8`) whatever its check measured.")] = "auto",
    engine: Annotated[str, typer.Option(help="local, or ray: with --out, predict on Ray workers (a local cluster, or --ray-address).")] = "local",
    ray_address: RayAddress = None,
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
    from .openset import rejection_rate

    rate = rejection_rate(reject)  # checked before any work
    first = predict_runtime(model_dir, runtime)  # a cached export: no PyTorch model built
    model = load_predictor(model_dir, verbose=False, tta=tta, runtime=first)
    items = jobs.prediction_inputs(model, inputs or [], as_text, as_files)
    if runtime == "auto":
        model = for_texts(model, model_dir, items)  # many texts: PyTorch where it is the faster per text
    key = "text" if model.modality == "text" else "file"
    if engine == "ray" and out_file is None:
        raise typer.BadParameter("--engine ray writes its predictions to a file: give --out predictions.csv.")
    if out_file is not None:
        counts, ran_on = jobs.predict_to_out(model, model_dir, items, out_file, runtime=runtime, engine=engine,
                                             workers=workers, ray_address=ray_address, top=top, reject=rate,
                                             unknown=unknown_label, tta=tta, progress=not as_json)
        return json_line({"out": str(out_file), "runtime": ran_on, **counts}) if as_json else show.bulk(
            counts, out_file, unknown_label, model.noun, rejecting=rate is not None)
    answered = jobs.predict_here(model, items, top, rate, unknown_label)
    show.predictions(model, answered, key, top, as_json)
    if answered.skipped:
        raise typer.Exit(1)


@app.command()
@_friendly
def serve(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder (`transferkit fit`), hf://OWNER/NAME on the Hub, or an ONNX export (`transferkit export`).")],
    host: Annotated[str, typer.Option(help="The address to listen on; 127.0.0.1 (this machine only) unless you mean otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
    runtime: Annotated[str, typer.Option(help="auto (the runtime measured faster on this kind of machine: ONNX Runtime for image models on a CPU, exported once and cached, in int8 on a CPU with integer dot products), torch or onnx; int8: an export folder's int8 graph (`export --quantize int8`) whatever its check measured.")] = "auto",
    max_request_mb: Annotated[float, typer.Option(help="The largest request body accepted, in MiB.")] = 20.0,
    max_batch: Annotated[int, typer.Option(help="Inputs of concurrent requests run through the model together, up to this many (1: no batching).")] = 8,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /model, OpenAPI docs at /docs.

    Examples:
      transferkit serve model --port 8000
      curl -F files=@photo.jpg -F files=@other.png 'http://127.0.0.1:8000/predict?top=3'
      curl -H 'content-type: application/json' -d '{"texts": ["great value"]}' http://127.0.0.1:8000/predict
    """
    from .extras import require
    from .serve import Limits
    from .serve import serve as run_server

    require("serve")  # before the model loads
    limits = Limits(max_request_mb=max_request_mb, max_batch=max_batch)
    model = load_predictor(model_dir, verbose=False, tta=False, runtime=runtime, serving=True)
    show.serving(model, model_dir, host, port)
    run_server(model, host=host, port=port, limits=limits,
               model_info={"model": str(model_dir), "runtime": model.runtime, "graph": model.graph})


@app.command()
@_friendly
def export(
    model_dir: ModelArg,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="The folder to write the export to.")],
    format_: Annotated[str, typer.Option("--format", help="onnx: one graph from the input to class probabilities, run by ONNX Runtime.")] = "onnx",
    quantize: Annotated[Optional[str], typer.Option(help="int8: also write an int8 graph (ONNX Runtime's tools: static for images, calibrated on --check-data; dynamic for texts); give --check-data to measure what it costs in accuracy. It runs by itself only on a CPU with VNNI or AMX, and only where it changed at most 0.5% of the check's answers (so its accuracy there moved by no more); `--runtime int8` runs it anyway.")] = None,
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
    if format_ != "onnx":
        raise typer.BadParameter(f"--format must be onnx, got {format_!r}.")
    manifest = jobs.export_to_folder(model_dir, out_dir, check_data=check_data, quantize=quantize, overwrite=overwrite,
                                     progress=not as_json)
    json_line(manifest) if as_json else show.export(manifest, out_dir)


@app.command()
@_friendly
def cache(
    clear: Annotated[Optional[list[str]], typer.Option("--clear", help="Remove a part of the cache: features, graphs (image backbones' ONNX graphs), exports (models' ONNX exports made for predict and serve) or all. Repeat for several. Everything there is made again when needed; nothing else in the folder is touched.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the parts (or what was cleared) as JSON.")] = False,
) -> None:
    """Show what transferkit keeps in its cache folder ($TRANSFERKIT_CACHE, default ~/.cache/transferkit), or clear parts of it.

    Examples:
      transferkit cache
      transferkit cache --clear exports
      transferkit cache --clear all --json
    """
    from . import cache as cache_module

    info = cache_module.clear(clear) if clear else cache_module.summary()
    json_line(info) if as_json else show.cache(info, cleared=bool(clear))


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
        json_line({"repo": repo, "url": url})
    else:
        out.print(f"Pushed [bold]{model_dir}[/] to {repo}: {url}\nLoad it with hf://{repo}", highlight=False)


@app.command("app")
@_friendly
def app_command(
    project_dir: Annotated[Path, typer.Argument(metavar="PROJECT_DIR", help="The project folder (created if missing); the CLI reads its data/ too.")] = Path("transferkit-project"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="The address to listen on: 127.0.0.1 (this machine only) unless you mean otherwise; any other address requires a token.")] = "127.0.0.1",
    token: Annotated[Optional[str], typer.Option(envvar="TRANSFERKIT_APP_TOKEN", show_default=False, help="The token browsers must present (default on a non-local --host: a new random one, printed).")] = None,
    modality: Annotated[Optional[str], typer.Option(help="image or text, for a new project (else the page asks).")] = None,
    task: Annotated[Optional[str], typer.Option(help="What each example gets, for a new project: class (one), labels (several) or number (else the page asks).")] = None,
    model: Annotated[Optional[str], typer.Option(help="The backbone or text encoder to train with (default: the zoo's default).")] = None,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in the default browser.")] = False,
) -> None:
    """A local web app: collect and label examples, train, try the model live, fix what it gets wrong, download it.

    Examples:
      transferkit app birds-project                 # then open http://127.0.0.1:8765
      transferkit app reviews --modality text --port 9000
      transferkit app tickets --modality text --task labels     # several labels per text
      transferkit fit birds-project/data/train --out model    # the same data, from the command line
    """
    from .app.project import Project
    from .app.web import address, run_app
    from .extras import require

    require("app")  # before the project folder is made
    project = Project(project_dir, modality, task)
    url, token = address(host, port, token)
    show.app_address(project.root, url, host)
    run_app(project, host=host, port=port, token=token, model=model, open_browser=open_browser)


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

    clf, folder = run_pretrain(data, name, base=model, from_scratch=scratch, epochs=epochs, lr=lr,
                               batch_size=batch_size, input_size=input_size, seed=seed, overwrite=overwrite,
                               verbose=not as_json)
    show.pretrained(clf, name, folder, as_json)


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
    from .rank import rank_models

    names = [m.strip() for m in models_.split(",") if m.strip()] if models_ else None
    rows = rank_models(data, names, progress=not as_json, seed=seed)
    json_line([r.to_dict() for r in rows]) if as_json else show.ranking(rows, data)


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
    from .compare import curve_for_data, recommend
    from .report import comparison_report, write_report
    from .report.html import check_report_path

    check_report_path(out_file)
    points = curve_for_data(data, [s.strip() for s in (strategies or "features,scratch").split(",") if s.strip()],
                            [int(k) for k in ks.split(",") if k.strip()], seeds, model=model, test=test, epochs=epochs,
                            on_point=None if as_json else show.curve_point, on_note=show.note)
    advice = recommend(points)
    write_report(out_file, comparison_report(points, advice, str(data), model or "default model"))
    show.comparison(points, advice, out_file, as_json)


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
    from .zoo import list_models

    show.zoo(list_models(pattern, "text" if text_only else "image" if image_only else None), as_json)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
