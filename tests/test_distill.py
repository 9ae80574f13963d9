"""A one-network student of auto's side-by-side teacher (``transferkit.distill``): it learns the teacher's labels of
the unlabeled items, is kept unless held-out labels show it significantly worse, reports that held-out accuracy,
and saves and predicts at one backbone's cost; ``Auto(distill=False)`` keeps the teacher."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import Auto, Features, ImageClassifier
from transferkit.distill import distill
from transferkit.featurizers import Concat
from transferkit.heads import fit_head, logits_to_proba, neighbour_vote
from transferkit.unlabeled import spread_labels


def _task(rng, n_per_class: int, noise: float):
    """Three classes; the teacher's features show the class plainly, the student's only through ``noise``."""
    y = np.repeat([0, 1, 2], n_per_class)
    clean = np.eye(3)[y] * 4 + rng.normal(0, 1, (len(y), 3))
    teacher = np.abs(np.hstack([clean, rng.normal(0, 1, (len(y), 5))]))
    student = np.abs(np.hstack([clean + rng.normal(0, noise, clean.shape), rng.normal(0, 1, (len(y), 5))]))
    return teacher, student, y


def _distil(x_teacher, x_student, y, pool_teacher, pool_student, teacher=None):
    teacher = teacher or fit_head(x_teacher, y, power="auto")
    return distill(teacher, lambda a, b: fit_head(a, b, power="auto"), x_teacher=x_teacher, x_student=x_student,
                   y=y, pool_teacher=pool_teacher, pool_student=pool_student, adapt=lambda head, a, b: head)


def test_a_student_learns_from_the_teachers_labels_of_the_pool_what_a_handful_of_labels_cannot_teach_it():
    rng = np.random.default_rng(0)
    x_t, x_s, y = _task(rng, 5, noise=1.5)
    pool_t, pool_s, _ = _task(rng, 300, noise=1.5)
    test_t, test_s, y_test = _task(rng, 200, noise=1.5)
    result = _distil(x_t, x_s, y, pool_t, pool_s)
    alone = fit_head(x_s, y, power="auto")
    student_accuracy = (result.head.predict_proba(test_s).argmax(1) == y_test).mean()
    assert result.info["kept"] and result.head.n_features == x_s.shape[1]
    assert student_accuracy > (alone.predict_proba(test_s).argmax(1) == y_test).mean() + 0.05
    assert result.info["pseudo_label_counts"] == np.bincount(fit_head(x_t, y, power="auto").predict_proba(
        pool_t).argmax(1), minlength=3).tolist()
    assert result.info["student_n"] == 15 and 0 <= result.info["student_estimate"] <= 1
    assert "is the saved model" in result.sentence


def test_the_student_votes_with_its_nearest_labeled_and_unlabeled_items_as_much_as_its_linear_head():
    rng = np.random.default_rng(2)
    x_t, x_s, y = _task(rng, 5, noise=2.0)
    pool_t, pool_s, _ = _task(rng, 100, noise=2.0)
    test_t, test_s, _ = _task(rng, 20, noise=2.0)
    head = _distil(x_t, x_s, y, pool_t, pool_s).head
    assert head.neighbours.shape == (len(y) + 300, x_s.shape[1]) and result_rows_sum_to_one(head.neighbour_proba)
    assert np.array_equal(head.neighbour_proba[:len(y)], np.eye(3)[y])  # the labels vote for their own class
    spread = spread_labels(fit_head(x_t, y, power="auto"), x_t, y, pool_t, centred=False)
    np.testing.assert_allclose(head.neighbour_proba[len(y):], spread, atol=1e-6)
    z = head.normalise(test_s)
    linear = logits_to_proba(z @ head.coef.T + head.intercept)
    np.testing.assert_allclose(head.predict_proba(test_s),
                               (linear + neighbour_vote(head.neighbours, head.neighbour_proba, z)) / 2, atol=1e-6)


def result_rows_sum_to_one(proba) -> bool:
    return bool(np.allclose(proba.sum(1), 1.0, atol=1e-5))


def test_a_vote_significantly_worse_on_held_out_labels_is_dropped(monkeypatch):
    from transferkit import heads

    rng = np.random.default_rng(0)
    x_t, x_s, y = _task(rng, 20, noise=1.0)
    pool_t, pool_s, _ = _task(rng, 100, noise=1.0)
    # a vote that always says the first class, whatever the item
    monkeypatch.setattr(heads, "neighbour_vote", lambda rows, proba, items, **_: np.eye(proba.shape[1])[
        np.zeros(len(items), int)])
    result = _distil(x_t, x_s, y, pool_t, pool_s)
    vote = result.info["vote"]
    assert result.info["kept"] and not vote["kept"] and vote["fold_accuracy_with"] < vote["fold_accuracy_without"]
    assert result.head.neighbours is None and "does not vote" in result.sentence
    assert result.info["student_estimate"] == vote["fold_accuracy_without"]


def test_label_spreading_carries_the_labels_along_the_pools_own_neighbourhoods():
    """Two interleaved half moons, two labels at the ends of each: a linear head cuts across them; the pool's chain of
    neighbours carries each moon's label around it."""
    from sklearn.datasets import make_moons

    pool, side = make_moons(300, noise=0.05, random_state=0)
    moons = [np.flatnonzero(side == s) for s in (0, 1)]
    ends = [m[pick(pool[m, 0])] for m in moons for pick in (np.argmin, np.argmax)]
    x, y = pool[ends], side[ends]
    head = fit_head(x, y, norm="none")
    spread = spread_labels(head, x, y, pool, centred=False)
    assert (spread.argmax(1) == side).mean() > 0.95 > (head.predict_proba(pool).argmax(1) == side).mean()


def test_a_student_significantly_worse_on_held_out_labels_is_not_kept():
    rng = np.random.default_rng(1)
    x_t, _, y = _task(rng, 30, noise=0.0)
    pool_t, _, _ = _task(rng, 100, noise=0.0)
    # the student sees only noise: no teacher can teach it the classes
    result = _distil(x_t, np.abs(rng.normal(0, 1, (len(y), 8))), y, pool_t, np.abs(rng.normal(0, 1, (300, 8))))
    assert result.head is None and not result.info["kept"]
    assert result.info["student_estimate"] < result.info["teacher_fold_accuracy"]
    assert "teacher is kept" in result.sentence


@pytest.fixture()
def two_backbones(monkeypatch, tiny_backbone):
    """The tiny backbone with a companion (a second copy of it): auto's side by side teacher, in seconds."""
    from transferkit.featurizers._image import ImageBackbone
    from transferkit.zoo import resolve

    def companions(self):
        return [ImageBackbone.from_spec(resolve(tiny_backbone)).with_view("mirror")]

    monkeypatch.setattr(ImageBackbone, "companions", companions)
    return tiny_backbone


def test_auto_with_unlabeled_images_saves_the_student_which_predicts_as_it_did(two_backbones, small_train, pool_folder,
                                                                               tmp_path):
    clf = ImageClassifier(two_backbones, Auto(), verbose=False).fit(small_train, X_unlabeled=pool_folder)
    student = clf.metrics_["student"]
    if not student["kept"]:
        pytest.skip("the random-weight network's student was significantly worse here; the unit tests pin that path")
    assert not isinstance(clf.featurizer_, Concat) and clf.head_.n_features == clf.featurizer_.dim
    assert clf.head_.unit_rows  # its rows scaled as each backbone's are in the side-by-side teacher
    assert clf.report_.estimate.key == "student_estimate" and clf.report_.estimate.n == 18
    assert clf.report_.temperature == student["student_temperature"]
    assert "one-network student" in clf.reason_ and student["n_unlabeled"] == 18
    clf.save(tmp_path / "model")
    card = (tmp_path / "model" / "README.md").read_text()
    assert card.count("half a vote of its nearest neighbours") == 1  # the student's; the teacher's vote is not saved
    again = ImageClassifier.load(tmp_path / "model", verbose=False)
    files = sorted(pool_folder.glob("b*-*.png"))
    assert np.array_equal(again.predict_proba(files), clf.predict_proba(files))


def test_without_distillation_or_without_unlabeled_items_auto_keeps_the_backbones_side_by_side(two_backbones,
                                                                                              small_train,
                                                                                              pool_folder):
    kept = ImageClassifier(two_backbones, Auto(distill=False), verbose=False).fit(small_train, X_unlabeled=pool_folder)
    assert isinstance(kept.featurizer_, Concat) and "student" not in kept.metrics_
    plain = ImageClassifier(two_backbones, Auto(), verbose=False).fit(small_train)
    assert isinstance(plain.featurizer_, Concat) and "student" not in plain.metrics_


def test_a_pool_that_changed_nothing_the_teacher_learned_keeps_the_teacher(two_backbones, small_train, pool_folder,
                                                                          monkeypatch, tmp_path):
    from transferkit import evaluate, unlabeled

    # the pool looks like the labels (not centred) and self-training is not better on held-out labels
    monkeypatch.setattr(unlabeled, "domain_auc", lambda *a, **k: 0.5)
    monkeypatch.setattr(evaluate, "significantly_better", lambda *a, **k: False)
    clf = ImageClassifier(two_backbones, Auto(), verbose=False).fit(small_train, X_unlabeled=pool_folder)
    assert isinstance(clf.featurizer_, Concat)
    assert clf.metrics_["student"] == {"kept": False, "distilled": False, "n_unlabeled": 18}
    assert "changed nothing they learned" in clf.reason_
    # the kept teacher votes with its nearest labeled and unlabeled images instead (not significantly worse)
    assert clf.metrics_["unlabeled"]["vote"]["kept"] and "votes with its 10 nearest" in clf.reason_
    assert clf.head_.neighbours.shape == (clf.metrics_["n_train"] + 18, clf.head_.n_features)
    clf.save(tmp_path / "model")
    assert "kept rather than distilled" in (tmp_path / "model" / "README.md").read_text()
    again = ImageClassifier.load(tmp_path / "model", verbose=False).head_  # the vote travels with the head
    assert np.array_equal(again.neighbours, clf.head_.neighbours)
    assert np.array_equal(again.neighbour_proba, clf.head_.neighbour_proba)


def test_a_features_fit_never_distills(tiny_backbone, small_train, pool_folder):
    clf = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, X_unlabeled=pool_folder)
    assert "student" not in clf.metrics_


def test_the_cli_distills_by_default_and_refuses_no_distill_for_a_strategy_that_never_distills(two_backbones,
                                                                                              small_train,
                                                                                              pool_folder, tmp_path):
    import json

    from typer.testing import CliRunner

    from transferkit.cli import app

    runner = CliRunner()
    fit = ["fit", str(small_train), "--model", two_backbones, "--unlabeled", str(pool_folder), "--json"]
    result = runner.invoke(app, [*fit, "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["student"]["n_unlabeled"] == 18
    refused = runner.invoke(app, [*fit, "--out", str(tmp_path / "n"), "--strategy", "features", "--no-distill"])
    assert refused.exit_code != 0 and "--no-distill applies to --strategy auto" in refused.output


def test_the_model_card_says_the_model_is_a_student_and_what_its_teacher_scored(two_backbones, small_train,
                                                                                 pool_folder, tmp_path):
    clf = ImageClassifier(two_backbones, Auto(), verbose=False).fit(small_train, X_unlabeled=pool_folder)
    clf.save(tmp_path / "model")
    card = (tmp_path / "model" / "README.md").read_text()
    assert "## Unlabeled data" in card and "18 unlabeled images were given" in card
    assert ("drawn to their own clusters" in card) == clf.metrics_["unlabeled"]["clusters"]
    student = clf.metrics_["student"]
    if student["kept"]:
        assert "one-network student" in card and f"teacher scored {student['teacher_fold_accuracy']:.3f}" in card
        assert ("a vote of its nearest neighbours" in card) == student["vote"]["kept"]
    else:
        assert "one-network student" not in card


@pytest.mark.slow  # an export
def test_a_students_export_votes_as_the_model_does(two_backbones, small_train, pool_folder, tmp_path):
    from transferkit.export import export_onnx
    from transferkit.onnx_runtime import OnnxPredictor
    from transferkit.predictor import Predictor

    clf = ImageClassifier(two_backbones, Auto(), verbose=False).fit(small_train, X_unlabeled=pool_folder)
    if not clf.metrics_["student"]["kept"]:
        pytest.skip("the random-weight network's student was significantly worse here; the unit tests pin that path")
    assert clf.head_.neighbours is not None
    clf.save(tmp_path / "model")
    files = sorted(small_train.rglob("*.png")) + sorted(pool_folder.glob("b*-*.png"))
    fp32 = Predictor.load(tmp_path / "model", precision="fp32")  # what an export is checked against (bf16 or not)
    manifest = export_onnx(fp32, tmp_path / "onnx", check_items=files)
    assert manifest["check"]["argmax_agreement"] == 1.0 and manifest["check"]["max_abs_difference"] <= 1e-4
    np.testing.assert_allclose(OnnxPredictor.load(tmp_path / "onnx").predict_proba(files), fp32.predict_proba(files),
                               atol=1e-4)
