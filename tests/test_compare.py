"""Learning curves: fixed test split, k per class, the recommendation drawn from the measured numbers, and the
`transferkit compare` HTML report."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from transferkit.cli import app
from transferkit.compare import CurvePoint, recommend, sample_per_class


def _points(curves: dict[str, dict[int, float]]) -> list[CurvePoint]:
    return [CurvePoint(s, k, seed, acc + (0.01 if seed else -0.01), 1.0 + (s == "finetune") * 20, k * 3, 90)
            for s, per_k in curves.items() for k, acc in per_k.items() for seed in range(2)]


def test_sampling_takes_k_per_class_from_the_pool_only():
    labels = ["a"] * 10 + ["b"] * 10
    pool = np.array([0, 1, 2, 3, 10, 11, 12, 13, 14])
    chosen = sample_per_class(labels, pool, 3, seed=0)
    assert len(chosen) == 6 and set(chosen) <= set(pool.tolist())
    assert len(sample_per_class(labels, pool, 9, seed=0)) == 9  # a class with fewer gives all it has


def test_recommendation_when_transfer_pays_and_the_curve_flattens():
    lines = recommend(_points({"features": {2: 0.60, 5: 0.80, 10: 0.85, 20: 0.855},
                               "scratch": {2: 0.20, 5: 0.25, 10: 0.35, 20: 0.45}}))
    assert lines[0] == ("Transfer pays off here at every measured size: features beats training from scratch by 40 "
                        "points with 2 labels per class and by 40 with 20.")
    assert "with 10 labels per class: labeling more than that brought little" in lines[1]
    assert lines[2] == "With 20 labels per class use features (85.5%)."


def test_recommendation_when_scratch_wins_says_so_and_suggests_rank():
    lines = recommend(_points({"features": {5: 0.30, 20: 0.40}, "scratch": {5: 0.50, 20: 0.70}}))
    assert lines[0].startswith("Transfer does not pay off on this data") and "transferkit rank" in lines[0]


def test_recommendation_prefers_a_cheaper_strategy_within_a_point():
    lines = recommend(_points({"features": {10: 0.80, 50: 0.900}, "finetune": {10: 0.78, 50: 0.905}}))
    assert lines[-1] == ("With 50 labels per class use finetune (90.5%), or features, within a point and faster "
                         "(1 s against 21 s).")


def test_compare_cli_writes_the_report_with_the_runs_it_prints(small_train, tmp_path):
    report = tmp_path / "compare.html"
    result = CliRunner().invoke(app, ["compare", str(small_train), "--ks", "2,3", "--seeds", "2",
                                      "--strategies", "features", "--out", str(report), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(r["k"], r["seed"]) for r in out["runs"]] == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert all(r["n_train"] == 3 * r["k"] for r in out["runs"])
    page = report.read_text()
    assert "data:image/png;base64," in page and out["recommendation"][0] in page.replace("&#x27;", "'")
    for r in out["runs"]:
        assert f"<td>{r['accuracy']:.4f}</td>" in page


def test_compare_on_text_pits_frozen_embeddings_against_tfidf(text_csv, tmp_path):
    result = CliRunner().invoke(app, ["compare", str(text_csv), "--ks", "2,4", "--seeds", "1",
                                      "--out", str(tmp_path / "c.html"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {(r["strategy"], r["k"]) for r in out["runs"]} == {(s, k) for s in ("features", "scratch") for k in (2, 4)}
    assert any("scratch" in line for line in out["recommendation"])
