"""Image networks for a :class:`ModelSpec`: the architecture from timm or torchvision, its weights from a package,
the hub, the local zoo or a user's file, loaded through timm's own ``load_pretrained`` (the weights handed over as a
state-dict overlay of the model's pretrained config, foreign checkpoints renamed by a filter function).

Weight files are read as tensors only: safetensors, or ``torch.load(..., weights_only=True)``. Arbitrary pickled
objects are refused, never executed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import BadInputError, UnknownModelError, WeightsUnavailableError
from . import _hub
from ._spec import ModelSpec

OFFLINE_ADVICE = ("If this machine is offline, download the weights elsewhere and pass the file: --weights PATH "
                  "(safetensors or a PyTorch state dict), or ImageClassifier(weights=PATH). `transferkit models` "
                  "lists backbones whose weights ship in packages and work offline.")


def create_backbone(spec: ModelSpec, *, weights: str | os.PathLike | None = None, pretrained: bool = True,
                    num_classes: int | None = 0) -> nn.Module:
    """The network for ``spec``: ``num_classes=0`` gives pooled features, an int a fresh linear head of that size,
    ``None`` keeps the pretrained classifier (ImageNet logits for the zoo's models).

    ``weights`` (a local file) wins over the spec's own source; ``pretrained=False`` gives random initialisation.
    """
    if weights is None and (not pretrained or spec.source == "none"):
        return architecture(spec, 1000 if num_classes is None else num_classes)
    path = Path(weights) if weights is not None else weights_location(spec)
    state = read_state_dict(path)
    heads = (f"{spec.classifier}.", "_fc.")  # the classifier, in timm's / torchvision's or efficientnet_pytorch's names
    in_state = next((v for k, v in state.items() if k.startswith(heads) and k.endswith("weight")), None)
    n_state = int(in_state.shape[0]) if in_state is not None else 0
    wanted = n_state if num_classes is None else num_classes
    if wanted != n_state:  # a new task: the old classifier goes (timm's own rule, done here so loading stays strict)
        state = {k: v for k, v in state.items() if not k.startswith(heads)}
        n_state = 0
    model = architecture(spec, n_state)
    try:
        if spec.kind == "timm":
            from timm.models import load_pretrained

            timm_model: Any = model
            cfg = {**(timm_model.pretrained_cfg or {}), "state_dict": state, "num_classes": n_state,
                   "classifier": spec.classifier}
            load_pretrained(model, pretrained_cfg=cfg, num_classes=n_state, filter_fn=_filter(state), strict=True)
        else:
            model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BadInputError(
            f"The weights in {path} do not fit architecture {spec.arch!r} ({_first_line(exc)}). Pass --model with "
            "the architecture these weights were trained for."
        ) from None
    if wanted != n_state:
        set_num_classes(model, spec, wanted)  # a fresh classifier for the new task
    return model


def architecture(spec: ModelSpec, num_classes: int) -> nn.Module:
    """The randomly initialised architecture with a classifier of ``num_classes`` (0: pooled features). Only names in
    timm's or torchvision's registry of architectures are built: a model folder's spec never reaches a callable by
    name."""
    if spec.kind == "timm":
        import timm

        if not isinstance(spec.arch, str) or ":" in spec.arch or not timm.is_model(spec.arch):
            raise UnknownModelError(f"{spec.arch!r} is not an architecture timm knows (`timm.list_models()`).")
        return timm.create_model(spec.arch, pretrained=False, num_classes=num_classes)
    if spec.kind == "torchvision":
        import torchvision

        if spec.arch not in torchvision.models.list_models(module=torchvision.models):
            raise UnknownModelError(f"{spec.arch!r} is not a torchvision classification model "
                                    "(`torchvision.models.list_models()`).")
        model = torchvision.models.get_model(spec.arch, weights=None)
        set_num_classes(model, spec, num_classes)
        return model
    raise BadInputError(f"{spec.name} is a {spec.kind} model, not an image backbone.")


def set_num_classes(model: nn.Module, spec: ModelSpec, num_classes: int) -> None:
    """Replace the classifier: 0 makes the model return pooled features, n > 0 a fresh n-way linear layer."""
    if hasattr(model, "reset_classifier"):
        timm_model: Any = model
        timm_model.reset_classifier(num_classes)
        return
    parent_name, _, leaf = spec.classifier.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, leaf)
    in_features = old.in_features if isinstance(old, nn.Linear) else spec.dim
    if num_classes == (old.out_features if isinstance(old, nn.Linear) else 0):
        return
    setattr(parent, leaf, nn.Linear(in_features, num_classes) if num_classes else nn.Identity())


def classifier_layer(model: nn.Module, spec: ModelSpec) -> nn.Linear:
    timm_model: Any = model
    layer = timm_model.get_classifier() if hasattr(model, "get_classifier") else model.get_submodule(spec.classifier)
    if not isinstance(layer, nn.Linear):
        raise BadInputError(f"{spec.name}'s classifier is not a linear layer; it cannot be fine-tuned here.")
    return layer


def weights_location(spec: ModelSpec) -> Path:
    if spec.source == "package":
        from ._registry import packaged_path

        return packaged_path(spec)
    if spec.source in ("local", "file"):
        return Path(spec.path)
    if spec.source == "hub":
        return _hub.weights_file(spec.hub_id, spec.name, OFFLINE_ADVICE)
    raise WeightsUnavailableError(f"{spec.name} has no pretrained weights. Pass --weights PATH.")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a PyTorch state dict, refusing anything that needs unpickling."""
    path = Path(path)
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


def _filter(state: dict):
    """timm's filter function for the checkpoint's key layout: the efficientnet_pytorch project's names, or none."""
    return efficientnet_pytorch_to_timm if any(k.startswith("_conv_stem") for k in state) else None


_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_EXPAND = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
           "_project_conv": "conv_pwl", "_bn2": "bn3"}
_NO_EXPAND = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def efficientnet_pytorch_to_timm(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename keys of the efficientnet_pytorch project to timm's, numbering blocks through timm's stages."""
    stages: Any = model.blocks
    positions = [(stage, j) for stage, blocks in enumerate(stages) for j in range(len(blocks))]
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


def weights_digest(model: nn.Module) -> str:
    """A short content hash of a model's tensors: part of the feature-cache key."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:3])[:300]
