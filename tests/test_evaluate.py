"""Evaluation numbers: calibration bins and expected calibration error, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest


def test_calibration_bins_and_expected_calibration_error():
    from transferkit.evaluate import calibration

    confidence = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    correct = np.array([1, 1, 1, 0, 1, 0], dtype=bool)
    ece, bins = calibration(confidence, correct, bins=10)
    # bin 0.9-1.0: accuracy 0.75 at confidence 0.95; bin 0.5-0.6: accuracy 0.5 at confidence 0.55
    assert ece == pytest.approx(4 / 6 * 0.20 + 2 / 6 * 0.05)
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 2, 0, 0, 0, 4]


def _held_out(right: int, wrong: int, p_right: float = 0.9, p_wrong: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Two-class out-of-fold probabilities: ``right`` rows predicted correctly with probability ``p_right``, ``wrong``
    rows predicted wrongly with probability ``p_wrong``; the labels are class 0."""
    proba = np.array([[p_right, 1 - p_right]] * right + [[1 - p_wrong, p_wrong]] * wrong)
    return proba, np.zeros(right + wrong, dtype=int)


def test_held_out_accuracy_read_from_calibrated_probabilities_tracks_the_count_with_less_luck():
    from transferkit.evaluate import calibrated_accuracy

    # already calibrated (9 of 10 right at 0.9, 6 of 10 at 0.6): no temperature changes them, and the reading is
    # the count, 15 of 20
    sure, unsure = _held_out(9, 1, p_right=0.9, p_wrong=0.9), _held_out(6, 4, p_right=0.6, p_wrong=0.6)
    proba, y = np.vstack([sure[0], unsure[0]]), np.concatenate([sure[1], unsure[1]])
    assert calibrated_accuracy(proba, y) == pytest.approx(0.75, abs=1e-3)
    # the same count, right by a hair and wrong with confidence, reads lower: 15 of 20 that were nearly 10
    hair, y = _held_out(15, 5, p_right=0.55, p_wrong=0.95)
    assert calibrated_accuracy(hair, y) < 0.75 - 0.1
    everything_right, y = _held_out(8, 0)
    assert calibrated_accuracy(everything_right, y) > 0.99


def test_the_temperature_fitted_to_overconfident_probabilities_undoes_their_overconfidence():
    from transferkit.evaluate import fit_temperature, mean_confidence

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(4000, 3))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in truth])
    overconfident = np.exp(2 * logits) / np.exp(2 * logits).sum(1, keepdims=True)  # logits doubled
    assert fit_temperature(overconfident, y) == pytest.approx(2.0, rel=0.1)
    assert mean_confidence(overconfident, 2.0) == pytest.approx(truth.max(1).mean(), abs=1e-9)
    assert mean_confidence(overconfident) > truth.max(1).mean() + 0.05


def test_a_handful_of_labels_draws_the_temperature_toward_the_typical_one_and_many_labels_decide_it():
    from transferkit.evaluate import fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(4000, 3))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in truth])
    overconfident = np.exp(2 * logits) / np.exp(2 * logits).sum(1, keepdims=True)  # needs a temperature of 2
    few = slice(0, 12)
    alone = fit_temperature(overconfident[few], y[few])
    drawn = fit_temperature(overconfident[few], y[few], typical=1.0)
    assert abs(np.log(drawn)) < abs(np.log(alone)) and abs(np.log(drawn)) < 0.5  # held near 1
    assert fit_temperature(overconfident, y, typical=1.0) == pytest.approx(2.0, rel=0.1)  # 4000 labels overrule it
    assert fit_temperature(overconfident, y, typical=None) == fit_temperature(overconfident, y)


def test_the_default_head_knows_its_typical_temperature_and_other_heads_do_not():
    from transferkit.heads import POWER, TYPICAL_TEMPERATURE, fit_head

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 4)
    pooled = np.abs(rng.normal(size=(12, 16)))  # non-negative: the power transform's head
    embedded = rng.normal(size=(12, 16))  # signed: features as they are
    assert fit_head(pooled, y, power="auto").typical_temperature == TYPICAL_TEMPERATURE[POWER]
    assert fit_head(embedded, y, power="auto").typical_temperature == TYPICAL_TEMPERATURE[1.0]
    assert fit_head(embedded, y, power="auto", C=1.0).typical_temperature is None  # never measured
    assert fit_head(embedded, y, norm="standard").typical_temperature is None


def test_a_probe_fits_its_folds_temperature_toward_its_heads_typical_one():
    from transferkit.evaluate import cv_estimate, fit_temperature, tuned_estimate
    from transferkit.heads import cross_val_proba, fit_head
    from transferkit.strategies import Probe

    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 2)  # 2 labels per class, as the few-shot suite's smallest cells
    x = rng.normal(size=(8, 32)) + 3 * np.eye(4, 32)[y]
    fit = lambda a, b: fit_head(a, b, power="auto")  # noqa: E731
    oof, folds = cross_val_proba(fit, x, y)
    probe = Probe(None, None, y, x, fit(x, y), oof, folds, [], {})
    typical = probe.head.typical_temperature
    assert probe.estimate["temperature"] == pytest.approx(fit_temperature(oof, y, typical))
    assert probe.estimate == cv_estimate(oof, y, folds, typical_temperature=typical)
    assert probe.estimate["temperature"] != pytest.approx(fit_temperature(oof, y))
    tuned = tuned_estimate(oof, y, [1, 1], [1, 1], folds, typical_temperature=typical)  # a tuned model starts there
    assert tuned["frozen_estimate"] == probe.estimate["accuracy"]


def test_a_cross_validated_accuracy_is_moved_up_the_learning_curve_by_what_its_folds_did_not_see():
    from transferkit.evaluate import LEARNING_CURVE_SLOPE, calibrated_accuracy, cv_estimate

    proba, y = _held_out(10, 10, p_right=0.7, p_wrong=0.7)
    two, five = cv_estimate(proba, y, folds=2), cv_estimate(proba, y, folds=5)
    assert two["measured"] == five["measured"] == 0.5
    read = calibrated_accuracy(proba, y)
    assert two["calibrated"] == read
    # in log-odds: slope * log(2) for heads that saw half of the labels, slope * log(5 / 4) for four fifths
    shift = np.log(two["accuracy"] / (1 - two["accuracy"])) - np.log(read / (1 - read))
    assert shift == pytest.approx(LEARNING_CURVE_SLOPE * np.log(2))
    assert read < five["accuracy"] < two["accuracy"] < read + 0.2
    for e in (two, five):  # the interval moves with it and still holds the estimate
        assert e["interval"][0] < e["accuracy"] < e["interval"][1] and e["n"] == 20
    right, y = _held_out(8, 0)
    assert cv_estimate(right, y, folds=2)["accuracy"] > 0.99  # nothing to correct at the top


def test_a_tuned_models_estimate_adds_the_paired_gain_to_the_frozen_estimate():
    from transferkit.evaluate import cv_estimate, tuned_estimate

    cv, y = _held_out(16, 4)  # frozen features: 16 of 20 labels, 5 folds
    frozen_estimate = cv_estimate(cv, y, folds=5)["accuracy"]
    tuned = np.array([1, 1, 1, 1, 0])  # 4 of 5 held out...
    frozen = np.array([1, 1, 1, 0, 0])  # ...against 3 of 5 for the frozen features on the same split
    e = tuned_estimate(cv, y, tuned, frozen, folds=5)
    assert e["accuracy"] == pytest.approx(min(1.0, frozen_estimate + 0.20)) and e["n"] == 20 and e["n_val"] == 5
    assert e["frozen_cv"] == pytest.approx(0.80) and e["interval"][0] < 1.0 and e["interval"][1] == 1.0
    same = tuned_estimate(cv, y, frozen, frozen, folds=5)  # no gain: the frozen features' estimate
    assert same["accuracy"] == pytest.approx(frozen_estimate) and same["interval"][1] - same["interval"][0] < 0.4


def test_with_a_measured_prior_a_few_held_out_items_barely_move_tunings_gain():
    from transferkit.evaluate import cv_estimate, tuned_estimate

    cv, y = _held_out(16, 4)
    frozen_estimate = cv_estimate(cv, y, folds=5)["accuracy"]
    prior = (0.04, 0.035)  # what tuning gained in the benchmarks
    # 4 held out on which both models agree: no evidence either way, the benchmarks' gain stands
    agree = np.array([1, 1, 1, 0])
    e = tuned_estimate(cv, y, agree, agree, folds=5, gain_prior=prior)
    assert e["gain_on_split"] == 0.0 and e["gain"] == pytest.approx(0.04, abs=0.002)
    assert e["accuracy"] == pytest.approx(frozen_estimate + e["gain"])
    # one item lost out of 4 (-0.25 on the split) moves it a little, not by a quarter
    lost = tuned_estimate(cv, y, np.array([1, 1, 0, 0]), agree, folds=5, gain_prior=prior)
    assert 0.0 < lost["gain"] < 0.04
    # 400 held out showing a clear loss outweigh the prior
    many = tuned_estimate(cv, y, np.array([1] * 200 + [0] * 200), np.array([1] * 260 + [0] * 140), folds=5,
                          gain_prior=prior)
    assert many["gain"] < -0.05
    for estimate in (e, lost, many):
        assert estimate["interval"][0] < estimate["accuracy"] < estimate["interval"][1]


def test_the_benchmarks_gain_is_a_prior_only_for_the_recipe_they_measured():
    from transferkit.finetune.tuners import ContrastiveTuner, NetworkTuner
    from transferkit.strategies import TUNING_PAYS, measured_gain

    text = TUNING_PAYS["sentence-encoder"]
    assert measured_gain("sentence-encoder", ContrastiveTuner()) == (text.gain, text.gain_sd)
    assert measured_gain("sentence-encoder", ContrastiveTuner(refit=True)) == (text.gain, text.gain_sd)
    assert measured_gain("sentence-encoder", ContrastiveTuner(rounds=5)) is None  # another recipe: its split alone
    assert measured_gain("image-backbone", NetworkTuner()) is None  # not measured


def test_a_fit_reports_its_most_telling_accuracy_and_old_models_their_cross_validation():
    from transferkit.fitreport import FitReport

    tuned = FitReport(metrics={"accuracy_estimate": 0.9, "estimate_interval": [0.8, 1.0], "probe_cv_n": 40,
                               "cv_estimate": 0.7})
    assert tuned.estimate.key == "accuracy_estimate" and tuned.estimate.n == 40
    frozen = FitReport(metrics={"cv_accuracy": 0.6, "cv_interval": [0.4, 0.8], "cv_n": 20, "cv_estimate": 0.65,
                                "cv_estimate_interval": [0.45, 0.82], "cv_folds": 5})
    e = frozen.estimate
    assert (e.key, e.value, e.interval, e.n, e.name) == ("cv_estimate", 0.65, (0.45, 0.82), 20, "estimated accuracy")
    assert [a.key for a in frozen.measured] == ["cv_estimate", "cv_accuracy"] and frozen.measured[1].folds == 5
    old = FitReport(metrics={"cv_accuracy": 0.6, "cv_interval": [0.4, 0.8], "cv_n": 20})  # saved before the estimate
    assert old.estimate.key == "cv_accuracy" and old.estimate.name == "cross-validated accuracy"
    assert FitReport().estimate is None and FitReport(metrics={"cv_accuracy": True}).estimate is None


def test_a_fit_report_reads_the_temperature_the_fit_recorded_and_round_trips_through_report_json():
    from transferkit.fitreport import FitReport

    assert FitReport(metrics={"val_temperature": 0.5}).temperature == 0.5
    assert FitReport(metrics={"cv_temperature": 0.7, "val_temperature": 0.5}).temperature == 0.7  # the folds' first
    assert FitReport(metrics={"cv_temperature": "hot"}).temperature is None
    report = FitReport("features", "why", {"cv_accuracy": 0.5, "cv_interval": [0.2, 0.8], "cv_n": 8}, (("a.png",
                       "not an image file"),), ("a note",), ("abc",))
    assert FitReport.from_dict(report.to_dict()) == report
    assert report.essentials() == {"cv_accuracy": 0.5, "cv_interval": [0.2, 0.8], "cv_n": 8}
