"""Text encoders for a :class:`ModelSpec`: sentence-transformers folders (shipped in a package, from the hub, or
local) and word-vector files in the standard formats (GloVe text, word2vec binary or text, fastText ``.vec``,
optionally gzipped)."""

from __future__ import annotations

import gzip
import hashlib
import logging
import pickle
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInputError, WeightsUnavailableError
from . import _hub
from ._spec import VECTOR_SUFFIXES as VECTOR_SUFFIXES
from ._spec import ModelSpec

SIF_A = 1e-3  # SIF weight a / (a + p(w)) (Arora et al., 2017)


def encoder_folder(spec: ModelSpec) -> Path:
    """The local folder holding a sentence-transformers / transformers model for ``spec``."""
    if spec.source == "local":
        return Path(spec.path)
    if spec.source == "package":
        from ._registry import packaged_path

        folder = packaged_path(spec)
        if not (folder / "config.json").is_file():
            raise WeightsUnavailableError(f"{spec.package} is installed but {folder} is incomplete; reinstall it.")
        return folder
    if spec.source == "hub":
        advice = (f"Download the model elsewhere (e.g. `git clone https://huggingface.co/{spec.hub_id}`) and pass its "
                  "folder: --model PATH/TO/FOLDER, or TextClassifier(encoder=PATH). `transferkit models --text` "
                  "lists encoders that work offline.")
        return _hub.snapshot(spec.hub_id, advice)
    raise BadInputError(f"{spec.name} is a word-vector file, not a model folder.")


@contextmanager
def _quiet_libraries():
    """sentence-transformers and transformers log warnings about heads and pooling while loading, and transformers
    draws a "Loading weights" bar; keep them quiet for this call only (the levels and the bar's setting belong to the
    user's program and are restored)."""
    from transformers.utils import logging as hf_logging

    loggers = [logging.getLogger(n) for n in ("sentence_transformers", "transformers")]
    levels = [lg.level for lg in loggers]
    bars = hf_logging.is_progress_bar_enabled()
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_sentence_transformer(spec: ModelSpec, device: str = "cpu"):
    """A ``SentenceTransformer`` for ``spec``; a plain transformers folder gets mean pooling and normalisation."""
    from sentence_transformers import SentenceTransformer

    folder = encoder_folder(spec)
    if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
        raise WeightsUnavailableError(f"{folder} is not a transformers or sentence-transformers model folder (it has "
                                      "no config.json).")
    _check_module_classes(folder)
    with _quiet_libraries():
        try:
            return SentenceTransformer(str(folder), device=device, local_files_only=True)
        except (OSError, ValueError, ImportError, AttributeError, RuntimeError, pickle.UnpicklingError) as exc:
            # a folder whose modules.json names a class that is no sentence-transformers module, a pickled
            # pytorch_model.bin that transformers refuses to unpickle, missing files: the library's reason, no trace
            raise WeightsUnavailableError(f"Cannot load the text encoder from {folder}: {_short(exc)}") from None


def _check_module_classes(folder: Path) -> None:
    """A sentence-transformers folder names the class of each module in ``modules.json``, and loading imports it. Only
    sentence-transformers' own classes are allowed, whatever that library's version would do with others."""
    import json

    modules = folder / "modules.json"
    if not modules.is_file():
        return
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsUnavailableError(f"Cannot load the text encoder from {folder}: {modules} is not readable JSON "
                                      f"({_short(exc)}).") from None
    types = [e.get("type") if isinstance(e, dict) else e for e in entries] if isinstance(entries, list) else [entries]
    foreign = [t for t in types if not (isinstance(t, str) and t.startswith("sentence_transformers."))]
    if foreign:
        raise WeightsUnavailableError(
            f"Cannot load the text encoder from {folder}: its modules.json names {foreign[0]!r}, which is not a "
            "sentence-transformers module, and transferkit never imports code a model folder names. Use an encoder "
            "made of sentence-transformers' own modules.")


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:400] + " ..."


# -- word vectors -----------------------------------------------------------------------------------------------

@dataclass
class WordVectors:
    """Word vectors and the word order of their file (frequency order for GloVe, word2vec and fastText)."""

    words: list[str]
    vectors: np.ndarray  # float32, words x dim
    lowercase: bool  # whether the vocabulary is lowercase (GloVe): texts are lowercased to match

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}
        # Zipf's law from the frequency rank stands in for counts the files do not carry: p(rank r) ~ 1 / (r H_n)
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        p = 1.0 / (ranks * np.log(len(self.words) + 1.0) + 1e-12)
        self.sif = (SIF_A / (SIF_A + p)).astype(np.float32)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def read_word_vectors(path: str | Path, max_words: int | None = None) -> WordVectors:
    """Read GloVe text (no header), word2vec text / fastText ``.vec`` (``count dim`` header) or word2vec binary.

    Files may be gzipped. Malformed lines raise an error naming the file and line.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(4096)
    binary = b"\0" in head or _looks_binary(head)
    words: list[str] = []
    rows: list[np.ndarray] = []
    with opener(path, "rb") as fh:
        first = fh.readline()
        parts = first.split()
        header = len(parts) == 2 and all(p.isdigit() for p in parts)
        if binary:
            if not header:
                raise BadInputError(f"{path} looks binary but has no word2vec header line ('<count> <dim>').")
            count, dim = int(parts[0]), int(parts[1])
            for i in range(min(count, max_words or count)):
                word = _read_binary_word(fh)
                data = fh.read(4 * dim)
                if len(data) < 4 * dim:
                    raise BadInputError(f"{path} ends early: vector {i + 1} of {count} is cut short.")
                words.append(word)
                rows.append(np.frombuffer(data, dtype="<f4"))
        else:
            dim = int(parts[1]) if header else len(parts) - 1
            line_no = 1 if header else 0
            for raw in _lines(first, fh, header):
                line_no += 1
                if max_words and len(words) >= max_words:
                    break
                fields = raw.rstrip(b"\r\n").split(b" ")
                if fields and not fields[-1]:
                    fields = fields[:-1]
                if len(fields) != dim + 1:
                    if not raw.strip():
                        continue
                    raise BadInputError(f"{path}, line {line_no}: expected a word and {dim} numbers, got "
                                        f"{len(fields) - 1} numbers. Is this a GloVe / word2vec / fastText file?")
                try:
                    rows.append(np.array(fields[1:], dtype=np.float32))
                except ValueError:
                    raise BadInputError(f"{path}, line {line_no}: the vector holds a value that is not a number.") from None
                words.append(fields[0].decode("utf-8", errors="replace"))
    if not words:
        raise BadInputError(f"{path} holds no word vectors.")
    sample = words[: min(len(words), 2000)]
    lowercase = sum(w != w.lower() for w in sample) < 0.01 * len(sample)
    return WordVectors(words, np.vstack(rows).astype(np.float32), lowercase)


def _lines(first: bytes, fh, header: bool):
    if not header:
        yield first
    yield from fh


def _looks_binary(head: bytes) -> bool:
    body = head.split(b"\n", 1)[1] if b"\n" in head else b""
    return sum(b < 9 or 13 < b < 32 for b in body[:2048]) > 10


def _read_binary_word(fh) -> str:
    chars = bytearray()
    while True:
        c = fh.read(1)
        if not c or c == b" ":
            break
        if c != b"\n":
            chars.extend(c)
    return chars.decode("utf-8", errors="replace")


def file_digest(path: str | Path) -> str:
    """Content digest of a (possibly large) file: its size and sha256 of its first and last megabyte."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), 2)
            h.update(fh.read())
    return h.hexdigest()[:16]
