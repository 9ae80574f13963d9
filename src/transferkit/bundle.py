"""A fitted model as a folder: ``transferkit.json`` (configuration, labels, metrics, versions) and
``model.safetensors`` (every tensor). Never pickle.

Saving writes a sibling temporary folder and renames it into place, so a crash mid-save leaves either the old
bundle or none, never a half-written one that loads wrong.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import BundleError

FORMAT = "transferkit-bundle"
FORMAT_VERSION = 1
CONFIG_FILE = "transferkit.json"
WEIGHTS_FILE = "model.safetensors"


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


def save_bundle(path: str | Path, config: dict[str, Any], tensors: dict[str, torch.Tensor | np.ndarray], overwrite: bool = True) -> Path:
    """Write the bundle atomically. ``config`` must be JSON-serialisable; tensors are stored in safetensors."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not overwrite:
        raise BundleError(f"{path} already exists. Choose another --out or remove it.")
    if path.exists() and not (path / CONFIG_FILE).is_file():
        raise BundleError(f"{path} exists and is not a transferkit model folder; refusing to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        document = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": library_versions(), **config}
        flat = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach().cpu().contiguous())
                for k, v in tensors.items()}
        save_file(flat, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
        _write_text(staging / CONFIG_FILE, json.dumps(document, indent=2, sort_keys=False))
        _fsync_dir(staging)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_config(path: str | Path) -> tuple[dict[str, Any], Path]:
    """A bundle's configuration (and its weights file), with clear errors for missing or foreign folders."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path} is not a model folder. Create one with `transferkit fit DATA --out {path}`.")
    config_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not config_file.is_file() or not weights_file.is_file():
        raise BundleError(f"{path} is not a complete transferkit model: it needs {CONFIG_FILE} and {WEIGHTS_FILE}.")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{config_file} is not valid JSON ({exc}); the model folder is damaged.") from exc
    if config.get("format") != FORMAT:
        raise BundleError(f"{config_file} is not a transferkit model description.")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise BundleError(
            f"{path} was saved by a newer transferkit (format {config['format_version']}); upgrade transferkit to load it."
        )
    return config, weights_file


def load_bundle(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a bundle's configuration and tensors."""
    from safetensors.torch import load_file

    config, weights_file = read_config(path)
    try:
        tensors = load_file(str(weights_file))
    except Exception as exc:  # safetensors raises its own error type on damaged files
        raise BundleError(f"{weights_file} cannot be read ({exc}); the model folder is damaged.") from exc
    return config, tensors


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


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
