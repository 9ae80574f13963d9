"""Whole jobs from files to files, as the commands run them and as a script can: fit labeled data into a model
folder, and turn a command's list of inputs into the items to predict. The CLI parses options and prints; the
work, and every check of the options against the data, is here.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict, dataclass, field, fields
from inspect import signature
from pathlib import Path
from typing import Any

from .errors import BadInputError, BundleError


def _option(default, help: str, only: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "only": only})


@dataclass
class FitOptions:
    """``fit``'s options besides the data, the destination, the model and tuning, each written once: its default,
    its help (the CLI's), and the one kind of data it applies to where there is one (``only``). The tuning options
    are the tuners' (``finetune.tuners``)."""

    weights: Path | None = _option(None, only="image", help=(
        "Images: local weights file for the backbone (safetensors or a state dict)."))
    unlabeled: Path | None = _option(None, help=(
        "Items without labels to learn from: a folder, a CSV / TSV / JSONL, or a .txt file of lines. The head"
        " on frozen features uses them where the labeled data shows it helps (self-training), and centres on "
        "them when they come from another source than the labels; auto then saves one backbone that learned "
        "the side-by-side backbones' labels of them (see --distill). Copies of labeled items count once; "
        "unreadable ones are skipped."))
    unlabeled_has_others: bool = _option(False, help=(
        "The --unlabeled items may hold things of none of the classes (a camera trap's other animals, "
        "yesterday's traffic): `predict --reject` then compares new items with the ones least like the "
        "labeled, where held-out classes show it helps. Leave it off for a pool of the labeled classes alone."))
    other: Path | None = _option(None, help=(
        "Examples of things that belong to none of the classes (a folder, a CSV / TSV / JSONL, or a .txt file"
        " of lines): `predict --reject` tells such items by the score that separates these best, and can "
        "compare new items with them."))
    strategy: str = _option("auto", help=(
        "auto: measures, chooses and says why. features: frozen backbone/encoder + logistic regression. "
        "finetune: images: probe-initialised head, top stages retrained; texts: contrastive tuning on every "
        "pair of class-balanced batches (SetFit's objective). scratch: no transfer (images: same network, "
        "random init; texts: TF-IDF)."))
    seed: int = _option(0, help="Seed for the validation split, the head's cross-validation and training.")
    val_fraction: float | None = _option(None, help=(
        "Share of each class held out to validate tuning (default: 0.2, or 0.1 once every class has 50 "
        "labels)."))
    text_column: str | None = _option(None, only="text", help=(
        "Texts: the CSV / JSONL column holding the text (found by itself when named text, sentence, content, "
        "...)."))
    label_column: str | None = _option(None, help=(
        "Tables: the column holding the label (found by itself when named label, class, category, ...)."))
    path_column: str | None = _option(None, only="image", help=(
        "Image tables: the column holding the image paths (found by itself when named path, file, ... or when"
        " it lists image files)."))
    long_text: str | None = _option(None, only="text", help=(
        "Texts longer than the encoder's window (256 tokens for MiniLM): 'truncate' (default) keeps the "
        "beginning, 'chunk' averages every window."))
    time_budget: float | None = _option(None, help=(
        "auto: seconds tuning may take; over budget it keeps the frozen features."))
    export: bool = _option(True, help=(
        "Then export the model to ONNX into the cache (`transferkit cache`) where a `predict` of a few inputs "
        "would run that export (a model of classes on a CPU): it then starts without PyTorch, and `serve`, "
        "`evaluate` and `predict --out` run it where ONNX Runtime is the faster. --no-export leaves the export "
        "to the first command that needs it."))
    distill: bool = _option(True, help=(
        "auto with --unlabeled: save one backbone that learned the side-by-side backbones' labels of the "
        "unlabeled items (kept unless held-out labels show it significantly worse); --no-distill keeps the "
        "side-by-side backbones, at several backbones' cost per prediction."))
    resume: bool = _option(False, only="image", help=(
        "Images: continue a fit that was interrupted, from its last checkpoint."))
    batch_size: int = _option(32, help="Images or texts per batch when extracting features and predicting.")
    precision: str = _option("auto", help="auto (bfloat16 where this machine runs it natively), bf16 or fp32.")
    engine: str = _option("local", help=(
        "local, or ray: extract the features with Ray workers first (a local cluster, or --ray-address), then"
        " fit."))
    ray_address: str | None = _option(None, help=(
        "With --engine ray: the cluster to use (auto, or HEAD:6379); none starts a local one."))
    workers: int = _option(2, help="With --engine ray: how many workers (actors) extract or predict.")
    overwrite: bool = _option(False, help="Replace the model already in --out (other files in that folder are kept).")
    restart: bool = _option(False, only="image", help=(
        "Images: discard the checkpoints an interrupted fit left, and start afresh."))
    task: str = _option("auto", help=(
        "What a label is. auto: decides and says how (lists, or cells with | or ;, are several labels; "
        "fractions are numbers). class: one class per item. labels: several per item (split at --separator, "
        "or an item listed once per label). number: predict a number (ridge on frozen features)."))
    separator: str | None = _option(None, help=(
        "Several labels per item: what splits them in a table cell (auto looks for | and ;)."))
    min_precision: float | None = _option(None, help=(
        "Several labels per item: give a label only where its out-of-fold precision reaches this (default: "
        "each label's threshold with the best F1)."))

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def only_for(cls) -> dict[str, str]:
        """The options that apply to one kind of data, and that kind."""
        return {f.name: f.metadata["only"] for f in fields(cls) if f.metadata["only"]}

    @classmethod
    def cli_options(cls) -> list:
        """One CLI flag per field, in the tuners' terms (``finetune.tuners.CliOption``)."""
        from typing import get_args, get_type_hints

        from .finetune.tuners import CliOption

        hints = get_type_hints(cls)
        return [CliOption(f.name, "--" + f.name.replace("_", "-"),
                          next(t for t in (*get_args(hints[f.name]), hints[f.name]) if t is not type(None)),
                          f.metadata["help"], None, (f.metadata["only"],) if f.metadata["only"] else ("image", "text"),
                          f.default) for f in fields(cls)]


FILE_LIKE = (".txt", ".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".png", ".jpg", ".jpeg")


def fit_to_folder(data: Path, out_dir: Path, options: FitOptions | None = None, *, model: str | None = None,
                  tuning: dict[str, Any] | None = None, verbose: bool = True):
    """Fit the labeled ``data`` (images or texts, detected) and save the model in ``out_dir``, its ONNX export in the
    cache where a later ``predict`` would run it (``options.export``); returns the fitted classifier. ``options`` not
    given take their defaults; options that apply to the other kind of data are errors, as are tuning options the
    strategy has no use for. An interrupted image fit keeps its checkpoints beside ``out_dir``: ``resume`` continues
    it, ``restart`` discards them."""
    from .bundle import check_destination
    from .data import is_text_source
    from .finetune.tuners import check_applies
    from .runtime import is_primary_process
    from .strategies import strategy_from_options
    from .zoo._registry import DEFAULTS

    o = options or FitOptions()
    check_destination(out_dir, o.overwrite)  # before any work: a fit never ends in "cannot save there"
    if o.engine not in ("local", "ray"):
        raise BadInputError(f"--engine must be local or ray, got {o.engine!r}.")
    modality = "text" if is_text_source(data, text_column=o.text_column, path_column=o.path_column) else "image"
    tuning = tuning or {}
    check_applies({**tuning, **o.given()}, modality, str(data), FitOptions.only_for())
    chosen = strategy_from_options(o.strategy, tuning, modality, o.time_budget, o.distill)
    from . import ImageClassifier, TextClassifier

    cls = TextClassifier if modality == "text" else ImageClassifier
    params = {k: v for k, v in o.given().items()  # the classifier's own options (its strategy is built above)
              if k in signature(cls).parameters and k != "strategy"}
    if modality == "image":
        workdir = _checkpoints(out_dir, o.resume, o.restart)
        params |= {"workdir": str(workdir), **({"weights": str(o.weights)} if o.weights else {})}
    clf: Any = cls(model or DEFAULTS[modality], chosen, verbose=verbose, **params)
    if o.engine == "ray":
        warm_with_ray(clf, data, o.strategy, o.workers, o.ray_address, o.unlabeled, verbose)
    clf.fit(data, X_unlabeled=o.unlabeled, X_other=o.other, unlabeled_has_others=o.unlabeled_has_others)
    clf.save(out_dir, overwrite=o.overwrite)  # atomic: the model folder appears only now, complete (rank 0 only)
    if modality == "image" and is_primary_process():
        shutil.rmtree(workdir, ignore_errors=True)
    if o.export and is_primary_process():
        from .loading import export_for_predict

        export_for_predict(out_dir, verbose)
    return clf


def _checkpoints(out_dir: Path, resume: bool, restart: bool) -> Path:
    """Where an image fit keeps its checkpoints; what an interrupted fit left there is kept unless told otherwise."""
    from .runtime import is_primary_process

    workdir = out_dir.parent / f".{out_dir.name}.training"
    if workdir.exists() and not resume and is_primary_process():
        if not restart:
            raise BadInputError(f"An interrupted fit left checkpoints in {workdir}; they are kept. Pass --resume to "
                                "continue it, or --restart to discard them and start afresh.")
        shutil.rmtree(workdir)
    return workdir


def warm_with_ray(clf, data: Path, strategy: str, workers: int, address: str | None, unlabeled: Path | None,
                  verbose: bool = True) -> int:
    """Extract the features a fit will read with Ray workers, into the local cache (the fit then reads them): the
    labeled items', and the unlabeled ones' it will learn from (the same seeded sample of a large pool)."""
    from .data.labeled import sample_pool
    from .distributed import warm_cache_with_ray
    from .unlabeled import MAX_ITEMS

    items = list(clf._read(data).items)
    if unlabeled is not None:
        items += sample_pool(list(clf._read(unlabeled).items), clf.seed, MAX_ITEMS)
    featurizer = clf._featurizer()
    featurizers = [featurizer, *(featurizer.companions() if strategy == "auto" else [])]
    total = sum(warm_cache_with_ray(f, items, workers=workers, batch_size=clf.batch_size, cache_dir=clf.cache_dir,
                                    address=address) for f in featurizers)
    if verbose:
        print(f"Ray: {workers} worker(s) extracted {total} feature rows into the cache.", file=sys.stderr)
    return total


def prediction_inputs(model, inputs: list[str], as_text: bool = False, as_files: bool = False) -> list:
    """The items a command line names. Images: files, folders and tables of paths. Texts: '-' reads standard
    input, a file is read as texts, anything else is a text; a word that looks like a file name but names no file is
    an error, not a text to classify (``as_text`` says it is one)."""
    if as_text and as_files:
        raise BadInputError("--text and --files exclude each other.")
    if model.modality == "image":
        if as_text or as_files:
            raise BadInputError("--text and --files apply to text models; this model classifies images.")
        if not inputs:
            raise BadInputError("give image files or folders to classify")
        return [p for f in map(Path, inputs) for p in (
            model.read(f).items if f.is_dir() or f.suffix.lower() in (".csv", ".tsv", ".jsonl") else (f,))]
    texts: list[str] = []
    for item in inputs or ["-"]:
        if item == "-" and not as_text:
            texts += [line for line in sys.stdin.read().splitlines() if line.strip()]
            continue
        one_line = len(item) < 4096 and "\n" not in item
        looks_like_file = one_line and ("/" in item or item.lower().endswith(FILE_LIKE)) and " " not in item.strip()
        if as_text:
            texts.append(item)
        elif as_files or looks_like_file:
            if not Path(item).is_file():
                raise BadInputError(f"{item} is not a file. To classify these words as a text, pass --text.")
            texts += list(model.read(Path(item)).items)
        elif one_line and Path(item).is_file():
            texts += list(model.read(Path(item)).items)
        else:
            texts.append(item)
    if not texts:
        raise BadInputError("no text to classify: give texts as arguments, files, or lines on standard input")
    return texts


@dataclass
class Answered:
    """What ``predict`` found for the readable items, by name, and the readings over all of them: the accuracy read
    from the model's confidence, and how many looked unlike every trained class (none while rejecting)."""

    names: list[str]
    answers: list[dict]
    skipped: list
    label_free: dict | None = None
    unfamiliar: dict | None = None


def predict_here(model, items: list, top: int = 1, reject: float | None = None,
                 unknown: str = "unknown") -> Answered:
    """Predict ``items`` in this process (``Inference.answer``); an error when none of them can be read."""
    from .openset import unfamiliar

    answers, proba, scores, ok, skipped = model.answer(items, top, reject, unknown)
    names = [str(p) for p, keep in zip(items, ok) if keep]
    if not names:
        raise BadInputError(f"None of the {len(items)} input(s) could be read, so nothing was predicted"
                            + (f" (e.g. {skipped[0][0]}: {skipped[0][1]})." if skipped else "."))
    return Answered(names, answers, skipped, model.label_free(proba),
                    unfamiliar(model.open_set, scores) if reject is None else None)


def predict_to_out(model, model_dir, items: list, out_file: Path, *, runtime: str = "auto", engine: str = "local",
                   workers: int = 2, ray_address: str | None = None, top: int = 1, reject: float | None = None,
                   unknown: str = "unknown", tta: bool = False, progress: bool = True) -> tuple[dict, str]:
    """Predict ``items`` into ``out_file`` (``bulk.predict_to_file``, or on Ray workers with ``engine="ray"``); with
    the runtime left to auto, a large job runs on ONNX Runtime where that is faster here (``loading.bulk_runtime``;
    Ray's workers load the export made here once). The counts, and the runtime that ran it."""
    if engine not in ("local", "ray"):
        raise BadInputError(f"--engine must be local or ray, got {engine!r}.")
    if engine == "ray":
        from .distributed import predict_with_ray
        from .loading import bulk_runtime

        chosen = bulk_runtime(model, model_dir, len(items), verbose=progress) if runtime == "auto" else runtime
        return predict_with_ray(model_dir, items, out_file, workers=workers, top=top, runtime=chosen,
                                address=ray_address, progress=progress, reject=reject, unknown=unknown), chosen
    from .bulk import predict_to_file
    from .loading import for_bulk_job

    if runtime == "auto":
        model = for_bulk_job(model, model_dir, len(items), tta=tta, verbose=progress)
    return predict_to_file(model, items, out_file, top=top, progress=progress, reject=reject,
                           unknown=unknown), model.runtime


def export_to_folder(model_dir, out_dir: Path, *, check_data: Path | None = None, quantize: str | None = None,
                     overwrite: bool = False, progress: bool = False) -> dict:
    """Export a model folder to ONNX in ``out_dir`` (``export.export_onnx``), checked on the items of
    ``check_data`` (labeled where ``quantize`` should say what it costs) or on generated inputs; its manifest
    (``progress``: a bar over the export's steps). Without either, the model's export in the cache (``fit`` leaves
    one), where there is one, is copied (what is returned then names it as ``copied_from``)."""
    from .export import copy_export, export_onnx
    from .predictor import Predictor

    if check_data is None and quantize is None:
        from .bundle import check_model_folder
        from .loading import export_folder
        from .onnx_runtime import is_export
        from .share import local_model_path

        folder = local_model_path(model_dir)
        if is_export(cached := export_folder(folder)):
            check_model_folder(folder)  # a folder damaged since its export was made is refused, as loading it is
            try:
                return {**copy_export(cached, out_dir, overwrite=overwrite), "copied_from": str(cached)}
            except BundleError:  # the cached copy was damaged: the cache is transferkit's, so it goes, and we export
                shutil.rmtree(cached, ignore_errors=True)
    predictor = Predictor.load(model_dir)
    items = labels = None
    if check_data is not None:
        data = predictor.read(check_data, require_labels=quantize is not None)
        items, labels = list(data.items), list(data.labels or []) or None
    return export_onnx(predictor, out_dir, check_items=items, check_labels=labels, quantize=quantize,
                       overwrite=overwrite, progress=progress)
