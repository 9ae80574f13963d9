"""Transferability scores: LogME against a direct multivariate-normal computation, its ordering on features that
do and do not carry the labels, the kNN check, and `transferkit rank` on the bundled images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from transferkit.rank import class_evidence, knn_cv_accuracy, log_evidence, logme


def _data(seed=0, n=60, d=20, informative=True):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    f = rng.normal(size=(n, d))
    if informative:
        f[:, :3] += 3.0 * np.eye(3)[y]
    return f, y


@pytest.mark.parametrize("n,d", [(60, 20), (15, 40)])  # more examples than features, and fewer
def test_closed_form_evidence_matches_the_gaussian_density(n, d):
    f, y = _data(n=n, d=d)
    t = (y == 1).astype(float)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    for alpha, beta in [(0.5, 2.0), (3.0, 0.7)]:
        direct = multivariate_normal(np.zeros(n), np.eye(n) / beta + f @ f.T / alpha).logpdf(t)
        assert log_evidence(s, d, t, u.T @ t, alpha, beta) == pytest.approx(direct, rel=1e-8)


def test_fixed_point_maximises_the_evidence():
    f, y = _data()
    t = (y == 0).astype(float)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    best, alpha, beta = class_evidence(u, s, f.shape[1], t, tol=1e-8, max_iter=500)
    for a, b in [(alpha * 1.3, beta), (alpha / 1.3, beta), (alpha, beta * 1.3), (alpha, beta / 1.3)]:
        assert log_evidence(s, f.shape[1], t, u.T @ t, a, b) < best


def test_features_that_carry_the_labels_score_higher():
    good, y = _data(informative=True)
    noise, _ = _data(informative=False)
    assert logme(good, y) > logme(noise, y)
    assert knn_cv_accuracy(good, y) > 0.9 > 0.6 > knn_cv_accuracy(noise, y)


def test_rank_cli_ranks_zoo_backbones_with_times(small_train):
    from typer.testing import CliRunner

    from transferkit.cli import app

    result = CliRunner().invoke(app, ["rank", str(small_train), "--models", "tf_efficientnet_lite0,mobilenet_v2",
                                      "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["model"] for r in rows} == {"tf_efficientnet_lite0", "mobilenet_v2"}
    assert rows[0]["logme"] >= rows[1]["logme"]  # best first
    assert all(r["seconds"] > 0 and 0 <= r["knn_accuracy"] <= 1 and r["n_examples"] == 18 for r in rows)
