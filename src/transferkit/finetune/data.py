"""Torch datasets over image files for training networks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..data.images import load_image


class ImageFiles(Dataset):
    """(transformed image, class index) pairs; decoding is the robust :func:`load_image`."""

    def __init__(self, paths: Sequence[Path], targets: Sequence[int], transform: Callable) -> None:
        self.paths = list(paths)
        self.targets = torch.as_tensor(list(targets), dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(load_image(self.paths[i])), self.targets[i]
