"""Unlabeled items as an input: read like labeled ones, copies of labeled items counted once, unreadable ones skipped;
a head on frozen features centres on a pool from another source and self-trains only where held-out labels show it
helps (``transferkit.unlabeled``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from transferkit import Features, ImageClassifier, TextClassifier
from transferkit.cli import app
from transferkit.heads import fit_head
from transferkit.unlabeled import (
    SHIFT_AUC,
    _normalised_rows,
    _spread,
    domain_auc,
    learn_from_pool,
    self_train,
    soft_clusters,
    spread_labels,
)

runner = CliRunner()


def _blobs(rng, n_per_class: int, offset: float = 0.0, spread: float = 1.0):
    """Two classes of 20-dimensional non-negative features (as a network's pooled activations); another source adds
    ``offset`` to the features that class 1 is high in, so a head fitted on the first source calls most of it 1."""
    centres = np.array([[3.0] * 10 + [1.0] * 10, [1.0] * 10 + [3.0] * 10])
    x = np.vstack([c + rng.normal(0, spread, (n_per_class, 20)) for c in centres])
    x += offset * np.r_[np.zeros(10), np.ones(10)]
    return np.abs(x), np.repeat([0, 1], n_per_class)


def test_a_pool_from_another_source_is_detected_and_centring_on_it_recovers_the_accuracy():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 10)
    pool, _ = _blobs(rng, 100, offset=2.5)
    test, truth = _blobs(rng, 100, offset=2.5)
    head = fit_head(x, y, power="auto", seed=0)
    use = learn_from_pool(head, x, y, pool)
    assert use.info["shift_auc"] >= SHIFT_AUC and use.info["centred"]
    before = (head.predict_proba(test).argmax(1) == truth).mean()
    after = (use.head.predict_proba(test).argmax(1) == truth).mean()
    assert after >= before + 0.2, (before, after)
    assert "another source" in use.sentence


def test_a_pool_from_the_same_source_is_not_centred_on():
    rng = np.random.default_rng(1)
    x, y = _blobs(rng, 10)
    pool, _ = _blobs(rng, 100)
    head = fit_head(x, y, power="auto", seed=0)
    use = learn_from_pool(head, x, y, pool)
    assert use.info["shift_auc"] < SHIFT_AUC and not use.info["centred"]
    assert np.array_equal(use.head.mean, head.mean) or use.info["self_training"]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_soft_clusters_give_a_pool_row_the_class_of_the_cluster_it_sits_in_where_its_seed_said_otherwise():
    rng = np.random.default_rng(3)
    a, b = np.eye(16)[0], np.eye(16)[1]
    labeled = _unit(np.vstack([a, b]) + rng.normal(0, 0.05, (2, 16)))
    pool = _unit(np.vstack([a + rng.normal(0, 0.2, (20, 16)), b + rng.normal(0, 0.2, (20, 16))]))
    seed = np.tile([0.5, 0.5], (40, 1))
    seed[:20] = [0.8, 0.2]
    seed[:5] = [0.3, 0.7]  # a head from another source put five of cluster a on the wrong side of its line
    proba = soft_clusters(np.vstack([labeled, pool]), np.eye(2), seed)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1.0)
    assert (proba[:20, 0] > 0.9).all() and (proba[20:, 1] > 0.9).all()


def test_only_a_pool_from_another_source_has_its_labels_drawn_to_its_own_clusters_and_only_when_asked():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 10)
    pool, _ = _blobs(rng, 100, offset=2.5)
    head = fit_head(x, y, power="auto", seed=0)
    rows = _normalised_rows(head, x, pool, centred=True)
    head_and_spreading = _spread(head, rows, y, pool, clusters=False)  # the mean of the two, as without clusters
    clusters = soft_clusters(rows, np.eye(2)[y], head_and_spreading)
    assert np.allclose(spread_labels(head, x, y, pool, centred=True, clusters=True),
                       (2 * head_and_spreading + clusters) / 3)
    assert np.allclose(spread_labels(head, x, y, pool, centred=True), head_and_spreading)
    use = learn_from_pool(head, x, y, pool, vote=True, clusters=True)
    assert use.info["centred"] and use.info["clusters"] and "drawn to its own clusters" in use.sentence
    assert not learn_from_pool(head, x, y, pool, vote=True).info["clusters"]
    same_source, _ = _blobs(rng, 100)
    use = learn_from_pool(head, x, y, same_source, vote=True, clusters=True)
    assert not use.info["centred"] and not use.info["clusters"] and "clusters" not in use.sentence


def test_self_training_takes_the_same_number_of_confident_pseudo_labels_per_class():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, 3)
    pool, _ = _blobs(rng, 200)
    head = fit_head(x, y, power="auto", seed=0)
    seen = []
    original = type(head).refit

    def spy(self, features, labels, seed=0):
        seen.append(np.bincount(labels[len(y):], minlength=2))
        return original(self, features, labels, seed)

    type(head).refit = spy
    try:
        self_train(head, x, y, pool, rounds=1)
    finally:
        type(head).refit = original
    assert seen and seen[0].tolist() == [15, 15]  # 3 labels per class x PSEUDO_PER_LABEL, each class alike


@pytest.mark.parametrize("wins, kept", [(10, True), (3, False)])
def test_self_training_is_kept_only_when_held_out_labels_show_it_significantly_better(monkeypatch, wins, kept):
    """Out of 40 held-out labels, the self-trained heads are right on ``wins`` the others miss (and wrong on none
    they get): 10 of 10 disagreements is significant, 3 of 3 is not (a few items are noise)."""
    from transferkit import unlabeled

    without = np.r_[np.zeros(wins, bool), np.ones(20, bool), np.zeros(20 - wins, bool)]
    with_pool = np.r_[np.ones(wins, bool), np.ones(20, bool), np.zeros(20 - wins, bool)]
    monkeypatch.setattr(unlabeled, "_fold_evidence", lambda *a, **k: (without, with_pool))
    rng = np.random.default_rng(3)
    x, y = _blobs(rng, 8)
    pool, _ = _blobs(rng, 50)
    use = learn_from_pool(fit_head(x, y, power="auto", seed=0), x, y, pool)
    assert use.info["self_training"] is kept
    assert ("is kept" if kept else "not significantly better") in use.sentence


def _xor(rng, n_per_quadrant: int):
    """Two classes a linear head cannot tell apart: class 0 in two opposite quadrants of the first two of 20 features,
    class 1 in the other two (XOR), each a tight cluster a nearest-neighbour vote can read."""
    corners = np.array([[3, 3], [-3, -3], [3, -3], [-3, 3]], float)
    x = np.vstack([np.c_[np.tile(c, (n_per_quadrant, 1)), np.zeros((n_per_quadrant, 18))] for c in corners])
    return x + rng.normal(0, 0.4, x.shape), np.repeat([0, 0, 1, 1], n_per_quadrant)


def test_a_head_that_votes_reads_the_pools_neighbourhoods_and_says_so():
    rng = np.random.default_rng(5)
    x, y = _xor(rng, 4)
    pool, _ = _xor(rng, 50)
    test, truth = _xor(rng, 50)
    head = fit_head(x, y, power=1.0, seed=0)
    use = learn_from_pool(head, x, y, pool, vote=True)
    assert use.info["vote"]["kept"] and use.info["vote"]["neighbours"] == len(x) + len(pool)
    assert use.info["vote"]["fold_accuracy_with"] > use.info["vote"]["fold_accuracy_without"]
    before = (head.predict_proba(test).argmax(1) == truth).mean()
    after = (use.head.predict_proba(test).argmax(1) == truth).mean()
    assert before < 0.75 and after >= 0.9, (before, after)
    assert "votes with its 10 nearest of the 216 labeled and unlabeled items" in use.sentence
    assert "vote" not in learn_from_pool(head, x, y, pool).info  # off unless asked for


def test_the_vote_is_dropped_when_held_out_labels_show_the_head_significantly_better_without_it(monkeypatch):
    from transferkit import unlabeled

    with_vote = np.r_[np.zeros(10, bool), np.ones(20, bool)]
    monkeypatch.setattr(unlabeled, "_vote_evidence", lambda *a, **k: (with_vote, np.ones(30, bool)))
    rng = np.random.default_rng(6)
    x, y = _xor(rng, 4)
    pool, _ = _xor(rng, 20)
    use = learn_from_pool(fit_head(x, y, power=1.0, seed=0), x, y, pool, vote=True)
    assert not use.info["vote"]["kept"] and use.head.neighbours is None
    assert "does not vote" in use.sentence and "significantly better without" in use.sentence


def test_the_domain_classifier_reads_chance_on_one_source_and_near_one_on_two():
    rng = np.random.default_rng(4)
    a, _ = _blobs(rng, 50)
    b, _ = _blobs(rng, 50)
    c, _ = _blobs(rng, 50, offset=3.0)
    assert domain_auc(a, b, 0.5) < 0.7 and domain_auc(a, c, 0.5) > 0.95


def test_fit_with_unlabeled_images_records_what_it_did_and_counts_copies_once(small_train, tiny_backbone, pool_folder,
                                                                              tmp_path):
    clf = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, X_unlabeled=pool_folder)
    used = clf.metrics_["unlabeled"]
    assert used["used"] and used["n"] == 18 and used["skipped"] == 1  # 18 inverted images read; broken.png skipped
    assert any("copies of labeled ones" in note for note in clf.notes_)
    assert "unlabeled items" in clf.reason_
    assert used["clusters"] == used["centred"]  # frozen image features: a pool from another source, its own clusters
    clf.save(tmp_path / "model")
    again = ImageClassifier.load(tmp_path / "model", verbose=False)
    files = sorted(pool_folder.glob("c*.png")) + sorted(pool_folder.glob("b*-*.png"))
    assert np.array_equal(again.predict_proba(files), clf.predict_proba(files))  # the centring travels with the head


def test_the_cli_takes_an_unlabeled_folder_and_says_so_in_json(small_train, tiny_backbone, pool_folder, tmp_path):
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--model", tiny_backbone,
                                 "--strategy", "features", "--unlabeled", str(pool_folder), "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout.strip().splitlines()[-1])
    assert fit["unlabeled"]["n"] == 18 and "unlabeled items" in fit["reason"]


def test_the_cli_mines_the_pool_for_none_of_these_when_told_and_says_what_it_chose(small_train, tiny_backbone,
                                                                                   example_test, tmp_path):
    from transferkit.openset import MIN_POOL

    n = len(list(example_test.rglob("*.png")))
    assert n >= MIN_POOL
    args = ["fit", str(small_train), "--model", tiny_backbone, "--strategy", "features", "--unlabeled",
            str(example_test)]
    told = runner.invoke(app, [*args, "--out", str(tmp_path / "told"), "--unlabeled-has-others"])
    assert told.exit_code == 0, told.output
    said = " ".join(told.stdout.split())  # the console wraps lines
    assert "None of these (predict --reject auto): the " in said and f"{n} unlabeled images mined" in said
    plain = runner.invoke(app, [*args, "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0 and "None of these" not in plain.stdout  # a pool of the classes alone: not mined


def test_texts_take_a_file_of_lines_as_their_pool(text_csv, tiny_encoder, tmp_path):
    lines = tmp_path / "pool.txt"
    lines.write_text("A late goal won the derby.\nBake the bread for forty minutes.\nSunny spells and a light breeze.\n"
                     * 4)
    clf = TextClassifier(tiny_encoder, Features(), verbose=False).fit(text_csv, X_unlabeled=lines)
    assert clf.metrics_["unlabeled"]["n"] == 3  # twelve lines, three distinct texts
    assert any("each is counted once" in note for note in clf.notes_)


def test_a_strategy_that_does_not_learn_from_the_pool_says_so(text_csv, tiny_encoder):
    from transferkit import Scratch

    clf = TextClassifier(tiny_encoder, Scratch(), verbose=False).fit(text_csv, X_unlabeled=["a new text", "another"])
    assert clf.metrics_["unlabeled"] == {"n": 2, "used": False} and "not used by TF-IDF" in clf.reason_


def test_a_tuned_sentence_encoder_learns_from_the_pool_on_its_own_embeddings(text_csv, tiny_encoder):
    from transferkit import ContrastiveTuner, FineTune

    pool = ["A penalty in the last minute decided the final.", "Whisk two eggs into the melted butter.",
            "Gales and heavy rain reach the coast by night."] * 2
    clf = TextClassifier(tiny_encoder, FineTune(tuner=ContrastiveTuner(rounds=1, refit=False)), verbose=False)
    clf.fit(text_csv, X_unlabeled=pool)
    used = clf.metrics_["unlabeled"]
    assert used["used"] and used["n"] == 3 and "unlabeled items" in clf.reason_ and "finetune" in clf.reason_
    assert "fold_accuracy_with" in used["vote"] and ("votes with" in clf.reason_) == used["vote"]["kept"]
    assert not used["clusters"]  # a tuned encoder's pool keeps the head's and label spreading's labels alone


def test_a_text_model_that_votes_saves_its_rows_and_predicts_the_same_after_loading(text_csv, tiny_encoder, tmp_path):
    pool = ["A penalty in the last minute decided the final.", "Whisk two eggs into the melted butter.",
            "Gales and heavy rain reach the coast by night.", "The keeper saved two shots in extra time.",
            "Simmer the sauce until it thickens.", "Snow is expected on high ground tomorrow."]
    clf = TextClassifier(tiny_encoder, Features(), verbose=False).fit(text_csv, X_unlabeled=pool)
    assert clf.metrics_["unlabeled"]["vote"]["kept"] and clf.head_.neighbours is not None
    assert len(clf.head_.neighbours) == clf.metrics_["n_train"] + len(pool)
    clf.save(tmp_path / "model")
    card = (tmp_path / "model" / "README.md").read_text()
    assert f"half a vote of its nearest neighbours among {len(clf.head_.neighbours)} labeled and unlabeled texts" in card
    loaded = TextClassifier.load(tmp_path / "model")
    assert loaded.head_.neighbours is not None
    np.testing.assert_allclose(loaded.predict_proba(pool), clf.predict_proba(pool), rtol=1e-5, atol=1e-6)


def test_a_large_pool_is_sampled_with_the_fits_seed_and_keeps_its_order():
    from transferkit.data.labeled import sample_pool

    items = [f"item-{i}" for i in range(100)]
    chosen = sample_pool(items, seed=3, limit=10)
    assert len(set(chosen)) == 10 and chosen == sorted(chosen, key=items.index)
    assert chosen == sample_pool(items, seed=3, limit=10) != sample_pool(items, seed=4, limit=10)
    assert sample_pool(items[:5], seed=3, limit=10) == items[:5]


def test_a_fit_says_how_many_of_a_large_pool_it_learned_from(monkeypatch, text_csv, tiny_encoder):
    from transferkit import estimators

    monkeypatch.setattr(estimators, "MAX_ITEMS", 2)  # the most a fit learns from
    pool = ["A late goal won the derby.", "Bake the bread for forty minutes.", "Sunny spells and a light breeze."]
    clf = TextClassifier(tiny_encoder, Features(), verbose=False).fit(text_csv, X_unlabeled=pool)
    assert clf.metrics_["unlabeled"]["n"] == 2
    assert any("2 of the 3 unlabeled texts" in note for note in clf.notes_)
