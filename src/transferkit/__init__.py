"""transferkit: reuse pretrained networks on new tasks with little labeled data."""

from .errors import BadInputError as BadInputError
from .errors import BundleError as BundleError
from .errors import NotFittedError as NotFittedError
from .errors import TransferkitError as TransferkitError
from .errors import UnknownModelError as UnknownModelError
from .errors import WeightsUnavailableError as WeightsUnavailableError

__version__ = "0.1.0"

__all__ = [
    "BadInputError", "BundleError", "ImageClassifier", "NotFittedError", "TextClassifier", "TransferkitError", "UnknownModelError",
    "WeightsUnavailableError",
]


def __getattr__(name: str):
    # The estimator pulls in torch, timm and scikit-learn; importing it lazily keeps `transferkit --help` instant.
    if name in ("ImageClassifier", "TextClassifier"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
