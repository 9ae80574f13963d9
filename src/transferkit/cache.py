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


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERKIT_CACHE") or Path.home() / ".cache" / "transferkit")


def part_folder(part: str, cache_dir: str | Path | None = None) -> Path:
    """Where ``part`` (a name of :data:`PARTS`) lives in the cache folder ``cache_dir`` (default: ``default_cache_dir``);
    each part's writer asks here, so the layout is written once."""
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / PARTS[part]


def summary(folder: str | Path | None = None) -> dict:
    """Each part's entries (featurizers with cached features, graphs, exports), files and bytes, and the total."""
    root = Path(folder) if folder else default_cache_dir()
    parts = {name: _measure(part_folder(name, root)) for name in PARTS}
    return {"folder": str(root), "parts": parts, "bytes": sum(p["bytes"] for p in parts.values())}


def clear(parts: list[str], folder: str | Path | None = None) -> dict:
    """Remove ``parts`` (names of :data:`PARTS`, or ``all``) from the cache folder; what they held (``summary``'s
    form, for the removed parts)."""
    root = Path(folder) if folder else default_cache_dir()
    paths = {name: part_folder(name, root) for name in check_parts(parts)}
    for path in paths.values():
        if path.is_symlink():
            raise BadInputError(f"{path} is a symbolic link, which transferkit never writes; remove it yourself if it "
                                "should go. Nothing was cleared.")
    removed = {name: _measure(path) for name, path in paths.items()}
    for path in paths.values():
        if path.exists():
            shutil.rmtree(path)
    return {"folder": str(root), "parts": removed, "bytes": sum(p["bytes"] for p in removed.values())}


def check_parts(parts: list[str]) -> list[str]:
    """The part names to clear, in :data:`PARTS`'s order; ``all`` is every part."""
    wrong = sorted(set(parts) - set(PARTS) - {"all"})
    if wrong or not parts:
        raise BadInputError(f"--clear takes {', '.join(PARTS)} or all; got {', '.join(wrong) or 'nothing'}.")
    return [name for name in PARTS if name in parts or "all" in parts]


def _measure(path: Path) -> dict:
    if not path.is_dir() or path.is_symlink():
        return {"entries": 0, "files": 0, "bytes": 0}
    files = size = 0
    for top, _, names in os.walk(path):
        for name in names:
            try:
                size += os.stat(os.path.join(top, name), follow_symlinks=False).st_size
            except OSError:  # removed meanwhile (another process clearing or replacing it)
                continue
            files += 1
    entries = sum(not e.name.startswith(".") for e in path.iterdir())
    return {"entries": entries, "files": files, "bytes": size}
