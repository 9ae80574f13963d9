"""Shared fixtures: a per-session feature cache, the bundled example data, and one fitted model reused by tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "clipart"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test writes its feature cache under a temporary folder, never into the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TRANSFERKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def example_train() -> Path:
    return EXAMPLE / "train"


@pytest.fixture(scope="session")
def example_test() -> Path:
    return EXAMPLE / "test"


@pytest.fixture(scope="session")
def small_train(tmp_path_factory, example_train) -> Path:
    """Three classes x 6 images copied from the bundled example: enough to fit, quick to extract."""
    root = tmp_path_factory.mktemp("small")
    for cls in ("birds", "fruit", "beverages"):
        (root / cls).mkdir()
        for src in sorted((example_train / cls).glob("*.png"))[:6]:
            shutil.copy(src, root / cls / src.name)
    return root


@pytest.fixture(scope="session")
def fitted_features(example_train):
    from transferkit import ImageClassifier

    return ImageClassifier(verbose=False).fit(example_train)
