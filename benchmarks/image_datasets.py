"""Fashion-MNIST subsets for ``pretrain_and_rank.py``, materialised as image folders (``root/<class>/<file>.png``):
Debian's ``dataset-fashion-mnist`` (idx files), 28x28 grayscale, 10 classes. (The few-shot suite's tasks are in
``suite_data.py``.)

Sampling is seeded: ``k`` labeled images per class for training, a fixed test set per dataset.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(work: Path, test_per_class: int = 100) -> tuple[dict[str, list[Path]], Path]:
    """All training images as a pool per class (written lazily) and a fixed balanced test folder."""
    if not FASHION.is_dir():
        raise SystemExit(f"{FASHION} missing: apt-get install dataset-fashion-mnist")
    pool_dir, test_dir = work / "fashion" / "pool", work / "fashion" / "test"
    if not test_dir.is_dir():
        for split, out, per_class in (("train", pool_dir, 300), ("t10k", test_dir, test_per_class)):
            images = _idx(FASHION / f"{split}-images-idx3-ubyte.gz")
            labels = _idx(FASHION / f"{split}-labels-idx1-ubyte.gz")
            for c, name in enumerate(FASHION_CLASSES):
                (out / name).mkdir(parents=True, exist_ok=True)
                for i in np.flatnonzero(labels == c)[:per_class]:
                    Image.fromarray(images[i], "L").save(out / name / f"{split}-{i}.png")
    return _pool(pool_dir), test_dir


def _pool(root: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(d.glob("*.png")) for d in sorted(root.iterdir()) if d.is_dir()}


def sample(pool: dict[str, list[Path]], k: int, seed: int) -> tuple[list[Path], list[str]]:
    """``k`` images per class, seeded; classes with fewer images give all they have."""
    paths, labels = [], []
    for cls, files in pool.items():
        chosen = random.Random(f"{seed}:{cls}").sample(files, min(k, len(files)))
        paths += chosen
        labels += [cls] * len(chosen)
    return paths, labels


def fashion_classes(work: Path, classes: list[str], split: str, per_class: int, offset: int = 0) -> Path:
    """A class-per-folder tree of Fashion-MNIST images of ``classes`` from ``split`` (``train`` / ``t10k``):
    ``per_class`` images each, starting at the ``offset``-th image of the class."""
    if not FASHION.is_dir():
        raise SystemExit(f"{FASHION} missing: apt-get install dataset-fashion-mnist")
    out = work / "fashion-subsets" / f"{split}-{'_'.join(classes)}-{offset}-{per_class}"
    if (out / ".done").exists():
        return out
    images = _idx(FASHION / f"{split}-images-idx3-ubyte.gz")
    labels = _idx(FASHION / f"{split}-labels-idx1-ubyte.gz")
    for name in classes:
        c = FASHION_CLASSES.index(name)
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == c)[offset : offset + per_class]:
            Image.fromarray(images[i], "L").save(out / name / f"{split}-{i}.png")
    (out / ".done").touch()
    return out
