"""The logistic-regression head predicts exactly as scikit-learn, and re-weights imbalanced classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from transferkit import heads
from transferkit.heads import LinearHead, fit_logistic_head


@pytest.mark.parametrize("n_classes, n_features", [(2, 40), (4, 40), (3, 8)])
def test_head_probabilities_match_scikit_learn(n_classes, n_features, monkeypatch):
    """Fewer rows than features takes the row-space shortcut; it must reach scikit-learn's own optimum."""
    monkeypatch.setattr(heads, "TOLERANCE", 1e-10)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), 15)
    x = rng.normal(size=(len(y), n_features)) + y[:, None] * 0.7
    head = fit_logistic_head(x, y, seed=0)
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=head.C, tol=1e-10, max_iter=10000).fit(scaler.transform(x), y)
    # Same optimum as scikit-learn fitting all features directly...
    np.testing.assert_allclose(head.predict_proba(x), reference.predict_proba(scaler.transform(x)), atol=1e-5)
    # ...and exactly scikit-learn's formula given the same parameters.
    reference.coef_, reference.intercept_ = head.coef, head.intercept
    np.testing.assert_allclose(head.predict_proba(x), reference.predict_proba(scaler.transform(x)), atol=1e-12)


def test_head_round_trips_through_tensors():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 8)
    x = rng.normal(size=(24, 5)) + y[:, None]
    head = fit_logistic_head(x, y)
    again = LinearHead.from_tensors(head.to_tensors(), head.config())
    assert np.array_equal(again.predict_proba(x), head.predict_proba(x))


def test_imbalanced_classes_are_reweighted():
    rng = np.random.default_rng(2)
    y = np.array([0] * 30 + [1] * 6)
    x = rng.normal(size=(36, 4)) + y[:, None] * 0.5
    assert fit_logistic_head(x, y).class_weight == "balanced"
    assert fit_logistic_head(x[:12], np.array([0] * 6 + [1] * 6)).class_weight is None

