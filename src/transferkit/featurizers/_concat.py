"""Several pretrained featurizers side by side: each member's row scaled to unit length, divided by the square root
of the number of members, and concatenated, so every member weighs the same whatever its scale. ``Auto`` measures on
each fit whether side by side beats one backbone (``benchmarks/fewshot.py`` across tasks). Each member's features
are cached on their own."""

from __future__ import annotations

import numpy as np

from ._base import Featurizer, content_digest, load_featurizer


class Concat(Featurizer):
    kind = "concat"

    def __init__(self, members: list[Featurizer]) -> None:
        from ..errors import BadInputError

        if len(members) < 2 or len({m.modality for m in members}) != 1:
            raise BadInputError("Concat needs two or more featurizers of one modality.")
        self.members = list(members)

    @property
    def modality(self) -> str:  # type: ignore[override]
        return self.members[0].modality

    @property
    def name(self) -> str:
        return " + ".join(m.name for m in self.members)

    @property
    def dim(self) -> int:
        return sum(m.dim for m in self.members)

    @property
    def tuned(self) -> bool:  # type: ignore[override]
        return any(m.tuned for m in self.members)

    @property
    def blocks(self) -> tuple[int, ...]:
        return tuple(m.dim for m in self.members)

    def describe(self) -> str:
        return f"frozen {self.name} side by side"

    def digest(self) -> str:
        return content_digest(repr(("concat", [m.digest() for m in self.members])).encode())[:20]

    def item_key(self, item) -> str:
        return self.members[0].item_key(item)

    def combine(self, blocks: list[np.ndarray]) -> np.ndarray:
        """The members' rows of the same items, side by side (see the module's docstring)."""
        scale = 1.0 / np.sqrt(len(blocks))
        return np.concatenate([b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) * scale
                               for b in blocks], axis=1).astype(np.float32)

    def decode(self, item):
        return self.members[0].decode(item)

    def prepare(self, item):
        return self.decode(item)  # read once; each member prepares it its own way in ``transform``

    def transform(self, batch: list) -> np.ndarray:
        return self.combine([m.transform([m.prepare(i) for i in batch]) for m in self.members])

    def save(self) -> tuple[dict, dict]:
        configs: list[dict] = []
        tensors: dict = {}
        for i, member in enumerate(self.members):
            config, member_tensors = member.save()
            configs.append(config)
            tensors |= {f"{i}.{k}": v for k, v in member_tensors.items()}
        return {"kind": self.kind, "members": configs}, tensors

    @classmethod
    def load(cls, config: dict, tensors: dict, **runtime) -> Concat:
        members = []
        for i, member in enumerate(config["members"]):
            prefix = f"{i}."
            members.append(load_featurizer(member, {k[len(prefix):]: v for k, v in tensors.items()
                                                    if k.startswith(prefix)}, **runtime))
        return cls(members)

    def with_view(self, view: str) -> Concat:
        return Concat([m.with_view(view) for m in self.members])  # type: ignore[attr-defined]
