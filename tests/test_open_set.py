""""None of these": a fit chooses how to tell items of no trained class and where to draw the line; predict and
evaluate reject with it; the choice travels in the model folder."""

import json
import shutil

import numpy as np
import pytest

from transferkit import load_model
from transferkit.errors import BadInputError, BundleError
from transferkit.heads import fit_head
from transferkit.openset import DEFAULT_RATE, OpenSet, calibrate, rejection_rate


def clusters(rng, centres, per_class, spread=1.0):
    x = np.vstack([c + spread * rng.standard_normal((per_class, len(c))) for c in centres])
    return x, np.repeat(np.arange(len(centres)), per_class)


@pytest.fixture(scope="module")
def known_and_far():
    """Four classes of 30 points in 16 dimensions, and a fifth class far from all of them that no head sees."""
    rng = np.random.default_rng(0)
    centres = 6 * rng.standard_normal((5, 16))
    x, y = clusters(rng, centres[:4], 30)
    new_known, _ = clusters(rng, centres[:4], 50)
    far, _ = clusters(rng, centres[4:] + 10, 50)
    return x, y, new_known, far


def fit(rows, labels):
    return fit_head(rows, labels, power=1.0)


def test_reject_takes_auto_or_a_share_of_trained_items_and_refuses_the_rest():
    assert rejection_rate(None) is None
    assert rejection_rate("auto") == DEFAULT_RATE
    assert rejection_rate("0.02") == 0.02
    for bad in ("yes", 0, 0.5, 1.2, True, "-0.1"):
        with pytest.raises(BadInputError, match="share of items"):
            rejection_rate(bad)


def test_a_class_no_head_saw_is_rejected_and_about_the_rate_of_trained_items_is(known_and_far):
    x, y, new_known, far = known_and_far
    head = fit(x, y)
    open_set = calibrate(fit, head, x, y, seed=0)
    assert open_set.score in ("msp", "energy", "knn")
    assert set(open_set.auroc) == {"msp", "energy", "knn"} and open_set.held_out == 4
    assert open_set.auroc[open_set.score] == max(open_set.auroc.values())
    known_kept, _ = open_set.accept(head, new_known, 0.1)
    far_kept, _ = open_set.accept(head, far, 0.1)
    assert known_kept.mean() >= 0.8  # at most about 10% of new items of trained classes rejected
    assert far_kept.mean() < 0.05
    assert open_set.threshold(0.1) == pytest.approx(np.quantile(open_set.known, 0.1))


def test_no_calibration_when_a_class_has_one_item():
    x = np.eye(3)
    assert calibrate(fit, fit(x, np.arange(3)), x, np.arange(3)) is None


def test_the_open_set_part_round_trips_and_a_damaged_one_is_refused(known_and_far):
    x, y, new_known, _ = known_and_far
    head = fit(x, y)
    open_set = calibrate(fit, head, x, y, seed=0)
    config, tensors = open_set.save()
    again = OpenSet.load(json.loads(json.dumps(config)), tensors)
    assert np.array_equal(again.accept(head, new_known, 0.05)[0], open_set.accept(head, new_known, 0.05)[0])
    with pytest.raises(BundleError, match="open-set part"):
        OpenSet.load({**config, "score": "magic"}, tensors)
    with pytest.raises(BundleError, match="open-set part"):
        OpenSet.load(config, {})


def test_a_fitted_image_model_answers_unknown_when_asked_and_keeps_it_when_saved(fitted_features, example_test,
                                                                                  tmp_path):
    clf = fitted_features
    assert clf.metrics_["open_set"]["score"] == clf.open_set_.score
    items = sorted(p for p in example_test.rglob("*.png"))[:40]
    plain = clf.predict(items)
    rejecting = clf.predict(items, reject=0.2, unknown="none of these")
    assert set(rejecting) <= set(plain) | {"none of these"}
    assert all(r in (p, "none of these") for p, r in zip(plain, rejecting))
    clf.save(tmp_path / "model")
    assert (tmp_path / "model" / "open_set").is_dir()
    loaded = load_model(tmp_path / "model", verbose=False)
    assert list(loaded.predict(items, reject=0.2, unknown="none of these")) == list(rejecting)


def test_cli_rejects_and_evaluate_measures_classes_the_model_never_saw(tiny_image_model, example_test, tmp_path):
    from typer.testing import CliRunner

    from transferkit.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(tiny_image_model), str(example_test / "mammals"), "--reject", "auto",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert rows and all(isinstance(r["known"], bool) for r in rows)
    assert all((r["label"] == "unknown") != r["known"] for r in rows)
    plain = runner.invoke(app, ["evaluate", str(tiny_image_model), str(example_test)])
    assert plain.exit_code != 0 and "--reject auto" in plain.output
    measured = runner.invoke(app, ["evaluate", str(tiny_image_model), str(example_test), "--reject", "auto", "--json"])
    assert measured.exit_code == 0, measured.output
    metrics = json.loads(measured.output.splitlines()[-1])["open_set"]
    n_trained = sum(1 for c in ("birds", "fruit", "beverages") for _ in (example_test / c).glob("*.png"))
    assert metrics["n_trained_classes"] == n_trained and metrics["n_other"] > 0
    assert 0.0 <= metrics["auroc"] <= 1.0 and metrics["rate"] == DEFAULT_RATE
    said = " ".join(runner.invoke(app, ["evaluate", str(tiny_image_model), str(example_test), "--reject", "auto"]
                                  ).output.split())
    assert f"of {metrics['n_other']} images of other classes rejected" in said and "AUROC" in said


def test_a_model_folder_without_the_open_set_part_says_to_refit(tiny_image_model, example_test, tmp_path):
    from conftest import reseal

    folder = tmp_path / "old"
    shutil.copytree(tiny_image_model, folder)
    shutil.rmtree(folder / "open_set")
    document = json.loads((folder / "transferkit.json").read_text())
    document["components"] = [c for c in document["components"] if c["name"] != "open_set"]
    (folder / "transferkit.json").write_text(json.dumps(document))
    model = load_model(reseal(folder), verbose=False)
    with pytest.raises(BadInputError, match="Refit it"):
        model.predict(sorted((example_test / "birds").glob("*.png"))[:3], reject="auto")


def test_bulk_predictions_say_which_items_are_known_and_a_rerun_without_reject_is_refused(tiny_image_model,
                                                                                          example_test, tmp_path):
    import csv

    from typer.testing import CliRunner

    from transferkit.cli import app

    out = tmp_path / "p.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(tiny_image_model), str(example_test), "--reject", "0.2", "--out",
                                 str(out), "--unknown-label", "other"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert rows and {"known", "known_score"} <= set(rows[0])
    assert all((r["label"] == "other") == (r["known"] == "False") for r in rows)
    rejected = sum(r["known"] == "False" for r in rows)
    assert (f"{rejected} of them belong to no trained class" in " ".join(result.output.split())) == (rejected > 0)
    again = runner.invoke(app, ["predict", str(tiny_image_model), str(example_test), "--out", str(out)])
    assert again.exit_code != 0 and "--reject" in again.output


def test_inputs_unlike_every_trained_class_are_flagged_only_beyond_what_the_rate_explains(known_and_far):
    from transferkit.openset import unfamiliar, unfamiliar_line

    x, y, new_known, far = known_and_far
    head = fit(x, y)
    open_set = calibrate(fit, head, x, y, seed=0)
    familiar = unfamiliar(open_set, open_set.known_scores(head, new_known))
    assert familiar["n"] == len(new_known) and not familiar["unlike_training"]
    assert unfamiliar_line(familiar, "image") is None
    mixed = unfamiliar(open_set, open_set.known_scores(head, np.vstack([new_known[:100], far[:30]])))
    assert mixed["below"] >= 28 and mixed["unlike_training"]
    assert f"{mixed['below']} of 130 images" in unfamiliar_line(mixed, "image")
    assert unfamiliar(open_set, open_set.known_scores(head, far[:19])) is None  # too few to read
    assert unfamiliar(None, np.zeros(50)) is None
    from scipy.stats import binomtest

    for reading in (familiar, mixed):  # the one-sided binomial test's p-value, read without importing scipy.stats
        expected = binomtest(reading["below"], reading["n"], reading["expected"], alternative="greater").pvalue
        assert reading["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_bulk_counts_how_many_inputs_look_unfamiliar(tiny_image_model, example_test, tmp_path):
    from transferkit.bulk import predict_to_file
    from transferkit.predictor import Predictor

    predictor = Predictor.load(tiny_image_model)
    items = sorted(example_test.rglob("*.png"))
    counts = predict_to_file(predictor, items, tmp_path / "p.jsonl", progress=False)
    assert counts["unfamiliar"]["n"] == counts["written"] - counts["unreadable"]
    assert 0 <= counts["unfamiliar"]["below"] <= counts["unfamiliar"]["n"]


def test_examples_of_other_things_are_the_evidence_and_sharpen_the_nearest_item_score(known_and_far):
    x, y, new_known, far = known_and_far
    head = fit(x, y)
    open_set = calibrate(fit, head, x, y, seed=0, other=far[:20])
    assert open_set.n_other == 20 and open_set.held_out == 4
    assert set(open_set.auroc) == {"msp", "energy", "knn", "knn-other"}
    assert open_set.auroc[open_set.score] == max(open_set.auroc.values()) > 0.95
    far_kept, _ = open_set.accept(head, far[20:], 0.05)
    assert far_kept.mean() < 0.05
    config, tensors = open_set.save()
    if open_set.score == "knn-other":
        assert tensors["other_bank"].shape == (20, x.shape[1])
    again = OpenSet.load(json.loads(json.dumps(config)), tensors)
    assert np.array_equal(again.known_scores(head, far), open_set.known_scores(head, far))
    assert calibrate(fit, head, x, y, seed=0, other=far[:4]).n_other == 0  # too few: held-out classes instead


def test_fit_takes_examples_of_other_things_and_refuses_a_labeled_item_among_them(small_train, tiny_backbone,
                                                                                   example_test, tmp_path):
    from transferkit import Features, ImageClassifier

    others = sorted((example_test / "mammals").glob("*.png"))[:8]
    clf = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, X_other=others)
    assert clf.open_set_.n_other == 8 and clf.metrics_["open_set"]["n_other"] == 8
    labeled = sorted((small_train / "birds").glob("*.png"))[:1]
    with pytest.raises(BadInputError, match="copies of labeled items"):
        ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, X_other=others + labeled)
    with pytest.raises(BadInputError, match="at least 5"):
        ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, X_other=others[:3])


@pytest.mark.slow  # a second export
def test_an_onnx_export_rejects_as_the_model_folder_does(tiny_image_model, example_test, tmp_path):
    from transferkit.export import export_onnx
    from transferkit.onnx_runtime import OnnxPredictor
    from transferkit.predictor import Predictor

    folder = Predictor.load(tiny_image_model, precision="fp32")  # what an export is checked against (bf16 or not)
    images = sorted(example_test.rglob("*.png"))[:24]
    manifest = export_onnx(folder, tmp_path / "onnx", check_items=images)
    assert manifest["check"]["open_set_score_difference"] < 1e-3
    onnx = OnnxPredictor.load(tmp_path / "onnx")
    _, _, _, expected = folder.predict_scored(images)
    _, _, _, got = onnx.predict_scored(images)
    assert np.allclose(expected, got, rtol=1e-3, atol=1e-4)
    for rate in ("auto", 0.3):
        assert onnx.predict(images, reject=rate).tolist() == folder.predict(images, reject=rate).tolist()
    (tmp_path / "onnx" / "open_set.safetensors").write_bytes(b"damaged")
    with pytest.raises(BundleError, match="open_set.safetensors"):
        OnnxPredictor.load(tmp_path / "onnx")


@pytest.fixture(scope="module")
def sibling_in_the_pool():
    """Four classes of 10 labeled points close together, an unlabeled pool of 40 more of each and 40 of a fifth class
    nobody labeled, and fresh items of both kinds."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((5, 16))
    x, y = clusters(rng, centres[:4], 10)
    pool = np.vstack([clusters(rng, centres[:4], 40)[0], clusters(rng, centres[4:], 40)[0]])
    new_known, _ = clusters(rng, centres[:4], 50)
    new, _ = clusters(rng, centres[4:], 50)
    return x, y, pool, new_known, new


def test_mining_the_pool_finds_the_class_nobody_labeled(sibling_in_the_pool):
    from transferkit.openset import POOL_SHARE, mine, unit_rows

    x, y, pool, _, _ = sibling_in_the_pool
    head = fit(x, y)
    rows = unit_rows(head, pool)
    mined = mine(unit_rows(head, x), rows)
    assert len(mined) == int(POOL_SHARE * len(pool)) == 40
    from_new = [any(np.array_equal(m, r) for r in rows[160:]) for m in mined]
    assert np.mean(from_new) >= 0.75  # the pool is one fifth the new class; the mined are mostly it


def test_an_unlabeled_pool_holding_an_unknown_class_sharpens_the_nearest_item_score(sibling_in_the_pool):
    from sklearn.metrics import roc_auc_score

    from transferkit.openset import MIN_POOL

    x, y, pool, new_known, new = sibling_in_the_pool
    head = fit(x, y)
    open_set = calibrate(fit, head, x, y, seed=0, pool=pool)
    assert open_set.n_pool == 200 and set(open_set.auroc) == {"msp", "energy", "knn", "knn-pool"}
    assert open_set.score == "knn-pool"  # chosen on held-out classes, each mined from the pool without it
    without = calibrate(fit, head, x, y, seed=0)
    truth = np.r_[np.ones(len(new_known)), np.zeros(len(new))]

    def auroc(o):
        return roc_auc_score(truth, np.r_[o.known_scores(head, new_known), o.known_scores(head, new)])

    assert auroc(open_set) > auroc(without) + 0.05
    config, tensors = open_set.save()
    assert tensors["pool_bank"].shape == (40, x.shape[1]) and config["n_pool"] == 200
    again = OpenSet.load(json.loads(json.dumps(config)), tensors)
    assert np.array_equal(again.known_scores(head, new), open_set.known_scores(head, new))
    with pytest.raises(BundleError, match="open-set part"):
        OpenSet.load(config, {k: v for k, v in tensors.items() if k != "pool_bank"})
    assert calibrate(fit, head, x, y, seed=0, pool=pool[:MIN_POOL - 1]).n_pool == 0  # too few to mine


def test_fit_mines_its_unlabeled_items_for_the_open_set_only_when_told_they_may_hold_others(small_train,
                                                                                             tiny_backbone,
                                                                                             example_test):
    from transferkit import Features, ImageClassifier

    pool = sorted(example_test.rglob("*.png"))
    told = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, X_unlabeled=pool,
                                                                          unlabeled_has_others=True)
    assert told.open_set_.n_pool == len(pool) and told.metrics_["open_set"]["n_pool"] == len(pool)
    assert "knn-pool" in told.open_set_.auroc
    # a pool of the labeled classes alone (the default assumption): its stragglers are not taken for other things
    plain = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, X_unlabeled=pool)
    assert plain.open_set_.n_pool == 0 and "knn-pool" not in plain.open_set_.auroc
    with pytest.raises(BadInputError, match="give them too"):
        ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train, unlabeled_has_others=True)
