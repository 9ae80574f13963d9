"""A fitted model as a folder of components, each saving its own configuration and tensors (never pickle):

    model/
      transferkit.json          format and version, task, classes, the components in order, inference settings
      featurizer/config.json    the featurizer's configuration (its kind: image-backbone, sentence-encoder, ...)
      featurizer/model.safetensors
      head/config.json          the linear head
      head/model.safetensors
      report.json               what happened at fit: strategy, why, metrics with their sample sizes, skipped files
      manifest.json             the SHA-256 of each file above: loading refuses a folder that is not as it was saved

A model folder is data, never code: it may name only what the package's registries know (zoo entries, timm and
torchvision architectures, sentence-transformers' own modules; see ``zoo.saved_spec``), and loading imports nothing a
file names. The manifest catches edits and damage (a reordered class list, a missing file); it is a checksum, not a
signature: someone who edits a folder on purpose can rewrite it, and the allow-list is what keeps loading safe.
Folders of format 2 (transferkit 0.2-0.3) have no manifest and load unchecked.

How to run the model (``transferkit.json``) is kept apart from what happened when it was made (``report.json``):
nothing in the report changes how the model predicts. Folders written by transferkit 0.1 (format 1: one JSON and
one safetensors file) are read through :func:`migrate_v1`.

Saving writes a sibling temporary folder and renames it into place, so a crash mid-save leaves either the old model
or none, never a half-written one. Folders and files get the user's usual permissions (umask).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import umask
from .card import model_card
from .errors import BundleError

FORMAT = "transferkit-bundle"
FORMAT_VERSION = 3
MANIFEST_SINCE = 3  # the first format whose folders carry a manifest
CONFIG_FILE = "transferkit.json"
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "model.safetensors"
COMPONENT_CONFIG = "config.json"
REPORT_FILE = "report.json"
CARD_FILE = "README.md"  # the model card (transferkit.card), which the Hugging Face Hub shows
TASKS = {"image": "image-classification", "text": "text-classification"}  # the task a model folder names
MAX_JSON_BYTES = 256 << 20  # a model description larger than this is not one of ours


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("transferkit", "torch", "torchvision", "timm", "scikit-learn", "lightning", "safetensors",
                 "transformers", "sentence-transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def is_model_folder(path: Path) -> bool:
    """A folder holding a transferkit model description (a user's own file named transferkit.json is not one)."""
    try:
        read_document(path)
    except BundleError:
        return False
    return True


def save_model(path: str | Path, document: dict[str, Any], components: dict[str, tuple[dict, dict]],
               report: dict[str, Any], *, overwrite: bool = True) -> Path:
    """Write a model folder atomically. ``components`` maps a name to (config, tensors), in pipeline order.

    An existing model folder is replaced only with ``overwrite``; files of the user's inside it (a report saved
    there, say) are carried over into the new folder. Anything else at ``path`` is never replaced.
    """
    path = Path(path)
    check_destination(path, overwrite)
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, **document,
                "components": [{"name": name, "kind": config["kind"]} for name, (config, _) in components.items()],
                "versions": library_versions()}

    def write(staging: Path) -> None:
        for name, (config, tensors) in components.items():
            folder = staging / name
            folder.mkdir()
            _write_json(folder / COMPONENT_CONFIG, config)
            if tensors:
                _write_tensors(folder / WEIGHTS_FILE, tensors)
        _write_json(staging / REPORT_FILE, report)
        _write_text(staging / CARD_FILE, model_card(document, report, {n: c for n, (c, _) in components.items()}))
        _write_json(staging / CONFIG_FILE, document)
        files = [CONFIG_FILE, REPORT_FILE, *(f"{name}/{f}" for name, (_, tensors) in components.items()
                                             for f in (COMPONENT_CONFIG, WEIGHTS_FILE) if f != WEIGHTS_FILE or tensors)]
        _write_json(staging / MANIFEST_FILE, {"format": FORMAT, "sha256": {f: _sha256(staging / f) for f in files}})

    return _replace_folder(path, write, overwrite)


def check_destination(path: Path, overwrite: bool) -> None:
    """Refuse early what saving would refuse late: a folder that is not a model, or a model without ``overwrite``."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise BundleError(f"{path} exists and is not a folder; choose another --out.")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise BundleError(f"{ancestor} is not writable, so the model cannot be saved to {path}. Choose an --out in a "
                          "folder you can write to.")
    if path.exists():
        if not is_model_folder(path):
            if any(path.iterdir()):
                raise BundleError(f"{path} exists and is not a transferkit model folder; refusing to write into it. "
                                  "Choose another --out.")
        elif not overwrite:
            raise BundleError(f"{path} already holds a model. Pass --overwrite to replace it (your other files in "
                              "the folder are kept), or choose another --out.")


def _replace_folder(path: Path, write, overwrite: bool) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    except OSError as exc:
        raise BundleError(f"Cannot write the model next to {path}: {exc.strerror or exc}. Choose another --out.") from None
    try:
        os.chmod(staging, 0o777 & ~umask())
        write(staging)
        _fsync_dir(staging)
        if path.exists() and is_model_folder(path) and overwrite:
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.rename(staging, path)
            _carry_over(old, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if path.exists() and not any(path.iterdir()):
                path.rmdir()
            try:
                os.rename(staging, path)  # fails if another process created a model there meanwhile: never mixed
            except OSError:
                raise BundleError(f"{path} appeared while this model was being written (another fit with the same "
                                  "--out?). Nothing was replaced; choose another --out or pass --overwrite.") from None
        _fsync_dir(path.parent)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"Writing the model to {path} failed: {exc.strerror or exc}. The previous content of {path} "
                          "is unchanged; free some space or choose another --out.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _carry_over(old: Path, new: Path) -> None:
    """The user's own files in a model folder that is being replaced move into the new one."""
    ours = {CONFIG_FILE, WEIGHTS_FILE, REPORT_FILE, MANIFEST_FILE} | {p.name for p in new.iterdir()}
    for entry in old.iterdir():
        if entry.name not in ours:
            os.replace(entry, new / entry.name)


def read_document(path: str | Path) -> tuple[dict[str, Any], Path]:
    """A model folder's ``transferkit.json``, with clear errors for missing, foreign or newer folders."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path} is not a model folder. Create one with `transferkit fit DATA --out {path}`.")
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise BundleError(f"{path} is not a transferkit model: it has no {CONFIG_FILE}.")
    document = _read_json(config_file)
    if document.get("format") != FORMAT:
        raise BundleError(f"{config_file} is not a transferkit model description.")
    version = document.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BundleError(f"{path} was saved by a newer transferkit (format {version}); upgrade transferkit to load it.")
    return document, config_file


def featurizer_configs(path: str | Path) -> tuple[str, list[dict]]:
    """(modality, the saved configuration of each of a model folder's featurizers: its ``kind`` and settings) from its
    JSON alone, without loading any tensor; format-1 folders answer none."""
    path = Path(path)
    document, _ = read_document(path)
    if document.get("format_version") == 1 or not (path / "featurizer" / COMPONENT_CONFIG).is_file():
        return str(document.get("modality", "image")), []
    config = _read_json(path / "featurizer" / COMPONENT_CONFIG)
    members = config.get("members") if isinstance(config.get("members"), list) else [config]
    return str(document.get("modality")), [m for m in members if isinstance(m, dict)]


def check_model_folder(path: str | Path) -> dict[str, Any]:
    """A model folder's document, once its files are checked as loading checks them (the manifest of a folder that
    has one), without reading any tensor: what a cached export of the folder is run on only after."""
    path = Path(path)
    document, _ = read_document(path)
    if document.get("format_version") >= MANIFEST_SINCE:
        check_manifest(path)
    return document


def load_model_parts(path: str | Path) -> tuple[dict, dict[str, tuple[dict, dict]], dict]:
    """(document, components by name in order, report) of a model folder of any supported format."""
    path = Path(path)
    document = check_model_folder(path)
    if document.get("format_version") == 1:
        return migrate_v1(document, _read_tensors(path / WEIGHTS_FILE))
    components = {}
    for entry in document.get("components") or []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.isidentifier():
            raise BundleError(f"{path / CONFIG_FILE} lists a component {entry!r} that is not valid.")
        folder = path / name
        config = _read_json(folder / COMPONENT_CONFIG)
        weights = folder / WEIGHTS_FILE
        components[name] = (config, _read_tensors(weights) if weights.is_file() else {})
    report = _read_json(path / REPORT_FILE) if (path / REPORT_FILE).is_file() else {}
    return document, components, report


def check_manifest(path: Path) -> None:
    """Refuse a folder whose files are not the ones saved: each listed file must be there with its saved SHA-256,
    and every file loading reads must be listed."""
    manifest = _read_json(path / MANIFEST_FILE)
    listed = manifest.get("sha256")
    if manifest.get("format") != FORMAT or not isinstance(listed, dict):
        raise BundleError(f"{path / MANIFEST_FILE} is not a transferkit manifest; the model folder is damaged.")
    for name, digest in listed.items():
        if not isinstance(name, str) or not _MANIFEST_ENTRY.fullmatch(name):
            raise BundleError(f"{path / MANIFEST_FILE} lists {name!r}, which is no file of a model folder; the folder "
                              "was edited or is damaged.")
        file = path / name
        if not file.is_file():
            raise BundleError(f"{file} is missing; the model folder is incomplete. Get a complete copy, or refit.")
        if _sha256(file) != digest:
            raise BundleError(f"{file} is not the file that was saved (its SHA-256 differs from {MANIFEST_FILE}): the "
                              "model folder was edited or is damaged. Get an unmodified copy, or refit the model.")
    read = [CONFIG_FILE, *(p.relative_to(path).as_posix() for p in path.glob(f"*/{COMPONENT_CONFIG}")),
            *(p.relative_to(path).as_posix() for p in path.glob(f"*/{WEIGHTS_FILE}"))]
    unlisted = [name for name in read if name not in listed]
    if unlisted:
        raise BundleError(f"{path / unlisted[0]} is not in {MANIFEST_FILE}: it was added after the model was saved. "
                          "Remove it, or refit the model.")


_MANIFEST_ENTRY = re.compile(rf"[A-Za-z_]\w*/(?:{re.escape(COMPONENT_CONFIG)}|{re.escape(WEIGHTS_FILE)})"
                             rf"|{re.escape(CONFIG_FILE)}|{re.escape(REPORT_FILE)}")


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- format 1 (transferkit 0.1): one JSON and one safetensors file ---------------------------------------------

def migrate_v1(config: dict, tensors: dict) -> tuple[dict, dict[str, tuple[dict, dict]], dict]:
    """Read a format-1 folder as components. Only what inference needs is taken from it, each value checked: the
    old ``params`` (which once held a cache folder) are not passed to any constructor."""
    task = config.get("task")
    if task not in TASKS.values():
        raise BundleError(f"This folder holds a {task!r}, not a classifier.")
    modality = "image" if task == TASKS["image"] else "text"
    params = config.get("params") or {}
    inference: dict[str, Any] = {}
    if modality == "image":
        featurizer, head = _v1_image(config, tensors)
        if isinstance(params.get("tta"), bool):
            inference["tta"] = params["tta"]
    else:
        featurizer, head = _v1_text(config, tensors)
    if isinstance(params.get("batch_size"), int) and 1 <= params["batch_size"] <= 4096:
        inference["batch_size"] = params["batch_size"]
    document = {"format": FORMAT, "format_version": 1, "task": task, "modality": modality,
                "classes": config.get("classes"), "inference": inference,
                "components": [{"name": "featurizer", "kind": featurizer[0]["kind"]},
                               {"name": "head", "kind": head[0]["kind"]}]}
    report = {"strategy": config.get("strategy"), "reason": config.get("reason", ""),
              "metrics": config.get("metrics") or {}, "skipped": config.get("skipped") or [],
              "notes": config.get("notes") or [], "versions": config.get("versions") or {}, "migrated_from_format": 1}
    return document, {"featurizer": featurizer, "head": head}, report


def _v1_head(config: dict | None, tensors: dict) -> tuple[dict, dict]:
    keys = ("mean", "scale", "coef", "intercept")
    if config is None or any(f"head.{k}" not in tensors for k in keys):
        raise BundleError("The format-1 model folder has no head tensors; it is damaged.")
    return ({"kind": "linear-head", "norm": "standard", "C": config.get("C"), "class_weight": config.get("class_weight")},
            {k: tensors[f"head.{k}"] for k in keys})


def _v1_image(config: dict, tensors: dict) -> tuple[tuple[dict, dict], tuple[dict, dict]]:
    b = config.get("backbone") or {}
    classifier = b.get("classifier") or "classifier"
    spec = {"name": b.get("name"), "modality": "image", "kind": b.get("family"), "source": b.get("source"),
            "arch": b.get("arch"), "classifier": classifier}
    network = {k.removeprefix("network."): v for k, v in tensors.items() if k.startswith("network.")}
    n_out = int(config.get("network_classes") or 0)
    if n_out:  # the network gave logits itself: its classifier becomes the head
        weight, bias = network.pop(f"{classifier}.weight", None), network.pop(f"{classifier}.bias", None)
        if weight is None or bias is None:
            raise BundleError("The format-1 model folder's network has no classifier tensors; it is damaged.")
        d = weight.shape[1]
        head = ({"kind": "linear-head", "norm": "none"},
                {"mean": np.zeros(d), "scale": np.ones(d), "coef": np.asarray(weight, np.float64),
                 "intercept": np.asarray(bias, np.float64)})
    else:
        head = _v1_head(config.get("head"), tensors)
    featurizer = {"kind": "image-backbone", "spec": spec, "preprocessing": config.get("preprocessing") or {},
                  "tuned": config.get("strategy") != "features"}
    return (featurizer, network), head


def _v1_text(config: dict, tensors: dict) -> tuple[tuple[dict, dict], tuple[dict, dict]]:
    head = _v1_head(config.get("head"), tensors)
    vectorizer = config.get("vectorizer")
    if vectorizer:
        if "tfidf.idf" not in tensors:
            raise BundleError("The format-1 model folder's TF-IDF has no idf tensor; it is damaged.")
        return ({"kind": "tfidf", "params": vectorizer.get("params") or {}, "vocabulary": vectorizer["vocabulary"]},
                {"idf": tensors["tfidf.idf"]}), head
    e = config.get("encoder") or {}
    word_vectors = e.get("kind") == "word-vectors"
    spec = {"name": e.get("name"), "modality": "text", "kind": e.get("kind"),
            "source": "file" if e.get("source") == "vectors" else e.get("source"), "dim": e.get("dim"),
            "max_tokens": e.get("max_tokens"), "package": e.get("package"), "package_module": e.get("package_module"),
            "package_path": e.get("package_dir"), "hub_id": e.get("hub_id"), "path": e.get("path")}
    spec = {k: v for k, v in spec.items() if v is not None}
    if word_vectors:
        return ({"kind": "word-vectors", "spec": spec}, {}), head
    long_text = (config.get("params") or {}).get("long_text", "truncate")
    tuned = bool(e.get("tuned"))
    encoder = {k.removeprefix("encoder."): v for k, v in tensors.items() if k.startswith("encoder.")} if tuned else {}
    return ({"kind": "sentence-encoder", "spec": spec, "tuned": tuned,
             "long_text": long_text if long_text in ("truncate", "chunk") else "truncate"}, encoder), head


# -- files --------------------------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        if not path.is_file():
            raise BundleError(f"{path} is missing; the model folder is incomplete.")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise BundleError(f"{path} is too large to be a model description.")
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); the model folder is damaged.") from None
    except OSError as exc:
        raise BundleError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    if not isinstance(value, dict):
        raise BundleError(f"{path} is not a JSON object; the model folder is damaged.")
    return value


def _read_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise BundleError(f"{path} is missing; the model folder is incomplete.")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type on damaged files
        raise BundleError(f"{path} cannot be read ({exc}); the model folder is damaged.") from None


def _write_text(path: Path, text: str) -> None:
    # backslashreplace: a class name that was not valid UTF-8 (a folder name's surrogates) shows as \udcxx escapes
    with open(path, "w", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _write_json(path: Path, value: dict) -> None:
    _write_text(path, json.dumps(value, indent=1, default=_jsonable))


def _write_tensors(path: Path, tensors: dict) -> None:
    import torch
    from safetensors.torch import save_file

    flat = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach().cpu().contiguous())
            for k, v in tensors.items()}
    try:
        save_file(flat, str(path), metadata={"format": FORMAT})
    except OSError:
        raise
    except Exception as exc:  # safetensors reports a full disk as its own SafetensorError: an OSError to the caller
        raise OSError(f"{path.name} could not be written ({exc})") from None
    os.chmod(path, 0o666 & ~umask())  # safetensors creates its files owner-only

def _jsonable(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- single-file entries (the local zoo's backbones) ---------------------------------------------------------------

def save_bundle(path: str | Path, config: dict[str, Any], tensors: dict, overwrite: bool = True) -> Path:
    """One JSON and one safetensors file in a folder, written atomically (the local zoo's entries)."""
    path = Path(path)
    if path.exists() and not is_model_folder(path):
        raise BundleError(f"{path} exists and is not a transferkit folder; refusing to replace it.")

    def write(staging: Path) -> None:
        _write_tensors(staging / WEIGHTS_FILE, tensors)
        _write_json(staging / CONFIG_FILE, {"format": FORMAT, "format_version": 1, "versions": library_versions(),
                                            **config})

    return _replace_folder(path, write, overwrite)


def read_config(path: str | Path) -> tuple[dict[str, Any], Path]:
    """A single-file entry's configuration and its weights file."""
    document, _ = read_document(path)
    weights = Path(path) / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{path} is not a complete transferkit folder: it needs {WEIGHTS_FILE}.")
    return document, weights
