"""The estimator contract, checked for both classifiers and every strategy on tiny backbones (seconds each):
scikit-learn's conventions, predictions that agree with probabilities, an honest estimate with its sample size, and
a model folder that loads into an estimator predicting exactly as the one that was saved."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from transferkit import Auto, Features, FineTune, ImageClassifier, Scratch, TextClassifier, load_model
from transferkit.errors import NotFittedError
from transferkit.finetune import ContrastiveTuner, NetworkTuner

STRATEGIES = {  # by modality: a tuner is of one featurizer kind
    "image": {"features": Features, "finetune": lambda: FineTune(tuner=NetworkTuner(epochs=1)),
              "scratch": lambda: Scratch(tuner=NetworkTuner(epochs=1, lr=2e-3, unfreeze="all")), "auto": Auto},
    "text": {"features": Features, "finetune": lambda: FineTune(tuner=ContrastiveTuner(rounds=1, refit=False)),
             "scratch": Scratch, "auto": Auto},  # scratch on texts is TF-IDF: no tuner
}


def _image(tiny_backbone, strategy):
    return ImageClassifier(tiny_backbone, strategy, precision="fp32", batch_size=8, verbose=False)


def _text(tiny_encoder, strategy):
    return TextClassifier(tiny_encoder, strategy, precision="fp32", batch_size=8, verbose=False)


@pytest.fixture(scope="module", params=[(m, s) for m in ("image", "text") for s in STRATEGIES[m]],
                ids=lambda p: f"{p[0]}-{p[1]}")
def case(request, tiny_backbone, tiny_encoder, small_train, text_csv):
    modality, strategy = request.param
    make = (lambda: _image(tiny_backbone, STRATEGIES["image"][strategy]())) if modality == "image" else \
        (lambda: _text(tiny_encoder, STRATEGIES["text"][strategy]()))
    data = small_train if modality == "image" else text_csv
    return make, make().fit(data), data, strategy


def _items(clf, data):
    return list(clf._read(data).items)


def test_the_constructor_only_stores_and_clone_gives_an_unfitted_twin(case):
    make, fitted, _, _ = case
    fresh = make()
    twin = clone(fresh)
    assert twin.get_params(deep=False).keys() == fresh.get_params(deep=False).keys()
    assert not hasattr(twin, "classes_") and not hasattr(fresh, "classes_")
    with pytest.raises(NotFittedError, match="Call fit"):
        twin.predict_proba(["anything"])


def test_fit_learns_the_classes_and_reports_an_estimate_with_its_sample_size(case):
    _, clf, data, strategy = case
    assert clf.classes_.tolist() == sorted(clf.classes_.tolist()) and len(clf.classes_) == 3
    assert clf.strategy_ == strategy
    assert clf.reason_.startswith("auto chose" if strategy == "auto" else strategy)
    m = clf.metrics_
    n = len(clf._read(data).items)
    if "accuracy_estimate" in m:  # tuned: frozen features cross-validated over every label + tuning's gain on a split
        low, high = m["estimate_interval"]
        assert m["probe_cv_n"] == n and m["n_val"] >= 3 and low <= m["accuracy_estimate"] <= high
        assert f"over all {n} labels" in clf.reason_
    elif "val_accuracy" in m:  # trained from scratch: its held-out split, with its size and interval
        assert m["n_val"] >= 3 and m["val_interval"][0] <= m["val_accuracy"] <= m["val_interval"][1]
        assert f"n={m['n_val']}" in clf.reason_
    else:  # frozen or TF-IDF: cross-validated over every label, and the estimate for the head on all of them
        assert m["cv_n"] == n and m["cv_interval"][0] <= m["cv_accuracy"] <= m["cv_interval"][1]
        low, high = m["cv_estimate_interval"]
        assert low <= m["cv_estimate"] <= high and m["cv_estimate"] >= m["cv_calibrated"]
        assert f"n={n}" in clf.reason_ and f"{m['cv_folds']}-fold cross-validated" in clf.reason_
    assert "interval" in clf.reason_


def test_probabilities_are_distributions_and_predict_takes_their_argmax(case):
    _, clf, data, _ = case
    items = _items(clf, data)
    proba = clf.predict_proba(items)
    assert proba.shape == (len(items), 3) and np.allclose(proba.sum(1), 1) and (proba >= 0).all()
    assert clf.predict(items).tolist() == clf.classes_[proba.argmax(1)].tolist()
    assert 0 <= clf.score(data) <= 1


def test_a_saved_model_loads_and_predicts_exactly_as_before(case, tmp_path):
    _, clf, data, _ = case
    clf.save(tmp_path / "model")
    document = json.loads((tmp_path / "model" / "transferkit.json").read_text())
    assert document["format_version"] == 3 and [c["name"] for c in document["components"]] == ["featurizer", "head",
                                                                                                 "open_set"]
    assert "metrics" not in document and "reason" not in document  # what happened lives in report.json
    report = json.loads((tmp_path / "model" / "report.json").read_text())
    assert report["strategy"] == clf.strategy_ and report["reason"] == clf.reason_
    loaded = load_model(tmp_path / "model", verbose=False)
    assert type(loaded) is type(clf) and loaded.classes_.tolist() == clf.classes_.tolist()
    items = _items(clf, data)
    np.testing.assert_allclose(loaded.predict_proba(items), clf.predict_proba(items), rtol=0, atol=1e-6)
