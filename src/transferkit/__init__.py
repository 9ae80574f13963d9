"""transferkit: reuse pretrained networks on new tasks with little labeled data.

The public API, re-exported explicitly. Importing the package imports nothing heavy: the estimators (torch, timm,
scikit-learn) load on first use, so ``transferkit --help`` stays instant.
"""

from .errors import BadInputError as BadInputError
from .errors import BundleError as BundleError
from .errors import NotFittedError as NotFittedError
from .errors import TransferkitError as TransferkitError
from .errors import UnknownModelError as UnknownModelError
from .errors import WeightsUnavailableError as WeightsUnavailableError

__version__ = "0.8.0"

_LAZY = {
    "ImageClassifier": "estimators", "TextClassifier": "estimators", "Classifier": "estimators",
    "load_model": "estimators", "Features": "strategies", "FineTune": "strategies", "Scratch": "strategies",
    "Auto": "strategies", "pretrain": "pretrain", "NetworkTuner": "finetune.tuners",
    "ContrastiveTuner": "finetune.tuners",
}

__all__ = ["Auto", "BadInputError", "BundleError", "Classifier", "ContrastiveTuner", "Features", "FineTune",
           "ImageClassifier", "NetworkTuner", "NotFittedError", "Scratch", "TextClassifier", "TransferkitError",
           "UnknownModelError", "WeightsUnavailableError", "load_model", "pretrain"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
