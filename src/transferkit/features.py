"""One extraction loop for every featurizer, with an on-disk cache keyed by featurizer and content.

The cache key of an item is (the featurizer's digest: weights, preprocessing, settings, precision; the item's
content digest), so a second run on the same images or texts does not run the network again, and a renamed or
copied file still hits. Each feature vector is one ``.npy`` file, written atomically and read with
``allow_pickle=False``. A cache that cannot be written (a full or read-only disk) is reported once and extraction
goes on without it.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import write_atomic
from .cache import part_folder
from .data.files import ItemError
from .onnx_features import agrees, onnx_transform
from .progress import progress_bar

if TYPE_CHECKING:  # the featurizers import PyTorch: a predict on ONNX Runtime asks this module for the cache folder
    from .featurizers import Featurizer


@dataclass
class Extraction:
    """Features of the readable items, in input order, and what happened to the others."""

    features: np.ndarray  # or a sparse matrix (TF-IDF)
    ok: np.ndarray  # which items were readable (their rows are in ``features``)
    skipped: list[tuple[object, str]] = field(default_factory=list)
    n_computed: int = 0
    n_cached: int = 0
    n_overlong: int = 0  # texts longer than the encoder's window
    seconds: float = 0.0

    @property
    def per_second(self) -> float | None:
        return self.n_computed / self.seconds if self.n_computed and self.seconds > 0 else None


def extract(featurizer: Featurizer, items: Sequence, *, batch_size: int = 32, cache_dir: str | Path | None = None,
            use_cache: bool = True, progress: bool = False, description: str = "Extracting features",
            onnx: bool = False) -> Extraction:
    """Features of ``items`` through ``featurizer``: cached rows are read, the rest computed in batches. ``onnx``: a
    large job may run on ONNX Runtime where it is faster and agrees with PyTorch (``onnx_features``; a fit's
    extractions ask for it, a predictor's runtime is the user's choice)."""
    items = list(items)
    if not featurizer.cacheable:
        start = time.perf_counter()
        features = featurizer.transform([featurizer.prepare(i) for i in items])
        return Extraction(features, np.ones(len(items), bool), n_computed=len(items),
                          seconds=time.perf_counter() - start)
    members = getattr(featurizer, "members", None)
    parts = _extract_together(members or [featurizer], items, batch_size=batch_size, cache_dir=cache_dir,
                              use_cache=use_cache, progress=progress, description=description, onnx=onnx)
    return _combine(featurizer, parts, len(items)) if members else parts[0]


def _extract_together(featurizers: list[Featurizer], items: list, *, batch_size: int, cache_dir, use_cache: bool,
                      progress: bool, description: str, onnx: bool) -> list[Extraction]:
    """One pass over the items for featurizers of one modality (a concatenation's members), each with its own
    cache: an item any of them still needs is read and decoded once (``decode``), and each prepares it its way."""
    first = featurizers[0]
    caches = [FeatureCache(f.digest(), cache_dir, enabled=use_cache) for f in featurizers]
    rows: list[list[np.ndarray | None]] = [[None] * len(items) for _ in featurizers]
    keys: list[list[str | None]] = [[None] * len(items) for _ in featurizers]
    skipped: list[dict[int, str]] = [{} for _ in featurizers]
    for j, (f, cache) in enumerate(zip(featurizers, caches)):
        for i, item in enumerate(items):
            try:
                keys[j][i] = f.item_key(item)
            except ItemError as exc:
                skipped[j][i] = exc.reason
                continue
            rows[j][i] = cache.read(keys[j][i])
    needs = [{i for i in range(len(items)) if rows[j][i] is None and i not in skipped[j]}
             for j in range(len(featurizers))]
    todo = [i for i in first.batch_order(items) if any(i in n for n in needs)]
    n_cached = [sum(r is not None for r in rows[j]) for j in range(len(featurizers))]
    n_overlong = [0] * len(featurizers)
    transforms = [f.transform for f in featurizers]
    faster = [onnx_transform(f, cache_dir, len(n)) if onnx and n else None for f, n in zip(featurizers, needs)]
    start = time.perf_counter()
    with progress_bar(description, total=len(todo), enabled=progress and bool(todo)) as advance:
        for b in range(0, len(todo), batch_size):
            decoded: dict[int, object] = {}
            for i in todo[b: b + batch_size]:
                try:
                    decoded[i] = first.decode(items[i])
                except ItemError as exc:  # unreadable: skipped by every featurizer that had no row of it
                    for j, n in enumerate(needs):
                        if i in n:
                            skipped[j][i] = exc.reason
            for j, f in enumerate(featurizers):
                batch, prepared = [], []
                for i in (i for i in decoded if i in needs[j]):
                    try:
                        prepared.append(f.prepare(decoded[i]))
                        batch.append(i)
                    except ItemError as exc:
                        skipped[j][i] = exc.reason
                if not prepared:
                    continue
                n_overlong[j] += f.count_overlong(prepared)
                computed = transforms[j](prepared)
                if faster[j] is not None:  # the first batch both ways: ONNX Runtime runs the rest if they agree
                    transforms[j] = faster[j] if agrees(computed, faster[j](prepared)) else transforms[j]
                    faster[j] = None
                for i, row in zip(batch, computed):
                    rows[j][i] = row
                    caches[j].write(keys[j][i], row)
            advance(len(todo[b: b + batch_size]))
    seconds = time.perf_counter() - start
    return [_extraction(items, rows[j], skipped[j], len(needs[j]), n_cached[j], n_overlong[j],
                        seconds / len(featurizers)) for j in range(len(featurizers))]


def _extraction(items: list, rows: list, skipped: dict[int, str], n_computed: int, n_cached: int, n_overlong: int,
                seconds: float) -> Extraction:
    ok = np.array([r is not None for r in rows], dtype=bool)
    dim = next((r.shape[0] for r in rows if r is not None), 0)
    features = np.stack([r for r in rows if r is not None]) if ok.any() else np.zeros((0, dim), np.float32)
    return Extraction(features.astype(np.float32, copy=False), ok, [(items[i], skipped[i]) for i in sorted(skipped)],
                      n_computed=n_computed, n_cached=n_cached, n_overlong=n_overlong, seconds=seconds)


def _combine(featurizer, parts: list[Extraction], n: int) -> Extraction:
    ok = np.logical_and.reduce([p.ok for p in parts])
    blocks = []
    for p in parts:  # each part holds rows for its own readable items; keep the rows every member could read
        rows = np.flatnonzero(p.ok)
        keep = np.isin(rows, np.flatnonzero(ok))
        blocks.append(p.features[keep])
    skipped = {str(item): (item, why) for p in parts for item, why in p.skipped}
    return Extraction(featurizer.combine(blocks) if ok.any() else np.zeros((0, featurizer.dim), np.float32), ok,
                      list(skipped.values()), n_computed=max(p.n_computed for p in parts),
                      n_cached=min(p.n_cached for p in parts), n_overlong=max(p.n_overlong for p in parts),
                      seconds=sum(p.seconds for p in parts))


class FeatureCache:
    """One ``.npy`` file per (featurizer digest, item digest), written atomically, read without pickle."""

    def __init__(self, featurizer_digest: str, cache_dir: str | Path | None = None, enabled: bool = True) -> None:
        self.root = part_folder("features", cache_dir) / featurizer_digest[:20]
        self.enabled = enabled

    def _file(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.npy"

    def read(self, digest: str) -> np.ndarray | None:
        if not self.enabled:
            return None
        try:
            return np.load(self._file(digest), allow_pickle=False)
        except (OSError, ValueError):  # missing, or a damaged file: recompute it
            return None

    def write(self, digest: str, row: np.ndarray) -> None:
        if not self.enabled:
            return
        try:
            write_atomic(self._file(digest), lambda fh: np.save(fh, row, allow_pickle=False), private=True)
        except OSError as exc:  # a full or read-only cache disk must not stop the fit: go on without the cache
            self.enabled = False
            print(f"Note: the feature cache in {self.root.parent.parent} cannot be written ({exc.strerror or exc}); "
                  "going on without it (set TRANSFERKIT_CACHE to another folder to cache features).", file=sys.stderr)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
