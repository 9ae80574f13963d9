"""The linear head predicts exactly as scikit-learn, normalises rows as it says, re-weights imbalanced classes, and
its cross-validated probabilities never see the row they predict."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from transferkit import heads
from transferkit.heads import LinearHead, cross_val_proba, fit_head


def _data(n_classes: int, n_features: int, per_class: int = 15, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    return rng.normal(size=(len(y), n_features)) + y[:, None] * 0.7 + 3.0, y


@pytest.mark.parametrize("norm", ["l2", "standard", "none"])
@pytest.mark.parametrize("n_classes, n_features", [(2, 40), (4, 40), (3, 8)])
def test_head_probabilities_match_scikit_learn(norm, n_classes, n_features, monkeypatch):
    """Fewer rows than features takes the row-space shortcut; it must reach scikit-learn's own optimum."""
    monkeypatch.setattr(heads, "TOLERANCE", 1e-10)
    monkeypatch.setattr(heads, "MAX_ITER", 100000)
    x, y = _data(n_classes, n_features)
    head = fit_head(x, y, norm=norm, C=3.0)
    if norm == "l2":
        z = (x - x.mean(0)) / np.linalg.norm(x - x.mean(0), axis=1, keepdims=True)
    elif norm == "standard":
        z = (x - x.mean(0)) / x.std(0)
    else:
        z = x
    reference = LogisticRegression(C=3.0, tol=1e-10, max_iter=100000).fit(z, y)
    np.testing.assert_allclose(head.predict_proba(x), reference.predict_proba(z), atol=1e-5)
    reference.coef_, reference.intercept_ = head.coef, head.intercept  # exactly scikit-learn's formula
    np.testing.assert_allclose(head.predict_proba(x), reference.predict_proba(z), atol=1e-12)


def test_l2_rows_ignore_the_scale_of_a_feature_vector():
    x, y = _data(3, 10)
    head = fit_head(x, y, norm="l2")
    centred = x - head.mean
    np.testing.assert_allclose(head.predict_proba(head.mean + 5 * centred), head.predict_proba(x), atol=1e-12)


def test_head_round_trips_through_its_saved_form():
    x, y = _data(3, 5, per_class=8, seed=1)
    head = fit_head(x, y)
    again = LinearHead.load(*head.save())
    assert np.array_equal(again.predict_proba(x), head.predict_proba(x))


@pytest.mark.parametrize("norm", ["standard", "none"])
def test_as_linear_is_the_same_map_for_affine_normalisations(norm):
    x, y = _data(3, 6)
    head = fit_head(x, y, norm=norm)
    weight, bias = head.as_linear()
    np.testing.assert_allclose(x @ weight.T + bias, head.decision_function(x), atol=1e-9)


def test_imbalanced_classes_are_reweighted():
    rng = np.random.default_rng(2)
    y = np.array([0] * 30 + [1] * 6)
    x = rng.normal(size=(36, 4)) + y[:, None] * 0.5
    assert fit_head(x, y).class_weight == "balanced"
    assert fit_head(x[:12], np.array([0] * 6 + [1] * 6)).class_weight is None


def test_cross_validated_probabilities_never_see_the_row_they_predict():
    """A head that memorises its training rows is perfect in-sample and at chance out of fold."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 200))
    y = rng.permutation(np.repeat([0, 1], 20))
    in_sample = fit_head(x, y, C=1e6).predict_proba(x).argmax(1)
    assert (in_sample == y).mean() == 1.0
    oof, folds = cross_val_proba(lambda a, b: fit_head(a, b, C=1e6), x, y)
    assert folds == 5 and oof.shape == (40, 2) and 0.2 <= (oof.argmax(1) == y).mean() <= 0.8


def test_cross_validation_uses_as_many_folds_as_the_smallest_class_allows():
    x, y = _data(3, 4, per_class=3)
    _, folds = cross_val_proba(lambda a, b: fit_head(a, b), x, y)
    assert folds == 3


def test_auto_power_takes_the_square_root_of_non_negative_features_only():
    x, y = _data(3, 6)
    assert fit_head(np.abs(x), y, power="auto").power == heads.POWER  # pooled ReLU activations
    assert fit_head(x - 3.0, y, power="auto").power == 1.0  # signed features (a sentence encoder's) stay as they are
    assert fit_head(np.abs(x), y, power="auto").C == heads.C_POWER and fit_head(x, y, power=1.0).C == heads.C_DEFAULT
    head = fit_head(np.abs(x), y, power=0.5, norm="none", C=2.0)
    reference = fit_head(np.sqrt(np.abs(x)), y, power=1.0, norm="none", C=2.0)
    np.testing.assert_allclose(head.predict_proba(np.abs(x)), reference.predict_proba(np.sqrt(np.abs(x))), atol=1e-12)


def test_a_head_on_blocks_averages_the_logits_of_one_head_per_block():
    x, y = _data(3, 12)
    x = np.abs(x)
    head = fit_head(x, y, power="auto", blocks=(5, 7))
    parts = [fit_head(x[:, :5], y, power="auto"), fit_head(x[:, 5:], y, power="auto")]
    expected = (parts[0].decision_function(x[:, :5]) + parts[1].decision_function(x[:, 5:])) / 2
    np.testing.assert_allclose(head.decision_function(x), expected, atol=1e-9)
    big = np.hstack([x[:, :5], 9.0 * x[:, 5:]])  # a block's scale does not matter: each is made unit length alone
    np.testing.assert_array_equal(fit_head(big, y, power=1.0, blocks=(5, 7)).predict_proba(big).argmax(1),
                                  fit_head(x, y, power=1.0, blocks=(5, 7)).predict_proba(x).argmax(1))
    with pytest.raises(ValueError, match="do not add up"):
        fit_head(x, y, blocks=(5, 6))


def test_power_and_blocks_survive_saving_and_a_damaged_folder_is_refused():
    from transferkit.errors import BundleError

    x, y = _data(3, 12)
    head = fit_head(np.abs(x), y, power="auto", blocks=(4, 8))
    config, tensors = head.save()
    again = LinearHead.load(config, tensors)
    assert (again.power, again.blocks) == (heads.POWER, (4, 8))
    assert np.array_equal(again.predict_proba(np.abs(x)), head.predict_proba(np.abs(x)))
    with pytest.raises(BundleError, match="do not fit"):
        LinearHead.load({**config, "blocks": [4, 7]}, tensors)


def test_a_power_transformed_head_has_no_linear_form():
    x, y = _data(3, 6)
    with pytest.raises(ValueError, match="no linear form"):
        fit_head(np.abs(x), y, power=0.5).as_linear()


def test_refit_keeps_every_setting():
    x, y = _data(3, 12)
    head = fit_head(np.abs(x), y, power="auto", blocks=(4, 8), norm="l2", C=3.0)
    again = head.refit(np.abs(x)[::2], y[::2])
    assert (again.norm, again.power, again.blocks, again.C) == (head.norm, head.power, head.blocks, head.C)


def test_a_nearest_neighbour_vote_averages_the_nearest_rows_probabilities_weighted_by_their_lead():
    rows = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]], np.float32)
    proba = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0]], np.float32)
    item = np.array([[1.0, 0.0]])  # similarities 1, 0.8, 0, -1: with k = 2 the third row (0) sets the zero
    np.testing.assert_allclose(heads.neighbour_vote(rows, proba, item, k=2), [[(1.0 * 1 + 0.8 * 0.5) / 1.8,
                                                                               0.8 * 0.5 / 1.8]], atol=1e-6)
    # the second and third nearest rows trading places (by rounding) hardly move a vote of two: the row at the edge
    # weighs nothing (an unweighted vote would jump from (0.75, 0.25) to (0.5, 0.5))
    labels = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], np.float32)
    second_ahead = np.array([[1.0, 0.0], [0.6 + 1e-6, 0.8], [0.6, -0.8]], np.float32)
    third_ahead = np.array([[1.0, 0.0], [0.6, 0.8], [0.6 + 1e-6, -0.8]], np.float32)
    votes = [heads.neighbour_vote(r, labels, np.array([[1.0, 0.0]]), k=2) for r in (second_ahead, third_ahead)]
    np.testing.assert_allclose(votes[0], votes[1], atol=1e-4)


def test_a_head_with_a_vote_predicts_half_its_own_and_half_the_votes_and_saves_it():
    from transferkit.errors import BundleError

    x, y = _data(3, 12)
    plain = fit_head(np.abs(x), y, power="auto")
    voting = plain.with_neighbours(np.abs(x), np.eye(3)[y])
    z = plain.normalise(np.abs(x))
    expected = (plain.predict_proba(np.abs(x)) + heads.neighbour_vote(voting.neighbours, voting.neighbour_proba, z)) / 2
    np.testing.assert_allclose(voting.predict_proba(np.abs(x)), expected)
    config, tensors = voting.save()
    # stored in half the bytes, and the head in memory votes with exactly what is stored
    assert config["neighbours"] == len(y) and tensors["neighbours"].dtype == np.float16
    assert np.array_equal(tensors["neighbours"].astype(np.float32), voting.neighbours)
    np.testing.assert_allclose(voting.neighbours, z, atol=1e-3)
    again = LinearHead.load(config, tensors)
    assert again.neighbours.dtype == np.float32
    assert np.array_equal(again.predict_proba(np.abs(x)), voting.predict_proba(np.abs(x)))
    old = LinearHead.load(config, tensors | {"neighbours": z.astype(np.float32)})  # a folder saved before: float32
    np.testing.assert_allclose(old.predict_proba(np.abs(x)), voting.predict_proba(np.abs(x)), atol=1e-3)
    with pytest.raises(BundleError, match="vote does not fit"):
        LinearHead.load({**config, "neighbours": len(y) - 1}, tensors)
    with pytest.raises(BundleError, match="vote does not fit"):
        LinearHead.load(config, {k: v for k, v in tensors.items() if k != "neighbour_proba"})
    assert "neighbours" not in plain.save()[0] and plain.refit(np.abs(x), y).neighbours is None


def test_a_head_on_unit_rows_ignores_each_rows_length_and_keeps_the_setting_when_saved_or_refitted():
    x, y = _data(3, 12)
    x = np.abs(x)
    head = fit_head(x, y, power="auto", unit_rows=True)
    lengths = np.random.default_rng(1).uniform(0.1, 10.0, (len(x), 1))
    np.testing.assert_allclose(head.predict_proba(x * lengths), head.predict_proba(x), atol=1e-9)
    assert not np.allclose(fit_head(x, y, power="auto").predict_proba(x * lengths),
                           fit_head(x, y, power="auto").predict_proba(x), atol=1e-3)
    again = LinearHead.load(*head.save())
    assert again.unit_rows and np.array_equal(again.predict_proba(x), head.predict_proba(x))
    assert head.refit(x[::2], y[::2]).unit_rows and "unit_rows" not in fit_head(x, y).save()[0]
