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


def test_a_cross_validated_accuracy_is_moved_up_the_learning_curve_by_what_its_folds_did_not_see():
    from transferkit.evaluate import LEARNING_CURVE_SLOPE, cv_estimate

    half = np.array([1] * 10 + [0] * 10)
    two, five = cv_estimate(half, folds=2), cv_estimate(half, folds=5)
    assert two["measured"] == five["measured"] == 0.5
    # in log-odds: slope * log(2) for heads that saw half of the labels, slope * log(5 / 4) for four fifths
    assert np.log(two["accuracy"] / (1 - two["accuracy"])) == pytest.approx(LEARNING_CURVE_SLOPE * np.log(2))
    assert 0.5 < five["accuracy"] < two["accuracy"] < 0.7
    for e in (two, five):  # the interval moves with it and still holds the estimate
        assert e["interval"][0] < e["accuracy"] < e["interval"][1] and e["n"] == 20
    assert cv_estimate(np.ones(8), folds=2)["accuracy"] == 1.0  # nothing to correct at the ends
    assert cv_estimate(np.zeros(8), folds=2)["accuracy"] == 0.0


def test_a_tuned_models_estimate_adds_the_paired_gain_to_the_frozen_estimate():
    from transferkit.evaluate import cv_estimate, tuned_estimate

    cv = np.array([1] * 16 + [0] * 4)  # frozen features: 0.80 over 20 labels, 5 folds
    frozen_estimate = cv_estimate(cv, folds=5)["accuracy"]
    tuned = np.array([1, 1, 1, 1, 0])  # 4 of 5 held out...
    frozen = np.array([1, 1, 1, 0, 0])  # ...against 3 of 5 for the frozen features on the same split
    e = tuned_estimate(cv, tuned, frozen, folds=5)
    assert e["accuracy"] == pytest.approx(min(1.0, frozen_estimate + 0.20)) and e["n"] == 20 and e["n_val"] == 5
    assert e["frozen_cv"] == pytest.approx(0.80) and e["interval"][0] < 1.0 and e["interval"][1] == 1.0
    same = tuned_estimate(cv, frozen, frozen, folds=5)  # no gain: the frozen features' estimate
    assert same["accuracy"] == pytest.approx(frozen_estimate) and same["interval"][1] - same["interval"][0] < 0.4


def test_a_fit_reports_its_most_telling_accuracy_and_old_models_their_cross_validation():
    from transferkit.evaluate import reported_accuracy

    tuned = {"accuracy_estimate": 0.9, "estimate_interval": [0.8, 1.0], "probe_cv_n": 40, "cv_estimate": 0.7}
    assert reported_accuracy(tuned)["key"] == "accuracy_estimate" and reported_accuracy(tuned)["n"] == 40
    frozen = {"cv_accuracy": 0.6, "cv_interval": [0.4, 0.8], "cv_n": 20, "cv_estimate": 0.65,
              "cv_estimate_interval": [0.45, 0.82]}
    assert reported_accuracy(frozen) == {"key": "cv_estimate", "accuracy": 0.65, "interval": [0.45, 0.82], "n": 20,
                                         "what": reported_accuracy(frozen)["what"]}
    old = {"cv_accuracy": 0.6, "cv_interval": [0.4, 0.8], "cv_n": 20}  # saved before the estimate existed
    assert reported_accuracy(old)["key"] == "cv_accuracy" and reported_accuracy({}) is None
