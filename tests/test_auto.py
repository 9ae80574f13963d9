"""``auto``'s decisions, one table for images and texts: from the labels per class, how well the frozen features
separate the classes (cross-validated), whether the featurizer can be tuned, the time budget against this machine's
measured speed, and, once tuned, whether tuning beat the frozen features on the same validation split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from transferkit import strategies
from transferkit.heads import LinearHead
from transferkit.strategies import Auto, Features, FineTune, FitRun, Fitted, Probe, Problem


@dataclass
class FakeFeaturizer:
    kind: str
    modality: str
    name: str = "fake"
    learns_from_data: bool = False
    tunable: bool = True

    @property
    def cheap_scratch(self) -> bool:
        return self.modality == "text"

    def companions(self) -> list:
        return []

    def describe(self) -> str:
        return f"frozen {self.name}"


KINDS = {"image": ("image-backbone", "image"), "text": ("sentence-encoder", "text"),
         "vectors": ("word-vectors", "text")}


def _probe(featurizer, per_class: int, cv: float, speed=None) -> Probe:
    y = np.repeat([0, 1], per_class)
    correct = np.arange(len(y)) < round(cv * len(y))
    oof = np.where(correct[:, None], np.eye(2)[y], np.eye(2)[1 - y])
    head = LinearHead.plain(np.zeros((2, 2)), np.zeros(2))  # a head with no typical temperature: the folds' own
    return Probe(featurizer, None, y, np.zeros((len(y), 2)), head, oof, 5, [], {"features_per_second": speed})


def _correct(accuracy: float, n: int) -> np.ndarray:
    return np.arange(n) < round(accuracy * n)


def _decide(monkeypatch, kind: str, per_class: int, cv: float, *, tuned_val=None, probe_val=0.8, tfidf_cv=None,
            budget=None, speed=None, n_val=10):
    featurizer = FakeFeaturizer(*KINDS[kind])
    probe = _probe(featurizer, per_class, cv, speed)
    calls = []

    def fake_finetune(self, problem, probe=None, **defaults):
        calls.append(defaults)
        return Fitted("tuned", None, {"val_correct": _correct(tuned_val, n_val).tolist()}, "finetune: ...")

    monkeypatch.setattr(Probe, "split_correct", lambda *a: _correct(probe_val, n_val))

    def fake_scratch(self, problem):
        return Fitted("tfidf", None, {"cv_accuracy": tfidf_cv}, "scratch: ...")

    monkeypatch.setattr(FineTune, "fit", fake_finetune)
    monkeypatch.setattr(strategies.Scratch, "fit", fake_scratch)
    problem = Problem(featurizer, None, ["a", "b"], FitRun())
    fitted, choice, why = Auto(time_budget=budget)._decide(problem, probe, probe, Features(), FineTune())
    return choice, why, fitted, calls


@pytest.mark.parametrize("kind,per_class,cv,extra,expected,why", [
    ("image", 10, 0.60, {}, "features", "the smallest class has 10 labels; tuning paid off from 50"),
    ("image", 200, 0.99, {}, "features", "already separate the classes (0.990 cross-validated over 400 labels"),
    ("image", 80, 0.80, {"tuned_val": 0.9}, "finetune", "leave room to tune"),
    ("image", 80, 0.80, {"tuned_val": 0.8}, "features", "not above the frozen features' 0.800 on the same split"),
    # text: tuning paid off in every benchmark in its range, so a small split cannot overturn it...
    ("text", 8, 0.80, {"tuned_val": 0.6}, "finetune", "kept unless significantly worse"),
    # ...but a clear loss on a larger split does (16 of 40 right against 36 of 40)
    ("text", 60, 0.80, {"tuned_val": 0.4, "probe_val": 0.9, "n_val": 40, "tfidf_cv": 0.5}, "features",
     "significantly better"),
    # 12 epochs x 160 images at the unmeasured 25 img/s: 77 s
    ("image", 80, 0.80, {"budget": 10.0, "tuned_val": 0.9}, "features", "about 77 s, over the 10 s budget"),
    # measured 500 img/s extraction -> 100 img/s training: 19 s
    ("image", 80, 0.80, {"budget": 100.0, "speed": 500.0, "tuned_val": 0.9}, "finetune", "leave room to tune"),
    ("text", 8, 0.80, {"tuned_val": 0.9}, "finetune", "leave room to tune"),
    ("text", 60, 0.99, {"tuned_val": 0.9, "tfidf_cv": 0.5}, "features", "already separate"),
    # 39 of 40 right reads 0.975 but its interval reaches down to 0.87: room to tune
    ("text", 20, 0.975, {"tuned_val": 0.9}, "finetune", "leave room to tune"),
    ("text", 100, 0.80, {"tfidf_cv": 0.95}, "scratch", "TF-IDF reached 0.950"),
    ("text", 100, 0.80, {"tfidf_cv": 0.70}, "features", "tuning paid off between 2 and 64"),
    ("vectors", 8, 0.80, {}, "features", "a word-vectors featurizer cannot be tuned"),
])
def test_auto_decision_table(monkeypatch, kind, per_class, cv, extra, expected, why):
    choice, reason, fitted, _ = _decide(monkeypatch, kind, per_class, cv, **extra)
    assert choice == expected
    assert why in reason
    assert fitted.featurizer == {"finetune": "tuned", "scratch": "tfidf"}.get(expected, fitted.featurizer)


def test_a_tie_follows_what_the_benchmarks_measured_for_the_tuner_one_table_for_both_modalities(monkeypatch):
    """One rule, written once, with the measured prior of each tuner kind as data (``TUNING_PAYS``): where tuning paid
    off reliably (sentence encoders, 2-64 labels per class) a tie keeps the tuned model; elsewhere the simpler one."""
    for kind, per_class in (("image", 80), ("text", 8)):
        choice, _, _, _ = _decide(monkeypatch, kind, per_class, 0.8, tuned_val=0.8, probe_val=0.8)
        reliable = strategies.TUNING_PAYS[KINDS[kind][0]].reliable
        assert choice == ("finetune" if reliable else "features"), kind


@pytest.mark.parametrize("per_class,unfreeze", [(80, 4), (250, "all")])
def test_auto_unfreezes_more_stages_with_more_labels(monkeypatch, per_class, unfreeze):
    _, _, _, calls = _decide(monkeypatch, "image", per_class, 0.8, tuned_val=0.9)
    assert calls == [{"unfreeze": unfreeze}]


def test_auto_states_its_choice_in_the_reason_and_metrics(monkeypatch):
    featurizer = FakeFeaturizer(*KINDS["image"])
    probe = _probe(featurizer, 10, 0.6)
    monkeypatch.setattr(strategies, "run_probe", lambda *a, **k: probe)
    fitted = Auto().fit(Problem(featurizer, None, ["a", "b"], FitRun()))
    assert fitted.metrics["auto_choice"] == "features"
    assert fitted.reason.startswith("auto chose features: the smallest class has 10 labels")


@pytest.mark.parametrize("single,combined,budget,expected,why", [
    (0.70, 0.75, None, "ensemble", "4 zoo backbones side by side cross-validate at 0.750"),
    (0.70, 0.70, None, "ensemble", "side by side cross-validate at 0.700"),  # a tie keeps the measured default
    (0.80, 0.70, None, "ensemble", "unless the single backbone is significantly better"),  # 2 of 20: noise
    (0.95, 0.50, None, "single", "fake alone cross-validates at 0.950, significantly above"),
    # 20 labels x 3 companions x 1.3 / 10 per second: 8 s
    (0.70, 0.75, 1.0, "single", "would take about 8 s to add, over the 1 s budget"),
])
def test_auto_adds_the_zoos_other_backbones_when_they_cross_validate_at_least_as_well(
        monkeypatch, single, combined, budget, expected, why):
    featurizer = FakeFeaturizer(*KINDS["image"])
    featurizer.companions = lambda: ["b", "c", "d"]
    alone = _probe(featurizer, 10, single, speed=10.0)
    together = _probe("concat", 10, combined)
    monkeypatch.setattr(strategies, "run_probe", lambda f, *a, **k: together)
    monkeypatch.setattr("transferkit.featurizers.Concat", lambda members: "concat")
    chosen, reason = Auto(time_budget=budget)._frozen(Problem(featurizer, None, ["a", "b"], FitRun()), alone,
                                                      Features())
    assert (chosen is together) == (expected == "ensemble") and why in reason


def test_auto_without_ensemble_measures_the_featurizer_alone(monkeypatch):
    featurizer = FakeFeaturizer(*KINDS["image"])
    featurizer.companions = lambda: pytest.fail("companions asked for")
    probe = _probe(featurizer, 10, 0.7)
    assert Auto(ensemble=False)._frozen(Problem(featurizer, None, ["a", "b"], FitRun()), probe, Features()) == (probe, "")


@pytest.mark.slow  # tunes a (tiny) sentence encoder
def test_a_fit_that_tunes_draws_its_validation_split_once(text_csv, tiny_encoder, monkeypatch):
    """auto compares the tuned encoder with the frozen one on the split the tuner validated on: one split, one
    verdict of the frozen head on it, however many steps ask for them."""
    from transferkit import TextClassifier

    drawn = []
    real = strategies.stratified_split
    monkeypatch.setattr(strategies, "stratified_split", lambda *a, **k: drawn.append(a[1:]) or real(*a, **k))
    clf = TextClassifier(tiny_encoder, Auto(), verbose=False).fit(text_csv)
    assert "val_correct" in clf.metrics_  # it tuned, and validated on the split
    assert len(drawn) == 1
