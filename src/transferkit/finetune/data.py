"""Torch datasets over image files for training networks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.images import load_image


class ImageFiles(Dataset):
    """(transformed image, target) pairs: a class index, or a row of floats (several labels' 0/1, a number);
    decoding is the robust :func:`load_image`."""

    def __init__(self, paths: Sequence[Path], targets, transform: Callable) -> None:
        self.paths = list(paths)
        floats = np.asarray(targets).dtype.kind == "f"
        self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.float32 if floats else torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(load_image(self.paths[i])), self.targets[i]
