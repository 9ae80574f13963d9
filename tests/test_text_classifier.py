"""TextClassifier on real sentences with the packaged MiniLM: every strategy, model folders that predict exactly as
saved, auto's reason, word vectors, and the CLI on text (fit detects text, evaluate, predict from arguments and
standard input)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TOPICS
from sklearn.base import clone
from typer.testing import CliRunner

from transferkit import Auto, BadInputError, FineTune, NotFittedError, TextClassifier
from transferkit.cli import app
from transferkit.finetune import ContrastiveTuner

HELD_OUT = {
    "sport": ["The midfielder was sent off and his team lost the derby.", "She cycled to victory in the final stage."],
    "food": ["Bake the bread at a high heat until the crust is golden.", "Stir the risotto and add stock slowly."],
    "weather": ["Gales and hail will sweep across the north tomorrow.", "Expect a warm, cloudless day with light winds."],
}
TEST_TEXTS = [t for ts in HELD_OUT.values() for t in ts]
TEST_LABELS = [c for c, ts in HELD_OUT.items() for _ in ts]


def test_features_strategy_classifies_held_out_sentences(text_features_model):
    clf = text_features_model
    assert clf.classes_.tolist() == ["food", "sport", "weather"]
    assert clf.score(TEST_TEXTS, TEST_LABELS) >= 5 / 6
    proba = clf.predict_proba(TEST_TEXTS)
    np.testing.assert_allclose(proba.sum(1), 1)
    assert "features: frozen all-MiniLM-L6-v2" in clf.reason_


def test_predict_before_fit_says_to_fit():
    with pytest.raises(NotFittedError, match="Call fit"):
        TextClassifier().predict(["hello"])


def test_clone_and_get_params_follow_scikit_learn():
    clf = TextClassifier(strategy=FineTune(tuner=ContrastiveTuner(rounds=2)))
    assert clone(clf).get_params()["strategy__tuner__rounds"] == 2 == clf.get_params()["strategy__tuner__rounds"]


def test_bundle_round_trip_predicts_identically(text_features_model, tmp_path):
    text_features_model.save(tmp_path / "m")
    loaded = TextClassifier.load(tmp_path / "m", verbose=False)
    np.testing.assert_array_equal(loaded.predict_proba(TEST_TEXTS), text_features_model.predict_proba(TEST_TEXTS))
    assert not any(p.suffix in (".pkl", ".pickle", ".bin") for p in (tmp_path / "m").rglob("*"))
    assert not (tmp_path / "m" / "featurizer" / "model.safetensors").exists()  # the frozen encoder is a reference


def test_scratch_is_tfidf_and_round_trips(text_csv, tmp_path):
    clf = TextClassifier(strategy="scratch", verbose=False).fit(text_csv)
    assert clf.vectorizer_ is not None and "TF-IDF" in clf.reason_
    clf.save(tmp_path / "tfidf")
    loaded = TextClassifier.load(tmp_path / "tfidf")
    np.testing.assert_allclose(loaded.predict_proba(TEST_TEXTS), clf.predict_proba(TEST_TEXTS), atol=1e-12)


@pytest.mark.parametrize("loss, rounds", [("batch", 2), ("pairs", 8)])
def test_finetune_changes_the_encoder_and_the_bundle_keeps_the_tuned_weights(text_csv, text_features_model, tmp_path,
                                                                             loss, rounds):
    clf = TextClassifier(strategy=FineTune(tuner=ContrastiveTuner(loss=loss, rounds=rounds, train_tokens=32, refit=False)),
                         verbose=False).fit(text_csv)
    assert clf.featurizer_.tuned and clf.metrics_["pairs"] > 0
    assert clf.metrics_["pair_loss_after"] < clf.metrics_["pair_loss_before"]
    base = text_features_model.featurizer_.model.state_dict()
    tuned = clf.featurizer_.model.state_dict()
    assert any(not np.allclose(base[k].numpy(), tuned[k].numpy()) for k in base)
    clf.save(tmp_path / "tuned")
    loaded = TextClassifier.load(tmp_path / "tuned", verbose=False)
    np.testing.assert_allclose(loaded.predict_proba(TEST_TEXTS), clf.predict_proba(TEST_TEXTS), atol=1e-6)
    # the split's held-out texts fit the temperature its confidence is read with, so predict can estimate accuracy
    assert loaded.metrics_["val_temperature"] == clf.metrics_["val_temperature"] > 0
    many = TEST_TEXTS * (20 // len(TEST_TEXTS) + 1)
    estimate = loaded.predictor().label_free(loaded.predict_proba(many))
    assert estimate["n"] == len(many) and 0.0 < estimate["accuracy"] <= 1.0


@pytest.mark.slow  # auto tunes the sentence encoder
def test_auto_says_what_it_chose_and_why_and_records_it(text_csv, tmp_path):
    clf = TextClassifier(verbose=False).fit(text_csv)
    assert clf.metrics_["auto_choice"] in ("features", "finetune", "scratch")
    assert clf.reason_.startswith(f"auto chose {clf.metrics_['auto_choice']}: ")
    clf.save(tmp_path / "auto")
    saved = json.loads((tmp_path / "auto" / "report.json").read_text())
    assert saved["reason"] == clf.reason_ and saved["metrics"]["auto_reason"]
    if clf.metrics_["auto_choice"] == "finetune":  # tuned once, on the split it is validated on (refit=False)
        assert clf.metrics_["tuner"]["loss"] == "batch" and "refit_pairs" not in clf.metrics_


def test_the_tuning_time_estimate_counts_each_embedding_of_each_text():
    from transferkit.finetune.tuners import ContrastiveTuner
    from transferkit.strategies import CONTRASTIVE_TEXTS_PER_SECOND, Auto, FineTune

    class Probe:
        y = np.zeros(50)
        featurizer = type("F", (), {"kind": "sentence-encoder"})()

    once = Auto._estimate_seconds("sentence-encoder", Probe, FineTune())
    assert once == ContrastiveTuner.rounds * 50 / CONTRASTIVE_TEXTS_PER_SECOND
    assert Auto._estimate_seconds("sentence-encoder", Probe, FineTune(tuner=ContrastiveTuner(refit=True))) == 2 * once


def test_auto_keeps_frozen_features_within_a_tiny_time_budget(text_csv):
    from transferkit.strategies import AUTO_SEPARATED

    clf = TextClassifier(strategy=Auto(time_budget=0.001), verbose=False).fit(text_csv)
    assert clf.metrics_["auto_choice"] == "features"
    assert "budget" in clf.metrics_["auto_reason"] or clf.metrics_["cv_interval"][0] >= AUTO_SEPARATED


def test_word_vectors_work_as_an_encoder(tmp_path):
    vocab = {w for ts in TOPICS.values() for t in ts for w in t.lower().replace(".", " ").replace(",", " ").split()}
    rng = np.random.default_rng(0)
    topic_dirs = {c: rng.normal(size=16) for c in TOPICS}
    lines = []
    for w in sorted(vocab):
        home = [c for c, ts in TOPICS.items() if any(w in t.lower() for t in ts)]
        vec = rng.normal(scale=0.3, size=16) + sum(topic_dirs[c] for c in home) / max(len(home), 1)
        lines.append(w + " " + " ".join(f"{v:.4f}" for v in vec))
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    texts = [t for ts in TOPICS.values() for t in ts]
    labels = [c for c, ts in TOPICS.items() for _ in ts]
    clf = TextClassifier(encoder=str(path), strategy="features", verbose=False).fit(texts, labels)
    assert clf.score(texts, labels) > 0.9
    clf.save(tmp_path / "wv")
    np.testing.assert_array_equal(TextClassifier.load(tmp_path / "wv").predict_proba(texts), clf.predict_proba(texts))
    with pytest.raises(BadInputError, match="cannot tune a word-vectors featurizer"):
        TextClassifier(encoder=str(path), strategy="finetune", verbose=False).fit(texts, labels)


def test_a_single_class_is_a_clear_error(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("text,label\nfirst,a\nsecond,a\n")
    with pytest.raises(BadInputError, match="single class"):
        TextClassifier(verbose=False).fit(path)


runner = CliRunner()


@pytest.fixture(scope="module")
def text_model_dir(tmp_path_factory, text_csv):
    out = tmp_path_factory.mktemp("textcli") / "model"
    result = runner.invoke(app, ["fit", str(text_csv), "--out", str(out), "--strategy", "features", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout.strip().splitlines()[-1])
    assert fit["strategy"] == "features" and fit["classes"] == ["food", "sport", "weather"]
    return out


def test_cli_fit_says_it_found_text(text_csv, tmp_path):
    result = runner.invoke(app, ["fit", str(text_csv), "--out", str(tmp_path / "m"), "--strategy", "scratch"])
    assert result.exit_code == 0, result.output
    assert "Text data: 24 texts in 3 classes" in result.output


def test_cli_predict_texts_from_arguments_and_stdin(text_model_dir):
    result = runner.invoke(app, ["predict", str(text_model_dir), TEST_TEXTS[0], TEST_TEXTS[2], "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["text"] for r in rows] == [TEST_TEXTS[0], TEST_TEXTS[2]]
    assert [r["label"] for r in rows] == ["sport", "food"]
    piped = runner.invoke(app, ["predict", str(text_model_dir), "--json"], input="\n".join(TEST_TEXTS[4:]) + "\n")
    assert [json.loads(line)["label"] for line in piped.stdout.strip().splitlines()] == ["weather", "weather"]


def test_cli_evaluate_text_json(text_model_dir, tmp_path):
    test = tmp_path / "test.jsonl"
    test.write_text("\n".join(json.dumps({"text": t, "label": c}) for t, c in zip(TEST_TEXTS, TEST_LABELS)))
    result = runner.invoke(app, ["evaluate", str(text_model_dir), str(test), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_examples"] == 6 and report["accuracy"] >= 5 / 6


@pytest.mark.parametrize("n_classes, per_class, size", [(2, 10, 16), (5, 5, 16), (12, 3, 16), (3, 1, 16)])
def test_a_contrastive_batch_holds_each_of_its_classes_at_least_twice(n_classes, per_class, size):
    from transferkit.finetune.contrastive import class_balanced_batch

    y = np.repeat(np.arange(n_classes), per_class)
    for seed in range(20):
        batch = class_balanced_batch(y, size, np.random.default_rng(seed))
        counts = np.bincount(y[batch], minlength=n_classes)
        assert len(batch) <= size and len(set(batch.tolist())) == len(batch)
        assert all(c >= min(2, per_class) for c in counts if c), counts  # every text in it has a positive partner
        if n_classes * 2 <= size:
            assert (counts > 0).all()  # room for every class: every class is there


def test_with_two_labels_per_class_the_final_encoder_is_tuned_on_every_label():
    """The split leaves one text of a class, which has no same-class pair to learn from."""
    from transferkit.strategies import needs_every_label

    assert needs_every_label(np.array([0, 1, 2]), np.array([0, 0, 1, 1, 2, 2]))
    assert needs_every_label(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1, 2, 2]))  # a class not in the split at all
    assert not needs_every_label(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 1, 1, 1, 2, 2, 2]))
    texts = ["refund my order", "the parcel never came", "how do I reset my password", "login fails every time"]
    clf = TextClassifier(strategy=FineTune(tuner=ContrastiveTuner(rounds=2, train_tokens=32)), verbose=False).fit(
        texts, ["orders", "orders", "account", "account"])
    assert clf.metrics_["refit_pairs"] > 0 and "then tuned on" in clf.reason_
