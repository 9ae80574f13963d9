"""ImageClassifier: the scikit-learn contract, fitting on the bundled example, bundles and bad data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.base import clone

from transferkit import ImageClassifier
from transferkit.bundle import CONFIG_FILE, WEIGHTS_FILE
from transferkit.errors import BadInputError, BundleError, NotFittedError


def test_constructor_only_stores_and_clone_works():
    clf = ImageClassifier(backbone="lite0", strategy="scratch", seed=3)
    assert clf.get_params()["seed"] == 3
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and not hasattr(copy, "classes_")


def test_predict_before_fit_says_to_fit(example_test):
    with pytest.raises(NotFittedError, match="Call fit"):
        ImageClassifier().predict(example_test)


def test_unknown_strategy_is_refused(small_train):
    with pytest.raises(BadInputError, match="strategy must be one of"):
        ImageClassifier(strategy="magic").fit(small_train)


def test_features_strategy_learns_the_bundled_example(fitted_features, example_test):
    assert fitted_features.classes_.tolist() == ["beverages", "birds", "bugs", "desserts", "fruit", "mammals"]
    assert fitted_features.metrics_["val_accuracy"] > 0.5  # chance is 1/6
    assert fitted_features.score(example_test) > 0.6
    proba = fitted_features.predict_proba(sorted(example_test.rglob("*.png"))[:5])
    assert proba.shape == (5, 6) and np.allclose(proba.sum(1), 1)


def test_fit_accepts_paths_and_labels(small_train):
    paths = sorted(small_train.rglob("*.png"))
    labels = [p.parent.name for p in paths]
    clf = ImageClassifier(verbose=False).fit(paths, labels=labels)
    assert set(clf.classes_) == {"birds", "fruit", "beverages"}
    assert clf.predict(paths).shape == (len(paths),)


def test_bundle_round_trip_predicts_identically(fitted_features, example_test, tmp_path):
    fitted_features.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [WEIGHTS_FILE, CONFIG_FILE]
    config = json.loads((tmp_path / "model" / CONFIG_FILE).read_text())
    assert config["strategy"] == "features" and config["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert {"torch", "timm", "scikit-learn"} <= set(config["versions"])
    loaded = ImageClassifier.load(tmp_path / "model", verbose=False)
    files = sorted(example_test.rglob("*.png"))
    assert np.array_equal(loaded.predict_proba(files), fitted_features.predict_proba(files))


def test_a_crash_while_saving_leaves_the_old_bundle_intact(fitted_features, tmp_path, monkeypatch):
    target = tmp_path / "model"
    fitted_features.save(target)
    before = (target / WEIGHTS_FILE).read_bytes()
    import safetensors.torch

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        fitted_features.save(target)
    assert (target / WEIGHTS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no half-written folder left behind


def test_a_half_written_folder_is_not_loaded(tmp_path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / CONFIG_FILE).write_text("{}")
    with pytest.raises(BundleError, match="not a complete transferkit model"):
        ImageClassifier.load(tmp_path / "partial")


def test_unreadable_training_images_are_skipped_and_counted(small_train, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_train, data)
    (data / "birds" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (data / "fruit" / "notes.jpg").write_text("not an image")
    clf = ImageClassifier(verbose=False).fit(data)
    assert sorted(p.name for p, _ in clf.skipped_) == ["corrupt.png", "notes.jpg"]
    assert clf.metrics_["n_train"] + clf.metrics_["n_val"] == 18


def test_a_class_left_without_readable_images_stops_with_a_clear_error(small_train, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_train, data)
    (data / "ghosts").mkdir()
    for i in range(3):
        (data / "ghosts" / f"{i}.png").write_bytes(b"nope")
    with pytest.raises(BadInputError, match="'ghosts' has no readable images"):
        ImageClassifier(verbose=False).fit(data)
