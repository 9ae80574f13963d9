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
    assert 0 <= fit["cv_accuracy"] <= 1 and fit["cv_n"] == 18
    return out


def test_evaluate_json_is_one_object_with_accuracy(model_dir, small_train):
    result = runner.invoke(app, ["evaluate", str(model_dir), str(small_train), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_examples"] == 18 and 0.5 < report["accuracy"] <= 1
    assert [row["class"] for row in report["per_class"]] == ["beverages", "birds", "fruit"]
    assert sum(map(sum, report["confusion_matrix"])) == 18


def test_evaluate_reads_the_data_once_and_scores_it_with_the_predictor_chosen_for_those_items(model_dir, small_train):
    from transferkit.evaluate import evaluate
    from transferkit.loading import load_predictor

    loaded, chosen = load_predictor(model_dir), load_predictor(model_dir)
    reads, given, scored = [], [], []
    for predictor in (loaded, chosen):
        read, score = predictor.read, predictor.predict_items
        predictor.read = lambda *a, _read=read, **k: reads.append(a) or _read(*a, **k)
        predictor.predict_items = lambda *a, _p=predictor, _score=score, **k: scored.append(_p) or _score(*a, **k)

    def runtime_for(model, items):
        given.append((model, items))
        return chosen

    result = evaluate(loaded, small_train, runtime_for=runtime_for)
    assert len(reads) == 1 and given[0][0] is loaded and len(given[0][1]) == 18
    assert scored == [chosen] and result.n_examples == 18


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
    features = ["--strategy", "features", "--json"]  # one backbone: the weights are what this test is about
    assert runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m0"), *features]).exit_code == 0
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--weights",
                                 str(tmp_path / "lite0.safetensors"), *features])
    assert result.exit_code == 0, result.output
    # the same tensors as the packaged weights: the cache hits
    assert json.loads(result.stdout.strip().splitlines()[-1])["n_features_cached"] == 18
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m2"), "--weights",
                                 str(tmp_path / "other.pth")])
    assert result.exit_code == 2 and "do not fit architecture" in result.output


def test_importing_the_cli_does_not_import_torch():  # what keeps --help quick
    code = "import sys; from transferkit.cli import app; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow  # a second process importing torch: about 10 s
def test_predicting_one_image_imports_neither_scipy_stats_nor_scikit_learn(model_dir, small_train):
    # what keeps a cold predict near the cost of importing torch and timm (benchmarks/student.py --cold)
    image = next((small_train / "birds").glob("*.png"))
    code = ("import sys; from typer.testing import CliRunner; from transferkit.cli import app; "
            f"r = CliRunner().invoke(app, ['predict', {str(model_dir)!r}, {str(image)!r}, '--json']); "
            "assert r.exit_code == 0, r.output; assert 'label' in r.output, r.output; "
            "print(sorted(m for m in ('scipy.stats', 'scipy.special', 'scipy.sparse', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


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
    small = [n for n in numbers["notes"] if n.startswith("18 test images measure accuracy to about +-0.")]
    assert small and f"Note: {small[0]}." in page  # 18 examples: the JSON, the page and the terminal all say so


def test_fit_val_fraction_sets_how_many_images_are_held_out(tmp_path, small_train, tiny_backbone):
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--model", tiny_backbone,
                                 "--strategy", "finetune", "--epochs", "1", "--val-fraction", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout.strip().splitlines()[-1])
    assert (fit["n_train"], fit["n_val"]) == (9, 9)  # 3 of each class's 6 images, against 1 at the default 20 %


@pytest.mark.parametrize("args,message", [
    (["--strategy", "features", "--epochs", "3"], "--epochs tune a network; --strategy features keeps it frozen"),
    (["--rounds", "3"], "--rounds applies to texts"),
    (["--strategy", "scratch", "--unfreeze", "2"], "scratch trains every layer from random initialisation"),
    (["--strategy", "finetune", "--unfreeze", "most"], "--unfreeze 'most'"),
    (["--time-budget", "5", "--strategy", "features"], "--time-budget applies to --strategy auto"),
    (["--strategy", "finetune", "--bn-statistics", "sometimes"], "The 'bn_statistics' parameter of NetworkTuner"),
    (["--seed", "-1"], "seed must be a whole number"),
])
def test_options_that_cannot_apply_are_refused_with_the_reason(tmp_path, small_train, args, message):
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "m").exists()


def test_text_options_on_images_and_image_options_on_texts_are_refused(tmp_path, small_train, text_csv):
    result = runner.invoke(app, ["fit", str(text_csv), "--out", str(tmp_path / "m"), "--unfreeze", "2", "--resume"])
    assert result.exit_code == 2 and "--unfreeze, --resume apply to images" in " ".join(result.output.split())


def test_fit_refuses_an_out_folder_that_is_not_a_model_before_any_work(tmp_path, small_train):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "keep.jpg").write_bytes(b"precious")
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(folder)])
    assert result.exit_code == 2 and "not a transferkit model folder" in result.output
    assert [p.name for p in folder.iterdir()] == ["keep.jpg"]


def test_refitting_into_a_model_folder_asks_for_overwrite(tmp_path, model_dir):
    result = runner.invoke(app, ["fit", str(tmp_path), "--out", str(model_dir)])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_version_prints_the_package_version():
    from transferkit import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"transferkit {__version__}"


def test_fit_says_how_far_an_estimate_from_few_labels_can_be_trusted(model_dir, small_train, tmp_path):
    from transferkit.evaluate import sample_size_note

    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--strategy", "features"])
    assert result.exit_code == 0, result.output
    assert "Note: 18 labels measure accuracy to about +-0." in " ".join(result.output.split())
    assert sample_size_note(100, [0.7, 0.9], "labels") is None
    assert sample_size_note(18, [0.5, 0.9], "labels") == ("18 labels measure accuracy to about +-0.20; more labels "
                                                           "would make the number firmer")


def test_every_fit_option_is_one_field_that_becomes_a_flag_with_its_help():
    from dataclasses import fields

    from transferkit.jobs import FitOptions

    help_text = " ".join(runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "400"}).output.split())
    for f in fields(FitOptions):
        flag = "--" + f.name.replace("_", "-")
        assert flag in help_text and " ".join(f.metadata["help"].split())[:60] in help_text, flag
    assert FitOptions.only_for() == {"weights": "image", "text_column": "text", "path_column": "image",
                                     "long_text": "text", "resume": "image", "restart": "image"}


def test_fit_to_folder_refuses_an_option_of_the_other_kind_of_data_before_any_work(tmp_path, text_csv):
    from transferkit.errors import BadInputError
    from transferkit.jobs import FitOptions, fit_to_folder

    with pytest.raises(BadInputError, match="--weights, --restart apply to images, and .* holds texts"):
        fit_to_folder(text_csv, tmp_path / "model", FitOptions(weights=tmp_path / "w.safetensors", restart=True))
    assert not (tmp_path / "model").exists()
