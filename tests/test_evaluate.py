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
