"""The featurizer interface: what a timm backbone, a sentence encoder, word vectors and TF-IDF have in common.

A featurizer turns items (image files, texts) into feature rows. The extraction loop (``transferkit.features``)
only speaks this interface: ``digest`` keys the feature cache, ``item_key`` names an item by its content,
``decode`` reads one item (or says why it cannot), ``prepare`` makes it the network's input, ``transform`` computes
a batch. A model folder saves a featurizer's constructor arguments (``config_keys``) and tensors with ``save``,
and ``load`` rebuilds it with ``cls(**arguments)``.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np

from ..data.files import ItemError as ItemError  # re-exported: featurizers raise it

KINDS: dict[str, type[Featurizer]] = {}


class Featurizer:
    kind: ClassVar[str]  # the component type written into model folders
    modality: ClassVar[str]  # "image" | "text"
    tunable: ClassVar[bool] = False  # a FineTune tuner exists for it
    cacheable: ClassVar[bool] = True  # features worth caching on disk (not for TF-IDF: cheaper to recompute)
    learns_from_data: ClassVar[bool] = False  # fit() learns from the training items (TF-IDF's vocabulary)
    cheap_scratch: ClassVar[bool] = False  # its no-transfer twin (``scratch()``) needs no training: cheap to measure
    tuned: bool = False  # its weights were changed by fine-tuning (a model folder then stores them)
    # the constructor arguments a model folder keeps, saved by ``save`` and given back to the constructor by ``load``
    # (sentence-transformers' ``config_keys``); ``arguments`` turns the saved values into arguments, checked
    config_keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            KINDS[cls.kind] = cls

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def digest(self) -> str:
        """A content digest of everything that maps an item to its features (weights, preprocessing, precision)."""
        raise NotImplementedError

    def item_key(self, item) -> str:
        """A digest of an item's content: the cache key of its features (a renamed file still hits)."""
        raise NotImplementedError

    def decode(self, item) -> Any:
        """The item read once (an image file decoded), in a form every featurizer of the modality ``prepare``s:
        side-by-side featurizers share it. Raises :class:`ItemError` when it cannot be read."""
        return item

    def prepare(self, item) -> Any:
        """The item (as given, or ``decode``d) ready for ``transform``; raises :class:`ItemError` when it cannot be
        read."""
        return item

    def transform(self, batch: list) -> np.ndarray:
        """Features of prepared items, one row each."""
        raise NotImplementedError

    def batch_order(self, items: list) -> list[int]:
        """The order in which items are batched (texts: longest first, so batches pad little)."""
        return list(range(len(items)))

    def count_overlong(self, batch: list) -> int:
        """How many prepared items exceed the featurizer's window (texts longer than the encoder reads)."""
        return 0

    def fit(self, items: list) -> Featurizer:
        """Learn from the training items; pretrained featurizers have nothing to learn."""
        return self

    def scratch(self, seed: int = 0) -> Featurizer:
        """The modality's no-transfer featurizer: the same network from random initialisation drawn with ``seed``
        (images), TF-IDF (texts)."""
        raise NotImplementedError

    @property
    def blocks(self) -> tuple[int, ...]:
        """Widths of the column blocks of its features that a head fits apart (``Concat``: one per member)."""
        return ()

    def companions(self) -> list[Featurizer]:
        """Other pretrained featurizers worth combining with this one (``Concat``): none by default."""
        return []

    def get_config(self) -> dict[str, Any]:
        """The values named by ``config_keys`` as JSON (``to_dict()`` where a value has one)."""
        return {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k in self.config_keys
                for v in [getattr(self, k)]}

    def fingerprint(self) -> dict[str, Any]:
        """What ``check_saved`` compares with the world when the folder is loaded again (weights read from a package,
        a word-vector file): none by default."""
        return {}

    def tensors(self) -> dict:
        """The named tensors a model folder keeps beside the config (weights): none by default."""
        return {}

    def save(self) -> tuple[dict, dict]:
        """(JSON config, named tensors): the kind, the ``config_keys`` values and the fingerprint; the tensors."""
        return {"kind": self.kind, **self.get_config(), **self.fingerprint()}, self.tensors()

    @classmethod
    def arguments(cls, config: dict, tensors: dict) -> dict[str, Any]:
        """The constructor arguments from a saved config and its tensors, each checked (a spec against the
        registry's allow-list): by default the ``config_keys`` values as saved."""
        return {k: config[k] for k in cls.config_keys if k in config}

    def check_saved(self, config: dict) -> None:
        """Refuse a loaded featurizer whose outside parts (``fingerprint``) changed since it was saved."""

    @classmethod
    def load(cls, config: dict, tensors: dict, **runtime) -> Featurizer:
        """``cls(**arguments)``, with the runtime options (``precision``) the constructor takes."""
        from inspect import signature

        accepted = signature(cls).parameters
        featurizer = cls(**cls.arguments(config, tensors), **{k: v for k, v in runtime.items() if k in accepted})
        featurizer.check_saved(config)
        return featurizer

    def describe(self) -> str:
        return f"{'tuned' if self.tuned else 'frozen'} {self.name}"


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_featurizer(config: dict, tensors: dict, **runtime) -> Featurizer:
    """Rebuild a saved featurizer from its ``kind``."""
    from ..errors import BundleError

    kind = config.get("kind")
    if kind not in KINDS:
        raise BundleError(f"Unknown featurizer kind {kind!r} in the model folder (known: {', '.join(sorted(KINDS))}). "
                          "It was written by a newer transferkit, or edited by hand.")
    return KINDS[kind].load(config, tensors, **runtime)
