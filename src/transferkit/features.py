"""Batched feature extraction on the fast path, with an on-disk cache keyed by model and file content.

The cache key of a file is (backbone architecture + weights digest + preprocessing + precision, sha256 of the file
bytes), so a second run on the same images does not run the network again, and a renamed or moved image still
hits. Each feature vector is one ``.npy`` file, written atomically and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.images import ImageDecodeError, load_image
from .preprocessing import Preprocessing
from .progress import progress_bar


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERKIT_CACHE") or Path.home() / ".cache" / "transferkit")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` picks bfloat16 autocast where the hardware runs it natively, else float32."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}.")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Extraction:
    """Features of the readable files, in input order, and what happened to the others."""

    features: np.ndarray
    ok: np.ndarray
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    n_computed: int = 0
    n_cached: int = 0
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float | None:
        return self.n_computed / self.seconds if self.n_computed and self.seconds > 0 else None


class FeatureExtractor:
    """Runs a feature network over image files, reading and writing the feature cache."""

    def __init__(
        self,
        network: nn.Module,
        preprocessing: Preprocessing,
        model_key: str,
        *,
        precision: str = "auto",
        batch_size: int = 32,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        progress: bool = True,
        device: torch.device | None = None,
        mirror: bool = False,
    ) -> None:
        self.device = device or default_device()
        self.precision = resolve_precision(precision, self.device)
        self.network = network.eval().to(self.device, memory_format=torch.channels_last)
        self.preprocessing = preprocessing
        self.transform = preprocessing.eval_transform()
        if mirror:  # test-time augmentation: the left-right mirror image
            from torchvision.transforms import v2

            self.transform = v2.Compose([v2.RandomHorizontalFlip(p=1.0), self.transform])
        self.batch_size = batch_size
        self.progress = progress
        self.cache = FeatureCache({"model": model_key, "pre": preprocessing.to_dict(), "precision": self.precision,
                                   **({"mirror": True} if mirror else {})}, cache_dir, enabled=use_cache)

    def extract(self, paths: Sequence[str | Path], description: str = "Extracting features") -> Extraction:
        paths = [Path(p) for p in paths]
        rows: list[np.ndarray | None] = [None] * len(paths)
        skipped: list[tuple[Path, str]] = []
        todo: list[tuple[int, str]] = []  # (index, content digest); files are read again when decoded, so a large
        # dataset is never held in memory at once
        for i, path in enumerate(paths):
            try:
                data = path.read_bytes()
            except OSError as exc:
                skipped.append((path, "file not found" if isinstance(exc, FileNotFoundError) else str(exc)))
                continue
            digest = _sha(data)
            cached = self.cache.read(digest)
            if cached is not None:
                rows[i] = cached
            else:
                todo.append((i, digest))
        n_cached = sum(r is not None for r in rows)
        start = time.perf_counter()
        with progress_bar(description, total=len(todo), enabled=self.progress and bool(todo)) as advance:
            for batch_start in range(0, len(todo), self.batch_size):
                batch = todo[batch_start : batch_start + self.batch_size]
                tensors, kept = [], []
                for i, digest in batch:
                    try:
                        tensors.append(self.transform(load_image(paths[i])))
                        kept.append((i, digest))
                    except ImageDecodeError as exc:
                        skipped.append((paths[i], exc.reason))
                if tensors:
                    for (i, digest), row in zip(kept, self.forward(torch.stack(tensors))):
                        rows[i] = row
                        self.cache.write(digest, row)
                advance(len(batch))
        seconds = time.perf_counter() - start
        ok = np.array([r is not None for r in rows], dtype=bool)
        dim = next((r.shape[0] for r in rows if r is not None), 0)
        features = np.stack([r for r in rows if r is not None]) if ok.any() else np.zeros((0, dim), np.float32)
        order = {p: k for k, p in enumerate(paths)}
        skipped.sort(key=lambda s: order.get(s[0], 0))
        return Extraction(features, ok, skipped, n_computed=len(todo), n_cached=n_cached, seconds=seconds)

    def forward(self, batch: torch.Tensor) -> np.ndarray:
        """Features of a preprocessed batch on the fast path: channels_last and, where chosen, bfloat16 autocast."""
        x = batch.to(self.device, memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()
        )
        with torch.inference_mode(), autocast:
            out = self.network(x)
        return out.float().cpu().numpy()


class FeatureCache:
    """One ``.npy`` file per (extractor configuration, content digest), written atomically, read without pickle."""

    def __init__(self, key: dict, cache_dir: str | Path | None = None, enabled: bool = True) -> None:
        digest = _sha(json.dumps(key, sort_keys=True).encode())[:20]
        self.root = (Path(cache_dir) if cache_dir else default_cache_dir()) / "features" / digest
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
        target = self._file(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, row, allow_pickle=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class TextExtraction:
    """One feature vector per text, in input order."""

    features: np.ndarray
    n_computed: int = 0
    n_cached: int = 0
    n_long: int = 0  # texts longer than the encoder's window (truncated, or chunked)
    seconds: float = 0.0

    @property
    def texts_per_second(self) -> float | None:
        return self.n_computed / self.seconds if self.n_computed and self.seconds > 0 else None


class TextFeatureExtractor:
    """Runs a text encoder over texts in length-sorted batches (bfloat16 autocast where it pays), with the cache.

    ``long_text``: ``"truncate"`` keeps the first ``max_tokens`` tokens of a long text (what sentence-transformers
    does); ``"chunk"`` embeds every window of ``max_tokens`` (overlapping by an eighth) and averages them.
    """

    def __init__(self, encoder, *, long_text: str = "truncate", precision: str = "auto", batch_size: int = 32,
                 cache_dir: str | Path | None = None, use_cache: bool = True, progress: bool = True) -> None:
        if long_text not in ("truncate", "chunk"):
            raise ValueError(f"long_text must be 'truncate' or 'chunk', got {long_text!r}.")
        self.encoder = encoder
        self.long_text = long_text
        self.precision = resolve_precision(precision, torch.device("cpu")) if encoder.kind != "word-vectors" else "fp32"
        self.batch_size = batch_size
        self.progress = progress
        key = {"encoder": encoder.digest(), "precision": self.precision}
        if encoder.kind != "word-vectors":
            key["long_text"] = long_text
        self.cache = FeatureCache(key, cache_dir, enabled=use_cache)

    def extract(self, texts: Sequence[str], description: str = "Embedding texts") -> TextExtraction:
        digests = [_sha(t.encode("utf-8", errors="replace")) for t in texts]
        rows: list[np.ndarray | None] = [self.cache.read(d) for d in digests]
        n_cached = sum(r is not None for r in rows)
        todo = sorted((i for i, r in enumerate(rows) if r is None), key=lambda i: -len(texts[i]))
        n_long = 0
        start = time.perf_counter()
        with progress_bar(description, total=len(todo), enabled=self.progress and bool(todo)) as advance:
            for b in range(0, len(todo), self.batch_size):
                batch = todo[b : b + self.batch_size]
                vectors, long = self.embed([texts[i] for i in batch])
                n_long += long
                for i, row in zip(batch, vectors):
                    rows[i] = row
                    self.cache.write(digests[i], row)
                advance(len(batch))
        seconds = time.perf_counter() - start
        dim = self.encoder.dim
        features = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
        return TextExtraction(features.astype(np.float32), len(todo), n_cached, n_long, seconds)

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Embeddings of one batch and how many of its texts exceeded the window."""
        if self.encoder.kind == "word-vectors":
            return self.encoder.embed(texts), 0
        tokens, owner, n_long = self.encoder.tokenize(texts, self.long_text)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()
        with torch.inference_mode(), autocast:
            emb = self.encoder.forward(tokens).float()
        if len(owner) != len(texts):  # chunks: average each text's windows, then unit length again
            pooled = torch.zeros(len(texts), emb.shape[1]).index_add_(0, torch.from_numpy(owner), emb)
            emb = torch.nn.functional.normalize(pooled, dim=1)
        return emb.numpy(), n_long
