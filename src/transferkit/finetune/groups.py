"""Layer groups as data: the network's parameters in order from input to head, one group per stage.

Freezing, discriminative learning rates and the BatchNorm policy all follow from these groups. timm models declare
their own ``group_matcher``; other families get one from their :class:`ModelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import BadInputError
from ..zoo import ModelSpec

# torchvision MobileNetV2: stem, the seven inverted-residual stages, the 1x1 conv head; the classifier comes last.
_MOBILENET_V2 = {
    "stem": r"^features\.0\.",
    "blocks": [
        (r"^features\.1\.", (1,)),
        (r"^features\.[23]\.", (2,)),
        (r"^features\.[456]\.", (3,)),
        (r"^features\.([789]|10)\.", (4,)),
        (r"^features\.1[123]\.", (5,)),
        (r"^features\.1[456]\.", (6,)),
        (r"^features\.1[78]\.", (7,)),
    ],
}
_MATCHERS = {("torchvision", "mobilenet_v2"): _MOBILENET_V2}


@dataclass(frozen=True)
class Plan:
    """How a pretrained network is fine-tuned. ``groups`` run from the input to the classifier (last)."""

    groups: tuple[tuple[str, ...], ...]
    lrs: tuple[float, ...]
    trainable_at_epoch: tuple[int, ...]  # number of top groups that train in epoch e (the last entry holds after)
    l2sp: float = 0.0
    bn_statistics: str = "frozen"  # "frozen": every BatchNorm uses its pretrained running statistics; "train": the
    # trainable stages' BatchNorm layers re-estimate them from batches (for larger datasets)

    def trainable(self, epoch: int) -> int:
        return self.trainable_at_epoch[min(epoch, len(self.trainable_at_epoch) - 1)]


def layer_groups(network: nn.Module, spec: ModelSpec) -> list[list[str]]:
    """Parameter names grouped by stage, from the input (stem) to the classifier (last group)."""
    from timm.models import group_parameters

    if hasattr(network, "group_matcher"):
        matcher = network.group_matcher(coarse=True)
    elif (spec.kind, spec.arch) in _MATCHERS:
        matcher = _MATCHERS[(spec.kind, spec.arch)]
    else:
        raise BadInputError(f"No layer groups are known for {spec.kind} model {spec.arch!r}; use --unfreeze all.")
    groups = [list(names) for names in group_parameters(network, matcher).values()]
    classifier = [n for n, _ in network.named_parameters() if n.startswith(spec.classifier + ".")]
    groups = [[n for n in g if n not in classifier] for g in groups]
    return [g for g in groups if g] + [classifier]


def trainable_groups(groups: list[list[str]], unfreeze: int | str) -> int:
    """How many groups (counted from the top, classifier included) train for ``unfreeze`` stages."""
    body = len(groups) - 1
    n = body if unfreeze == "all" else min(int(unfreeze), body)
    return n + 1
