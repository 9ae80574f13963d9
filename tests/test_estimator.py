"""ImageClassifier on real data: the bundled example, paths with labels, unreadable images, options that do not
apply, and strategy settings reachable as nested parameters."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sklearn.base import clone

from transferkit import Features, FineTune, ImageClassifier
from transferkit.errors import BadInputError, NotFittedError
from transferkit.finetune import ContrastiveTuner, NetworkTuner


def test_constructor_only_stores_and_tuner_options_are_nested_parameters():
    clf = ImageClassifier(backbone="lite0", strategy=FineTune(tuner=NetworkTuner(unfreeze=2)), seed=3)
    params = clf.get_params(deep=True)
    assert params["seed"] == 3 and params["strategy__tuner__unfreeze"] == 2
    assert params["strategy__tuner__epochs"] == NetworkTuner.epochs  # the default, written once in the schema
    clf.set_params(strategy__tuner__epochs=5)
    assert clf.strategy.tuner.epochs == 5
    twin = clone(clf)
    assert twin.get_params()["strategy__tuner__epochs"] == 5 and twin.strategy.tuner is not clf.strategy.tuner
    assert not hasattr(twin, "classes_")


def test_a_grid_search_reaches_the_tuners_options():
    from sklearn.model_selection import ParameterGrid

    clf = ImageClassifier(strategy=FineTune(tuner=NetworkTuner()))
    for params in ParameterGrid({"strategy__tuner__unfreeze": [1, "all"], "strategy__tuner__lr": [1e-4]}):
        twin = clone(clf).set_params(**params)
        assert (twin.strategy.tuner.unfreeze, twin.strategy.tuner.lr) == (params["strategy__tuner__unfreeze"], 1e-4)
    assert clf.strategy.tuner.unfreeze == NetworkTuner.unfreeze  # the original is untouched


def test_predict_before_fit_says_to_fit(example_test):
    with pytest.raises(NotFittedError, match="Call fit"):
        ImageClassifier().predict(example_test)


@pytest.mark.parametrize("strategy,message", [
    ("magic", "strategy must be one of"),
    (FineTune(tuner=ContrastiveTuner(rounds=3)), r"a image-backbone is tuned by NetworkTuner\(...\)"),
    (FineTune(tuner=NetworkTuner(epochs=0)), "The 'epochs' parameter of NetworkTuner must be an int in the range"),
    (Features(norm="cubic"), "Features.norm must be one of"),
])
def test_settings_that_cannot_apply_are_refused_before_any_work(small_train, strategy, message):
    with pytest.raises(BadInputError, match=message):
        ImageClassifier(strategy=strategy, verbose=False).fit(small_train)


@pytest.mark.parametrize("seed", [-1, 2 ** 40, 1.5])
def test_a_seed_out_of_range_is_a_clear_error(small_train, seed):
    with pytest.raises(BadInputError, match="seed must be a whole number"):
        ImageClassifier(seed=seed, verbose=False).fit(small_train)


def test_features_strategy_learns_the_bundled_example(fitted_features, example_test):
    assert fitted_features.classes_.tolist() == ["beverages", "birds", "bugs", "desserts", "fruit", "mammals"]
    assert fitted_features.metrics_["cv_accuracy"] > 0.5 and fitted_features.metrics_["cv_n"] == 120  # chance 1/6
    assert fitted_features.score(example_test) > 0.6
    proba = fitted_features.predict_proba(sorted(example_test.rglob("*.png"))[:5])
    assert proba.shape == (5, 6) and np.allclose(proba.sum(1), 1)


def test_fit_accepts_paths_and_labels(small_train):
    paths = sorted(small_train.rglob("*.png"))
    labels = [p.parent.name for p in paths]
    clf = ImageClassifier(strategy="features", verbose=False).fit(paths, labels=labels)
    assert set(clf.classes_) == {"birds", "fruit", "beverages"}
    assert clf.predict(paths).shape == (len(paths),)


def test_unreadable_training_images_are_skipped_and_counted(small_train, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_train, data)
    (data / "birds" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (data / "fruit" / "notes.jpg").write_text("not an image")
    clf = ImageClassifier(strategy="features", verbose=False).fit(data)
    assert sorted(p.name for p, _ in clf.skipped_) == ["corrupt.png", "notes.jpg"]
    assert clf.metrics_["cv_n"] == 18


def test_a_class_left_without_readable_images_stops_with_a_clear_error(small_train, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_train, data)
    (data / "ghosts").mkdir()
    for i in range(3):
        (data / "ghosts" / f"{i}.png").write_bytes(b"nope")
    with pytest.raises(BadInputError, match="'ghosts' has no readable images"):
        ImageClassifier(verbose=False).fit(data)
