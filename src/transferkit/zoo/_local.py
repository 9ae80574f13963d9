"""The local model zoo: backbones trained here (``transferkit pretrain``), reusable by name like the built-in ones.

Each entry is a folder ``<zoo>/<name>/`` holding ``transferkit.json`` (architecture, preprocessing, what it was
trained on) and ``model.safetensors`` (the backbone's weights without its old classifier), written atomically. The
zoo lives in ``$TRANSFERKIT_MODELS``, by default ``~/.local/share/transferkit/models``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import BadInputError, BundleError
from ._spec import ModelSpec

ENTRY_TASK = "backbone"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def local_zoo_dir() -> Path:
    return Path(os.environ.get("TRANSFERKIT_MODELS") or Path.home() / ".local" / "share" / "transferkit" / "models")


def list_local_models() -> list[ModelSpec]:
    root = local_zoo_dir()
    if not root.is_dir():
        return []
    return [spec for folder in sorted(root.iterdir()) if (spec := _read_entry(folder)) is not None]


def local_model(name: str) -> ModelSpec | None:
    return _read_entry(local_zoo_dir() / name) if NAME.fullmatch(name) else None


def _read_entry(folder: Path) -> ModelSpec | None:
    from ..bundle import read_config

    try:
        config, weights = read_config(folder)
    except BundleError:
        return None
    if config.get("task") != ENTRY_TASK:
        return None
    b = config["backbone"]
    trained = config.get("trained_on", {})
    return ModelSpec(
        name=folder.name, modality="image", kind=b.get("kind", b.get("family")), source="local", arch=b["arch"],
        path=str(weights), classifier=b["classifier"], dim=b.get("feature_dim"),
        preprocessing_override=config["preprocessing"], license="(yours)",
        description=(f"pretrained here on {trained.get('data', '?')} ({trained.get('n_classes', '?')} classes, "
                     f"{trained.get('n_images', '?')} images, {trained.get('how', '?')})"),
    )


def write_entry(name: str, network, spec: ModelSpec, preprocessing, trained_on: dict, overwrite: bool = False) -> Path:
    """Save ``network`` (its classifier already removed) as the local zoo entry ``name``."""
    from ..bundle import save_bundle

    if not NAME.fullmatch(name):
        raise BadInputError(f"Model name {name!r}: use letters, digits, '.', '_' or '-' (up to 64), starting with a "
                            "letter or digit.")
    target = local_zoo_dir() / name
    if target.exists() and not overwrite:
        raise BadInputError(f"The local zoo already has {name!r} ({target}). Pick another --name or pass --overwrite.")
    config = {
        "task": ENTRY_TASK,
        "backbone": {"kind": spec.kind, "arch": spec.arch, "classifier": spec.classifier, "feature_dim": spec.dim,
                     "base": spec.name},
        "preprocessing": preprocessing.to_dict(),
        "trained_on": trained_on,
    }
    return save_bundle(target, config, dict(network.state_dict()), overwrite=True)
