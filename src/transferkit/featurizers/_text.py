"""Texts into features: a transformer sentence encoder (sentence-transformers), word vectors averaged with SIF
weights, or TF-IDF over words and word pairs (the no-transfer baseline)."""

from __future__ import annotations

import re

import numpy as np

from ..data.texts import plain_text
from ..runtime import autocast, check_precision, default_device, resolve_precision
from ..zoo import ModelSpec, file_digest, load_sentence_transformer, read_word_vectors, weights_digest
from ..zoo._text import SIF_A
from ._base import Featurizer, content_digest

LONG_TEXT = ("truncate", "chunk")


def _text_key(item) -> str:
    return content_digest(plain_text(item).encode("utf-8"))


class _TextFeaturizer(Featurizer):
    modality = "text"
    cheap_scratch = True  # TF-IDF

    def item_key(self, item) -> str:
        return _text_key(item)

    def prepare(self, item) -> str:
        return plain_text(item)

    def scratch(self, seed: int = 0) -> Featurizer:
        """No transfer for texts: TF-IDF learned from the training texts alone."""
        return Tfidf()


class SentenceEncoder(_TextFeaturizer):
    """A transformer sentence encoder. Texts longer than its window are truncated to ``max_tokens`` or, with
    ``long_text="chunk"``, split into windows (overlapping by an eighth) whose embeddings are averaged."""

    kind = "sentence-encoder"
    tunable = True
    config_keys = ("spec", "long_text", "tuned")  # and the weights, as tensors, once tuned

    def __init__(self, spec: ModelSpec, model=None, *, long_text: str = "truncate", precision: str = "auto",
                 tuned: bool = False, device=None) -> None:
        from ..errors import BadInputError

        if long_text not in LONG_TEXT:
            raise BadInputError(f"long_text must be one of {', '.join(LONG_TEXT)}, got {long_text!r}.")
        self.spec = spec
        self.model = model if model is not None else load_sentence_transformer(spec)
        self.model.eval()
        self.long_text = long_text
        self.precision = check_precision(precision)
        self.tuned = tuned
        self.device = device or default_device()
        self._placed = False
        self._digest: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length or self.spec.max_tokens or 256)

    @property
    def dim(self) -> int:
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(dimension())

    @property
    def resolved_precision(self) -> str:
        return resolve_precision(self.precision, self.device.type)

    def weights_digest(self) -> str:
        if self._digest is None:
            self._digest = weights_digest(self.model)
        return self._digest

    def digest(self) -> str:
        return content_digest(repr(("st", self.weights_digest(), self.max_tokens, self.long_text,
                                    self.resolved_precision)).encode())[:20]

    def batch_order(self, items: list) -> list[int]:
        return sorted(range(len(items)), key=lambda i: -len(str(items[i])))

    def tokenize(self, texts: list[str], max_tokens: int | None = None, chunk: bool = False) -> tuple[dict, np.ndarray]:
        """Token tensors (one row per text, or per window when chunking) and the text each row belongs to."""
        limit = max_tokens or self.max_tokens
        enc = self.tokenizer(texts, truncation=True, max_length=limit, padding=True, return_tensors="pt",
                             return_overflowing_tokens=chunk, stride=limit // 8 if chunk else 0)
        owner = np.asarray(enc.pop("overflow_to_sample_mapping")) if chunk else np.arange(len(texts))
        return dict(enc), owner

    def count_overlong(self, batch: list) -> int:
        ids = self.tokenizer(batch, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return int(sum(len(t) > self.max_tokens for t in ids))

    def forward(self, tokens: dict):
        """Sentence embeddings of a tokenized batch (differentiable; the caller picks grad / no-grad)."""
        if not self._placed:
            self.model.to(self.device)
            self._placed = True
        return self.model({k: v.to(self.device) for k, v in tokens.items()})["sentence_embedding"]

    def transform(self, batch: list) -> np.ndarray:
        import torch

        tokens, owner = self.tokenize(batch, chunk=self.long_text == "chunk")
        with torch.inference_mode(), autocast(self.resolved_precision, self.device.type):
            emb = self.forward(tokens).float().cpu()
        if len(owner) != len(batch):  # windows: average each text's, then unit length again
            pooled = torch.zeros(len(batch), emb.shape[1]).index_add_(0, torch.from_numpy(owner), emb)
            emb = torch.nn.functional.normalize(pooled, dim=1)
        return emb.numpy()

    def fingerprint(self) -> dict:
        return {"weights_digest": self.weights_digest()}

    def tensors(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()} if self.tuned else {}

    @classmethod
    def arguments(cls, config: dict, tensors: dict) -> dict:
        from ..errors import BundleError
        from ..zoo._registry import saved_spec

        spec = saved_spec(config.get("spec"), "text", ("sentence-transformers",))
        arguments = {"spec": spec, "long_text": config.get("long_text", "truncate"), "tuned": bool(config.get("tuned"))}
        if arguments["tuned"]:
            model = load_sentence_transformer(spec)
            try:
                model.load_state_dict(tensors, strict=True)
            except RuntimeError as exc:
                raise BundleError(f"The tuned encoder's weights do not fit {spec.name} ({str(exc).splitlines()[0]})."
                                  " Refit the model.") from None
            arguments["model"] = model
        return arguments

    def check_saved(self, config: dict) -> None:
        from ..errors import BundleError

        if not self.tuned and config.get("weights_digest") and self.weights_digest() != config["weights_digest"]:
            raise BundleError(f"The encoder {self.spec.name} ({self.spec.path or self.spec.hub_id or self.spec.package})"
                              " is not the one this model was fitted with: its weights changed. Refit the model.")


TOKEN = re.compile(r"\w+(?:['’]\w+)?|[^\w\s]", re.UNICODE)


class WordVectorAverage(_TextFeaturizer):
    """Sentence features from word vectors: the SIF-weighted average of a text's word vectors (Arora et al., 2017:
    frequent words count less). Words missing from the vectors are skipped; long texts use every word."""

    kind = "word-vectors"
    config_keys = ("spec",)

    def __init__(self, spec: ModelSpec, vectors=None) -> None:
        self.spec = spec
        self.vectors = vectors or read_word_vectors(spec.path)
        self._file_digest = file_digest(spec.path)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return self.vectors.dim

    def digest(self) -> str:
        return content_digest(repr(("wv", self._file_digest, SIF_A)).encode())[:20]

    def transform(self, batch: list) -> np.ndarray:
        wv = self.vectors
        out = np.zeros((len(batch), wv.dim), dtype=np.float32)
        for i, text in enumerate(batch):
            tokens = TOKEN.findall(text.lower() if wv.lowercase else text)
            idx = [j for j in (wv.index.get(t, wv.index.get(t.lower(), -1)) for t in tokens) if j >= 0]
            if idx:
                weights = wv.sif[idx]
                out[i] = (weights[:, None] * wv.vectors[idx]).sum(0) / weights.sum()
        return out

    def fingerprint(self) -> dict:
        return {"file_digest": self._file_digest}

    @classmethod
    def arguments(cls, config: dict, tensors: dict) -> dict:
        from pathlib import Path

        from ..errors import BadInputError
        from ..zoo._registry import saved_spec

        spec = saved_spec(config.get("spec"), "text", ("word-vectors",))
        if not Path(spec.path).is_file():
            raise BadInputError(f"The model uses the word vectors in {spec.path}, which is missing. Put the file back "
                                "there, or refit with the vectors' new location.")
        return {"spec": spec}

    def check_saved(self, config: dict) -> None:
        from ..errors import BadInputError

        if config.get("file_digest") and self._file_digest != config["file_digest"]:
            raise BadInputError(f"{self.spec.path} is not the word-vector file the model was fitted with (its content "
                                "changed). Refit the model.")


class Tfidf(_TextFeaturizer):
    """TF-IDF over words and word pairs, learned from the training texts: no pretrained knowledge at all."""

    kind = "tfidf"
    config_keys = ("params", "vocabulary")  # the vectorizer's, and its idf weights as a tensor
    cacheable = False
    learns_from_data = True
    PARAMS = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1, "max_features": 100_000,
              "strip_accents": "unicode"}

    def __init__(self, vectorizer=None) -> None:
        if vectorizer is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(**self.PARAMS, dtype=np.float64)
        self.vectorizer = vectorizer

    @property
    def name(self) -> str:
        return "TF-IDF"

    @property
    def dim(self) -> int:
        return len(getattr(self.vectorizer, "vocabulary_", {}))

    def describe(self) -> str:
        return f"TF-IDF ({self.dim} words and word pairs)"

    def digest(self) -> str:
        return content_digest(repr(sorted(self.vectorizer.vocabulary_.items())).encode())[:20]

    def fit(self, items: list) -> Tfidf:
        self.vectorizer.fit([str(t) for t in items])
        return self

    def transform(self, batch: list):
        return self.vectorizer.transform(batch)

    @property
    def params(self) -> dict:
        """The vectorizer's settings (JSON: tuples as lists)."""
        return {k: (list(x) if isinstance(x, tuple) else x) for k, x in self.vectorizer.get_params().items()
                if k in (*self.PARAMS, "lowercase", "norm", "use_idf", "smooth_idf")}

    @property
    def vocabulary(self) -> list[str]:
        """The learned words and word pairs, in column order."""
        v = self.vectorizer.vocabulary_
        return sorted(v, key=v.get)

    def tensors(self) -> dict:
        import torch

        return {"idf": torch.from_numpy(np.asarray(self.vectorizer.idf_, dtype=np.float64))}

    @classmethod
    def arguments(cls, config: dict, tensors: dict) -> dict:
        from sklearn.feature_extraction.text import TfidfVectorizer

        params = {k: (tuple(x) if k == "ngram_range" else x) for k, x in config["params"].items()}
        vectorizer = TfidfVectorizer(**params, dtype=np.float64)
        vectorizer.vocabulary_ = {w: i for i, w in enumerate(config["vocabulary"])}
        vectorizer.idf_ = np.asarray(tensors["idf"], dtype=np.float64)
        return {"vectorizer": vectorizer}


def text_featurizer(spec: ModelSpec, *, long_text: str = "truncate", precision: str = "auto") -> Featurizer:
    """The featurizer for a text model of the registry."""
    if spec.kind == "word-vectors":
        return WordVectorAverage(spec)
    return SentenceEncoder(spec, long_text=long_text, precision=precision)
