"""What transferkit keeps in its cache folder (``$TRANSFERKIT_CACHE``, default ``~/.cache/transferkit``), and clearing
parts of it.

Three parts, each a subfolder that transferkit alone writes:

- ``features``: one ``.npy`` file per featurizer and item (``features.FeatureCache``);
- ``graphs``: each image backbone's ONNX graph, shared by large extractions and exports
  (``onnx_features.backbone_graph``);
- ``exports``: the ONNX exports of model folders made by ``fit`` and for ``predict``, ``evaluate`` and ``serve``
  (``loading.cached_export``); the most recently used are kept (``prune_exports``).

Everything in them is made again when needed: clearing costs time, never a result. Clearing removes those subfolders
and nothing else, since the cache folder may be one a user chose that holds other files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import BadInputError

PARTS = {"features": "features", "graphs": "onnx-features", "exports": "exports"}  # name -> subfolder
EXPORTS_KEPT = 20  # the most recently used model exports kept (tens of MB each; every fit leaves one)
STALE_SECONDS = 24 * 3600  # a half-written export older than this was left by a process that was killed


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERKIT_CACHE") or Path.home() / ".cache" / "transferkit")


def part_folder(part: str, cache_dir: str | Path | None = None) -> Path:
    """Where ``part`` (a name of :data:`PARTS`) lives in the cache folder ``cache_dir`` (default: ``default_cache_dir``);
    each part's writer asks here, so the layout is written once."""
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / PARTS[part]


def used(entry: Path) -> None:
    """Mark a cached export as used now (its folder's modification time), which ``prune_exports`` keeps by."""
    try:
        os.utime(entry)
    except OSError:  # a cache this process cannot write: nothing is pruned there by it either
        pass


def prune_exports(keep: int = EXPORTS_KEPT, cache_dir: str | Path | None = None) -> list[Path]:
    """Remove all but the ``keep`` most recently used model exports, and half-written ones a killed process left a
    day or more ago; the exports removed. A removed export is made again by the next command that needs it, and a
    process running one keeps what it loaded."""
    import time

    folder = part_folder("exports", cache_dir)
    if not folder.is_dir() or folder.is_symlink():
        return []
    entries, stale = [], []
    for entry in folder.iterdir():
        try:
            when = entry.stat(follow_symlinks=False).st_mtime
        except OSError:  # removed meanwhile by another process
            continue
        if entry.is_dir() and not entry.is_symlink():
            if not entry.name.startswith("."):
                entries.append((when, entry))
            elif time.time() - when > STALE_SECONDS:
                stale.append(entry)
    removed = [entry for _, entry in sorted(entries, reverse=True)[keep:]] + stale
    for entry in removed:
        shutil.rmtree(entry, ignore_errors=True)
    return removed


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
