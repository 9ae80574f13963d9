"""A model's accuracy on items without labels, read from its own confidence at the temperature its cross-validation
fitted, and the warning when that falls below what the fit estimated: the items look unlike the training ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from transferkit.cli import app
from transferkit.evaluate import LABEL_FREE_MIN_ITEMS, calibrated_confidences, label_free_estimate
from transferkit.fitreport import FitReport

runner = CliRunner()
FIT = FitReport(metrics={"cv_estimate": 0.80, "cv_estimate_interval": [0.70, 0.88], "cv_n": 100}).estimate


def test_the_accuracy_on_unlabeled_items_is_their_mean_confidence_at_the_fitted_temperature():
    proba = np.tile([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], (15, 1))
    as_given = label_free_estimate(calibrated_confidences(proba, 1.0), FIT)
    assert as_given["accuracy"] == pytest.approx(0.55) and as_given["n"] == 30
    sharper = label_free_estimate(calibrated_confidences(proba, 0.5), FIT)
    assert sharper["accuracy"] == pytest.approx(np.mean([0.36 / 0.46, 0.25 / 0.38]))  # p^2, renormalised
    assert as_given["at_fit"] == 0.80 and as_given["interval_at_fit"] == [0.70, 0.88]


def test_below_the_fits_interval_the_items_are_flagged_as_unlike_the_training_ones():
    confident = label_free_estimate(calibrated_confidences(np.tile([[0.75, 0.25]], (30, 1)), 1.0), FIT)
    unsure = label_free_estimate(calibrated_confidences(np.tile([[0.6, 0.4]], (30, 1)), 1.0), FIT)
    assert not confident["below_fit"] and unsure["below_fit"]


def test_no_estimate_without_a_temperature_or_from_a_handful_of_items():
    proba = np.tile([[0.9, 0.1]], (LABEL_FREE_MIN_ITEMS, 1))
    tuned = FitReport(metrics={"accuracy_estimate": 0.9, "estimate_interval": [0.8, 0.95], "probe_cv_n": 40,
                               "probe_cv_temperature": 1.0})  # the probe's temperature is not the tuned model's
    assert tuned.temperature is None and calibrated_confidences(proba, tuned.temperature) is None
    assert label_free_estimate(None, tuned.estimate) is None
    assert label_free_estimate(calibrated_confidences(proba, 1.0), FIT) is not None
    assert label_free_estimate(calibrated_confidences(proba[1:], 1.0), FIT) is None


@pytest.fixture(scope="module")
def noisy_test(tmp_path_factory, example_test):
    """The bundled test images under heavy Gaussian noise (sd 60 of 255): the same classes, a different camera."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("noisy")
    for path in sorted(example_test.rglob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float)
        noisy = np.clip(pixels + rng.normal(0, 60, pixels.shape), 0, 255).astype(np.uint8)
        (root / path.parent.name).mkdir(exist_ok=True)
        Image.fromarray(noisy).save(root / path.parent.name / path.name)
    return root


def test_on_shifted_images_the_estimate_falls_with_the_accuracy_and_says_so(fitted_features, example_test, noisy_test):
    """Real Lite0 features, the bundled example: on its own test images the estimate stays within the fit's
    interval; on noisy copies the accuracy drops, and so does the estimate, below the interval."""
    clean, noisy = fitted_features.estimate_accuracy(example_test), fitted_features.estimate_accuracy(noisy_test)
    clean_accuracy, noisy_accuracy = fitted_features.score(example_test), fitted_features.score(noisy_test)
    assert noisy_accuracy < clean_accuracy - 0.1  # the shift is real
    assert abs(clean["accuracy"] - clean_accuracy) < 0.12 and not clean["below_fit"]
    assert abs(noisy["accuracy"] - noisy_accuracy) < 0.12 and noisy["below_fit"]
    assert noisy["accuracy"] < clean["accuracy"] - 0.05


def test_evaluate_shows_what_predict_would_have_read_without_the_labels(fitted_features, example_test):
    from transferkit.evaluate import evaluate
    from transferkit.report import evaluation_report

    result = evaluate(fitted_features, example_test)
    assert result.label_free == fitted_features.estimate_accuracy(example_test)
    assert result.to_dict()["label_free"]["n"] == result.n_examples == 120
    page = evaluation_report(result, "model", str(example_test), {})
    assert f"<b>{result.label_free['accuracy']:.3f}</b> against the <b>{result.accuracy:.3f}</b> measured" in page


def test_predict_prints_the_estimate_and_warns_on_shifted_files(fitted_features, example_test, noisy_test, tmp_path):
    fitted_features.save(tmp_path / "model")
    clean = runner.invoke(app, ["predict", str(tmp_path / "model"), str(example_test)])
    assert clean.exit_code == 0, clean.output
    assert "Estimated accuracy on these 120 images" in clean.output and "Warning" not in clean.output
    scored = runner.invoke(app, ["evaluate", str(tmp_path / "model"), str(example_test)])
    assert "Read from the model's confidence without these labels" in scored.stdout.replace("\n", " ")
    shifted = runner.invoke(app, ["predict", str(tmp_path / "model"), str(noisy_test)])
    assert "Estimated accuracy on these 120 images" in shifted.stdout
    assert "below the fit's 95% interval" in shifted.stderr.replace("\n", " ")
    bulk = runner.invoke(app, ["predict", str(tmp_path / "model"), str(noisy_test), "--out", str(tmp_path / "p.csv"),
                               "--runtime", "torch", "--json"])
    summary = json.loads(bulk.stdout.strip().splitlines()[-1])
    assert summary["written"] == 120 and summary["estimate"]["n"] == 120 and summary["estimate"]["below_fit"]
