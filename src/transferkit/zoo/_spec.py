"""One entry of the registry, for either modality: what a pretrained model is, where its weights come from and how
its inputs are prepared. Preprocessing is read from the building library's own configuration (timm's pretrained
config, torchvision's weights metadata), never copied into this code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

from ..preprocessing import Preprocessing

MODALITIES = ("image", "text")
VECTOR_SUFFIXES = (".txt", ".vec", ".bin", ".gz")  # word-vector files: GloVe / fastText text, word2vec binary, gzipped


@dataclass(frozen=True)
class ModelSpec:
    """A pretrained image backbone or text encoder.

    ``kind`` is the library that builds it (``timm``, ``torchvision``, ``sentence-transformers``, ``word-vectors``);
    ``source`` where its weights come from: ``package`` (a pip package, offline), ``hub`` (the Hugging Face hub),
    ``local`` (the local zoo of ``transferkit pretrain``, or a model folder), ``file`` (a word-vector file) or
    ``none``.
    """

    name: str
    modality: str
    kind: str
    source: str
    arch: str | None = None  # image: the architecture's name in timm / torchvision
    tag: str | None = None  # image, torchvision: which of its weights (their metadata gives the preprocessing)
    hub_id: str | None = None
    package: str | None = None  # the pip requirement that ships the weights
    package_module: str | None = None
    package_path: str | None = None  # inside the package: the weights file (image) or model folder (text)
    path: str | None = None  # a local weights file, model folder or word-vector file
    key_format: str = "native"  # a foreign checkpoint layout, renamed on load ("efficientnet_pytorch")
    classifier: str | None = None  # image: the final linear layer (replaced for a new task)
    dim: int | None = None  # feature dimension, when known without building the model
    max_tokens: int | None = None  # text: the encoder's window
    preprocessing_override: dict | None = None  # image: fixed by the entry (e.g. trained here at another size)
    license: str = ""
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def offline(self) -> bool:
        return self.source in ("package", "local", "file")

    @cached_property
    def preprocessing(self) -> Preprocessing | None:
        """How an image becomes this backbone's input: the entry's own, else what the library says."""
        if self.modality != "image":
            return None
        if self.preprocessing_override:
            return Preprocessing.from_dict(self.preprocessing_override)
        if self.kind == "timm":
            from timm.models import get_pretrained_cfg

            cfg = get_pretrained_cfg(self.arch)
            return Preprocessing.from_timm(cfg.to_dict() if cfg is not None else {})
        if self.kind == "torchvision":
            return Preprocessing.from_torchvision(self.arch, self.tag or "DEFAULT")
        return None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", (), "native")}

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "aliases" in known:
            known["aliases"] = tuple(known["aliases"])
        return cls(**known)
