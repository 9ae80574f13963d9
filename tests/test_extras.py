"""A lean install: a feature whose optional packages are missing says which extra to install, and what needs no extra
goes on without it (the faster runtime falls back to PyTorch)."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from transferkit import extras
from transferkit.cli import app
from transferkit.extras import EXTRAS, MissingExtraError

runner = CliRunner()


@pytest.fixture
def without(monkeypatch):
    """Make the given top-level modules look uninstalled (``find_spec`` finds nothing) for the test."""
    real = importlib.util.find_spec

    def hide(*names: str) -> None:
        monkeypatch.setattr(extras, "find_spec", lambda name, *a: None if name in names else real(name, *a))
        extras.has.cache_clear()

    yield hide
    extras.has.cache_clear()


def test_every_extra_is_one_in_pyproject():
    import tomllib
    from pathlib import Path

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(EXTRAS) <= set(declared)
    (everything,) = declared["all"]
    assert set(everything.removeprefix("transferkit[").removesuffix("]").split(",")) == set(EXTRAS)


def test_serving_without_the_serve_extra_names_the_extra_to_install(without, model_dir_for_extras):
    without("fastapi")
    result = runner.invoke(app, ["serve", str(model_dir_for_extras), "--runtime", "torch"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "pip install 'transferkit[serve]'" in message and "fastapi not installed" in message


def test_a_report_without_matplotlib_is_refused_before_any_work(without, tmp_path):
    without("matplotlib")
    result = runner.invoke(app, ["compare", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "transferkit[report]" in " ".join(result.output.split())


def test_without_onnx_runtime_the_auto_runtime_is_pytorch(without):
    from transferkit.runtime import faster_runtime

    assert faster_runtime("image", ["image-backbone"]) in ("onnx", "torch")
    without("onnxruntime")
    assert faster_runtime("image", ["image-backbone"]) == "torch"
    with pytest.raises(MissingExtraError, match=r"transferkit\[export\]"):
        extras.require("export")


@pytest.fixture(scope="module")
def model_dir_for_extras(tmp_path_factory, small_train):
    out = tmp_path_factory.mktemp("extras") / "model"
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(out), "--strategy", "features", "--json"])
    assert result.exit_code == 0, result.output
    return out
