"""The command line: fit / evaluate / predict / models, --json output, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from transferkit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_train):
    out = tmp_path_factory.mktemp("cli") / "model"
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout.strip().splitlines()[-1])
    assert fit["strategy"] == "auto" and fit["auto_choice"] == "features"  # 6 images per class: too few to fine-tune
    assert fit["classes"] == ["beverages", "birds", "fruit"]
    assert 0 <= fit["val_accuracy"] <= 1
    return out


def test_evaluate_json_is_one_object_with_accuracy(model_dir, small_train):
    result = runner.invoke(app, ["evaluate", str(model_dir), str(small_train), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_examples"] == 18 and 0.5 < report["accuracy"] <= 1
    assert [row["class"] for row in report["per_class"]] == ["beverages", "birds", "fruit"]
    assert sum(map(sum, report["confusion_matrix"])) == 18


def test_evaluate_human_output_has_tables(model_dir, small_train):
    result = runner.invoke(app, ["evaluate", str(model_dir), str(small_train)])
    assert result.exit_code == 0 and "Confusion matrix" in result.stdout and "macro-F1" in result.stdout


def test_predict_json_lines_and_unreadable_files(model_dir, small_train, tmp_path):
    image = sorted((small_train / "fruit").glob("*.png"))[0]
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    result = runner.invoke(app, ["predict", str(model_dir), str(image), str(bad), "--json", "--top", "2"])
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert lines[0]["file"] == str(image) and lines[0]["label"] in {"beverages", "birds", "fruit"}
    assert len(lines[0]["top"]) == 2
    assert lines[1] == {"file": str(bad), "error": "not an image file PIL can read"}
    assert result.exit_code == 1


def test_models_json_lists_the_zoo_with_the_default():
    result = runner.invoke(app, ["models", "--json"])
    zoo = json.loads(result.stdout)
    assert [(m["name"], m["modality"]) for m in zoo if m["default"]] == [("tf_efficientnet_lite0", "image"),
                                                                         ("all-MiniLM-L6-v2", "text")]
    assert {m["name"] for m in zoo} >= {"tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenet_v2"}


def test_bad_input_is_one_clear_message_without_traceback(tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "missing"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_offline_hub_model_fails_fast_with_advice(tmp_path, small_train):
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--model", "resnet18"])
    assert result.exit_code == 2 and "--weights" in result.output and "Traceback" not in result.output


def test_fit_with_a_local_weights_file(tmp_path, small_train):
    """--weights PATH replaces the backbone's own weights; a file for another architecture is a clear error."""
    import torch
    from safetensors.torch import save_file

    from transferkit import zoo

    state = zoo.create_backbone(zoo.resolve("lite0"), num_classes=None).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "lite0.safetensors"))
    assert runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m0"), "--json"]).exit_code == 0
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--weights",
                                 str(tmp_path / "lite0.safetensors"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["n_features_cached"] == 18  # same tensors as the packaged weights: cache hit
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m2"), "--weights", str(tmp_path / "other.pth")])
    assert result.exit_code == 2 and "do not fit architecture" in result.output


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; from transferkit.cli import app; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluate_report_holds_the_numbers_json_prints(model_dir, small_train, tmp_path):
    import re

    report = tmp_path / "report.html"
    result = runner.invoke(app, ["evaluate", str(model_dir), str(small_train), "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    page = report.read_text()
    assert f"<b>{numbers['accuracy']:.3f}</b>" in page and f"<b>{numbers['macro_f1']:.3f}</b>" in page
    assert f"<b>{numbers['ece']:.3f}</b>" in page
    for row in numbers["per_class"]:
        assert f"<td>{row['class']}</td><td>{row['precision']:.3f}</td><td>{row['recall']:.3f}</td>" in page
    plots = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(plots) >= 3  # per-class bars, confusion matrix, reliability diagram (+ thumbnails of mistakes)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert sum(b["count"] for b in numbers["calibration"]) == numbers["n_examples"]


def test_fit_val_fraction_sets_how_many_images_are_held_out(tmp_path, small_train):
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--strategy", "features",
                                 "--val-fraction", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout.strip().splitlines()[-1])
    assert (fit["n_train"], fit["n_val"]) == (9, 9)  # 3 of each class's 6 images, against 1 at the default 20 %
