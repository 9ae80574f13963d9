"""A model for inference, whatever runs it: a model folder on PyTorch (a ``Predictor``: no scikit-learn estimator,
no Lightning), or an ONNX export on ONNX Runtime (no PyTorch either). ``predict``, ``evaluate`` and ``serve`` load
through here, so the choice of runtime and the export cache live in one place.

``runtime="onnx"`` exports a model folder once and keeps the export in the cache, keyed by the folder's content;
``"int8"`` runs an export folder's int8 graph whatever its check measured (``"onnx"`` takes it only where it kept
float32's answers, on a CPU with VNNI or AMX: ``onnx_runtime.onnx_graph``); ``"auto"`` takes the runtime measured
faster on this kind of machine (``runtime.faster_runtime``).
"""

from __future__ import annotations

import hashlib
import sys
from functools import cache
from pathlib import Path

from .errors import BadInputError, BundleError, TransferkitError

RUNTIMES = ("torch", "onnx", "int8", "auto")
AUTO_EXPORT_MIN_ITEMS = 5000  # an export takes a minute or more on a CPU: a job of this many items repays it
# Where PyTorch's bfloat16 is the faster per text, texts past this many characters repay starting PyTorch instead of
# running the cached export; each text counts up to TEXT_CHARS_READ, about what a 256-token encoder reads of an
# e-mail, since what it does not read costs nothing (the measurements: the docs' Speed page).
TEXT_FEW_MAX_CHARS = 150_000
TEXT_CHARS_READ = 600


def load_predictor(model: str | Path, *, runtime: str = "torch", tta: bool = False, verbose: bool = False,
                   serving: bool = False):
    """A model folder, ``hf://OWNER/NAME`` or an ONNX export, loaded for inference on ``runtime`` (``serving``: for a
    server, whose ONNX Runtime threads sleep between batches rather than spin, leaving the cores to its event loop)."""
    from .onnx_runtime import int8_graph, is_export
    from .share import local_model_path

    folder = local_model_path(model)
    if runtime not in RUNTIMES:
        raise BadInputError(f"--runtime must be auto, torch, onnx or int8, got {runtime!r}.")
    if runtime == "auto" and not is_export(folder):
        runtime = auto_runtime(folder, verbose)
    if is_export(folder) or runtime in ("onnx", "int8"):
        from .onnx_runtime import OnnxPredictor

        graph = int8_graph(folder) if runtime == "int8" else None
        loaded = (OnnxPredictor.load(folder, graph=graph, verbose=verbose, spinning=not serving) if is_export(folder)
                  else _load_cached_export(folder, graph=graph, verbose=verbose, serving=serving))
    else:
        from .predictor import Predictor

        loaded = Predictor.load(folder, verbose=verbose)
    if tta:
        if loaded.modality != "image":
            raise BadInputError("--tta applies to image models.")
        loaded.settings["tta"] = True
    return loaded


def _load_cached_export(folder: Path, *, graph, verbose: bool, serving: bool):
    """The model's cached export on ONNX Runtime, once the model folder is checked as loading it would be (an export
    cached before the folder was damaged never answers for it). A damaged cache entry (a file cut short or changed:
    the export's manifest no longer matches it) is removed, the cache being transferkit's, and the model exported
    again."""
    import shutil

    from .bundle import check_model_folder
    from .cache import used
    from .onnx_runtime import OnnxPredictor

    check_model_folder(folder)
    target = cached_export(folder, verbose)
    try:
        loaded = OnnxPredictor.load(target, graph=graph, verbose=verbose, spinning=not serving)
    except BundleError as exc:
        shutil.rmtree(target, ignore_errors=True)
        _say(f"The cached ONNX export of {folder} was damaged ({str(exc).removesuffix(' Export the model again.')}); "
             "exporting it again.")
        return OnnxPredictor.load(cached_export(folder, verbose), graph=graph, verbose=verbose, spinning=not serving)
    used(target)  # kept by prune_exports before exports used longer ago
    return loaded


def bulk_runtime(loaded, model: str | Path, n_items: int, *, verbose: bool = False) -> str:
    """The runtime a job of ``n_items`` runs on, the runtime left to auto: ``loaded``'s, or ONNX Runtime where that is
    faster on this machine and the job repays the export (made here, once, and cached). Models of several labels or
    numbers stay on ``loaded``'s."""
    if loaded.runtime == "onnx" or getattr(loaded, "kind", "class") != "class":
        return loaded.runtime
    from .share import local_model_path

    return auto_runtime(local_model_path(model), verbose=verbose, n_items=n_items)


def for_bulk_job(loaded, model: str | Path, n_items: int, *, tta: bool = False, verbose: bool = False):
    """The predictor to run a job of ``n_items`` with, the runtime left to auto: ``loaded``, or the model on ONNX
    Runtime where :func:`bulk_runtime` says so."""
    if loaded.runtime != "onnx" and bulk_runtime(loaded, model, n_items, verbose=verbose) == "onnx":
        return load_predictor(model, runtime="onnx", tta=tta)
    return loaded


def for_texts(loaded, model: str | Path, texts: list[str]):
    """The predictor to run ``texts`` with, the runtime left to auto: ``loaded``, or the model on PyTorch where
    ``loaded`` is a text model's cached export, loaded before the texts were read (``predict_runtime``), PyTorch is
    the faster per text on this machine (``faster_runtime``), and the texts are enough to repay starting it
    (``TEXT_FEW_MAX_CHARS``)."""
    from .onnx_runtime import is_export
    from .share import local_model_path

    if loaded.runtime != "onnx" or loaded.modality != "text" or getattr(loaded, "kind", "class") != "class":
        return loaded
    if sum(min(len(t), TEXT_CHARS_READ) for t in texts) <= TEXT_FEW_MAX_CHARS:
        return loaded
    folder = local_model_path(model)
    if is_export(folder) or _faster_runtime_of(folder) != "torch":  # asked last: it imports PyTorch
        return loaded
    return load_predictor(folder, runtime="torch")


def export_for_predict(folder: Path, verbose: bool = False) -> Path | None:
    """Leave a just-saved model folder's ONNX export in the cache where ``predict`` of a few inputs, left to auto,
    would run it (a model of classes whose networks the export covers, on a CPU: ``faster_runtime(few=True)``), so
    that no later command starts PyTorch for it. None where nothing would run it, or where the export failed: that is
    said, and the model folder stays as saved."""
    if not _of_classes(folder) or _faster_runtime_of(folder, few=True) != "onnx":
        return None
    try:
        return cached_export(folder, verbose)
    except (TransferkitError, OSError) as exc:  # OSError: a cache folder that cannot be written
        _say(f"The model is saved, but its ONNX export failed ({exc}); predict runs it on PyTorch.")
    except KeyboardInterrupt:  # the model is saved: Ctrl-C skips this last step, and the command ends as usual
        _say(f"Export skipped; the model in {folder} is saved. Predict runs it on PyTorch until one export is made "
             "(`predict --runtime onnx`, `serve` or `transferkit export`).")
    return None


def _faster_runtime_of(folder: Path, few: bool = False) -> str:
    """``runtime.faster_runtime`` for a model folder, from its saved featurizer configurations read once: PyTorch for
    a text model that averages the windows of long texts (``long_text="chunk"``), which an export cannot do
    (``export._members`` refuses it)."""
    from .bundle import featurizer_configs
    from .runtime import faster_runtime

    modality, configs = featurizer_configs(folder)
    if any(c.get("long_text") == "chunk" for c in configs):
        return "torch"
    return faster_runtime(modality, {str(c.get("kind")) for c in configs}, few=few)


def _of_classes(folder: Path) -> bool:
    """Whether a model folder answers one class per item (models of several labels or numbers run on PyTorch)."""
    from .bundle import read_document

    target = read_document(folder)[0].get("target")
    return not isinstance(target, dict) or target.get("kind", "class") == "class"


def predict_runtime(model: str | Path, runtime: str) -> str:
    """The runtime to load ``model`` on for ``predict`` and ``evaluate``, before their items are read: ``runtime``
    unless it is auto. Left to auto, ONNX Runtime where the model's export is already cached, even where PyTorch is
    the faster per item (``faster_runtime(few=True)``: starting PyTorch costs more than a few items), else PyTorch.
    Once the items are read, a job large enough moves: texts to PyTorch where it is the faster (``for_texts``), a
    ``predict --out`` to a new export where that repays it (``for_bulk_job``). Models of several labels or numbers
    stay on PyTorch."""
    from .onnx_runtime import is_export
    from .share import local_model_path

    if runtime != "auto":
        return runtime
    folder = local_model_path(model)
    if is_export(folder):
        return "torch"  # an export folder runs on ONNX Runtime whatever is asked (``load_predictor``)
    if not _of_classes(folder):
        return "torch"
    return auto_runtime(folder, n_items=0, few=True)


def auto_runtime(folder: Path, verbose: bool = False, n_items: int | None = None, few: bool = False) -> str:
    """The runtime measured faster for this model on this kind of machine (``few``: for a few inputs, whose time is
    starting the runtime: ``faster_runtime``). ONNX needs a one-off export (cached): for a job of ``n_items`` it is
    made only when the job is large enough to repay it; a server (``n_items`` None) always makes it. A model the
    export cannot take runs on PyTorch."""
    from .onnx_runtime import is_export

    chosen = _faster_runtime_of(folder, few=few)
    if chosen == "onnx" and n_items is not None and n_items < AUTO_EXPORT_MIN_ITEMS \
            and not is_export(export_folder(folder)):
        return "torch"
    if chosen == "onnx":
        try:
            cached_export(folder, verbose)
        except TransferkitError as exc:
            _say(f"Running on PyTorch: the ONNX export failed ({exc}).")
            return "torch"
    return chosen


def export_folder(folder: Path) -> Path:
    """Where the cached ONNX export of a model folder lives (keyed by the folder's content and this transferkit's
    version: an export of another version may lack what this one writes, such as the open-set part)."""
    from . import __version__
    from .cache import part_folder

    return part_folder("exports") / f"{_content_digest(str(Path(folder).resolve()))}-{__version__}"


def cached_export(folder: Path, verbose: bool = False) -> Path:
    """The ONNX export of a model folder, made once and kept in the cache. Each process exports into a folder of its
    own and renames it into place; where another process got there first, its export stays (a rename onto a folder
    that holds files fails) and this one is dropped, so a process reading the export never sees it replaced."""
    import os
    import shutil

    from .bundle import CONFIG_FILE
    from .onnx_runtime import is_export

    if not (Path(folder) / CONFIG_FILE).is_file():
        raise BundleError(f"{folder} is neither a model folder nor an ONNX export.")
    target = export_folder(folder)
    if not is_export(target):
        from .export import export_onnx  # PyTorch and the exporter: only to make the export
        from .predictor import Predictor

        if verbose:
            _say(f"Exporting {folder} to ONNX (once; cached in {target}) ...")
        target.parent.mkdir(parents=True, exist_ok=True)
        mine = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.rmtree(mine, ignore_errors=True)  # left by a process of this number that was killed
        export_onnx(Predictor.load(folder), mine, progress=verbose, for_this_machine=True)
        if target.exists() and not is_export(target):
            shutil.rmtree(target, ignore_errors=True)  # a folder that is no export (emptied, or left half-removed)
        try:
            mine.rename(target)
        except OSError:  # another process's export is there now: it is the same model's, and someone may read it
            shutil.rmtree(mine, ignore_errors=True)
        from .cache import prune_exports

        prune_exports()
    return target


def _content_digest(folder: str) -> str:
    """A model folder's content digest: its manifest's (which holds every file's SHA-256), read every time (a folder
    refitted in place with --overwrite by this process has another), or, for folders saved before manifests, every
    file's (``_files_digest``)."""
    from .bundle import MANIFEST_FILE

    manifest = Path(folder) / MANIFEST_FILE
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()[:20]
    return _files_digest(folder)


@cache
def _files_digest(folder: str) -> str:
    """The digest of every file of a folder saved before manifests, read once per process (the report and card left
    out): a new fit never writes such a folder."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in ("report.json", "README.md")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _say(message: str) -> None:
    print(message, file=sys.stderr)
