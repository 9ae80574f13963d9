"""The optional parts of transferkit and the packages each needs (``pip install 'transferkit[NAME]'``); a feature
whose packages are missing says which extra to install instead of failing on an import."""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec

from .errors import BadInputError

# extra: (what it gives, the modules it needs); pyproject.toml's [project.optional-dependencies] installs them
_SERVE, _EXPORT, _REPORT = ("fastapi", "uvicorn", "multipart"), ("onnx", "onnxscript", "onnxruntime"), ("matplotlib",)
EXTRAS = {
    "serve": ("the HTTP server (`transferkit serve`)", _SERVE),
    "app": ("the web app (`transferkit app`)", (*_SERVE, *_REPORT, *_EXPORT, "imagehash")),  # as pyproject's [app]
    "export": ("ONNX export and ONNX Runtime (`transferkit export`, --runtime onnx)", _EXPORT),
    "report": ("HTML reports with plots (--report, `transferkit compare`)", _REPORT),
    "ray": ("Ray workers (--engine ray)", ("ray",)),
}


@cache
def has(extra: str) -> bool:
    """Whether every package of ``extra`` is installed (looked up, not imported)."""
    return all(find_spec(m) is not None for m in EXTRAS[extra][1])


def require(extra: str) -> None:
    """Refuse, with the command that fixes it, a feature whose extra is not installed."""
    if not has(extra):
        what, modules = EXTRAS[extra]
        missing = ", ".join(m for m in modules if find_spec(m) is None)
        raise MissingExtraError(f"{what[0].upper()}{what[1:]} needs transferkit's [{extra}] extra ({missing} not "
                                f"installed): pip install 'transferkit[{extra}]'")


class MissingExtraError(BadInputError):
    """A feature whose optional packages are not installed."""
