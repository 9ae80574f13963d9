"""What transferkit keeps in its cache folder (``$TRANSFERKIT_CACHE``, default ``~/.cache/transferkit``), and clearing
parts of it.

Three parts, each a subfolder that transferkit alone writes:

- ``features``: one ``.npy`` file per featurizer and item (``features.FeatureCache``);
- ``graphs``: each image backbone's ONNX graph, shared by large extractions and exports
  (``onnx_features.backbone_graph``);
- ``exports``: the ONNX exports of model folders made for ``predict``, ``evaluate`` and ``serve``
  (``loading.cached_export``).

Everything in them is made again when needed: clearing costs time, never a result. Clearing removes those subfolders
and nothing else, since the cache folder may be one a user chose that holds other files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import BadInputError

PARTS = {"features": "features", "graphs": "onnx-features", "exports": "exports"}  # name -> subfolder


def cache_folder(folder: str | Path | None = None) -> Path:
    from .features import default_cache_dir

    return Path(folder) if folder else default_cache_dir()


def summary(folder: str | Path | None = None) -> dict:
    """Each part's entries (featurizers with cached features, graphs, exports), files and bytes, and the total."""
    root = cache_folder(folder)
    parts = {name: _measure(root / sub) for name, sub in PARTS.items()}
    return {"folder": str(root), "parts": parts, "bytes": sum(p["bytes"] for p in parts.values())}


def clear(parts: list[str], folder: str | Path | None = None) -> dict:
    """Remove ``parts`` (names of :data:`PARTS`, or ``all``) from the cache folder; what they held (``summary``'s
    form, for the removed parts)."""
    chosen = check_parts(parts)
    root = cache_folder(folder)
    for name in chosen:
        if (root / PARTS[name]).is_symlink():
            raise BadInputError(f"{root / PARTS[name]} is a symbolic link, which transferkit never writes; remove it "
                                "yourself if it should go. Nothing was cleared.")
    removed = {name: _measure(root / PARTS[name]) for name in chosen}
    for name in chosen:
        if (root / PARTS[name]).exists():
            shutil.rmtree(root / PARTS[name])
    return {"folder": str(root), "parts": removed, "bytes": sum(p["bytes"] for p in removed.values())}


def check_parts(parts: list[str]) -> list[str]:
    """The part names to clear, in :data:`PARTS`'s order; ``all`` is every part."""
    wrong = sorted(set(parts) - set(PARTS) - {"all"})
    if wrong or not parts:
        raise BadInputError(f"--clear takes {', '.join(PARTS)} or all; got {', '.join(wrong) or 'nothing'}.")
    return [name for name in PARTS if name in parts or "all" in parts]


def _measure(path: Path) -> dict:
    entries = sorted(path.iterdir()) if path.is_dir() and not path.is_symlink() else []
    files = size = 0
    for top, _, names in os.walk(path) if entries else ():
        for name in names:
            try:
                size += os.stat(os.path.join(top, name), follow_symlinks=False).st_size
            except OSError:  # removed meanwhile (another process clearing or replacing it)
                continue
            files += 1
    return {"entries": len([e for e in entries if not e.name.startswith(".")]), "files": files, "bytes": size}
