"""Preprocessing as metadata of a model (never a constant in the code).

A :class:`Preprocessing` travels with a backbone in the zoo and with a fitted model in its bundle, so a saved model
preprocesses exactly as it did in training. Transforms are built by timm from these fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import BadInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the tensor a backbone expects.

    ``input_size`` is the square side in pixels; at evaluation the image is resized so that the centre crop of
    ``crop_pct`` of the resized image is ``input_size`` (timm's convention).
    """

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    crop_mode: str = "center"

    def __post_init__(self) -> None:
        if not 16 <= self.input_size <= 1024:
            raise BadInputError(f"Preprocessing.input_size must be between 16 and 1024 pixels, got {self.input_size}.")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise BadInputError("Preprocessing.mean and .std need three values, one per RGB channel.")
        if any(s <= 0 for s in self.std):
            raise BadInputError(f"Preprocessing.std must be positive, got {self.std}.")
        if self.interpolation not in _INTERPOLATIONS:
            raise BadInputError(f"Preprocessing.interpolation must be one of {_INTERPOLATIONS}, got {self.interpolation!r}.")
        if not 0.1 <= self.crop_pct <= 1.0:
            raise BadInputError(f"Preprocessing.crop_pct must be in [0.1, 1.0], got {self.crop_pct}.")
        # JSON gives lists back; keep the dataclass hashable and comparable.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @classmethod
    def from_timm(cls, cfg: dict[str, Any]) -> Preprocessing:
        """From a timm pretrained config (``get_pretrained_cfg(name).to_dict()``), resolved as timm resolves it for
        evaluation (``timm.data.resolve_data_config``: its defaults for what the config leaves out)."""
        from timm.data import resolve_data_config

        data = resolve_data_config(pretrained_cfg=cfg)
        interpolation = data["interpolation"]
        return cls(input_size=int(data["input_size"][-1]), mean=tuple(data["mean"]), std=tuple(data["std"]),
                   interpolation=interpolation if interpolation in _INTERPOLATIONS else "bicubic",
                   crop_pct=float(data["crop_pct"]), crop_mode=data["crop_mode"])

    @classmethod
    def from_torchvision(cls, arch: str, tag: str = "DEFAULT") -> Preprocessing:
        """From the metadata of torchvision's weights ``tag`` (e.g. ``IMAGENET1K_V1``) for ``arch``."""
        import torchvision

        transform = torchvision.models.get_model_weights(arch)[tag].transforms()
        crop, resize = int(transform.crop_size[0]), int(transform.resize_size[0])
        return cls(input_size=crop, mean=tuple(transform.mean), std=tuple(transform.std),
                   interpolation=transform.interpolation.value, crop_pct=crop / resize)

    def _timm_kwargs(self) -> dict[str, Any]:
        return {
            "input_size": (3, self.input_size, self.input_size),
            "interpolation": self.interpolation,
            "mean": self.mean,
            "std": self.std,
        }

    def eval_transform(self):
        """Deterministic resize, centre crop, tensor, normalise."""
        from timm.data import create_transform

        return create_transform(**self._timm_kwargs(), crop_pct=self.crop_pct, crop_mode=self.crop_mode)

    def train_transform(self):
        """Augmentation suited to small data: random resized crop (mild), flip, light colour jitter."""
        from timm.data import create_transform

        return create_transform(
            **self._timm_kwargs(),
            is_training=True,
            scale=(0.35, 1.0),
            hflip=0.5,
            color_jitter=0.2,
        )
