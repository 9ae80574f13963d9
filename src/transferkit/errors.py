"""The exception types users catch.

Every error is a small document: it names the input, says what was expected and how to fix it.
The CLI prints the message of a :class:`TransferkitError` without a traceback.
"""

from __future__ import annotations


class TransferkitError(Exception):
    """Base class of every error transferkit raises on purpose."""


class BadInputError(TransferkitError, ValueError):
    """The data or an argument given by the user cannot be used as it is."""


class NotFittedError(TransferkitError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class UnknownModelError(TransferkitError, KeyError):
    """A model name that is neither in the zoo nor a known timm architecture."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class WeightsUnavailableError(TransferkitError, RuntimeError):
    """Pretrained weights could not be found or downloaded."""


class BundleError(TransferkitError, ValueError):
    """A model folder is missing, incomplete or from an incompatible version."""
