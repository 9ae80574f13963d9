"""Several labels per item and numbers: what a label column means is decided once and said; a model of either fits,
predicts, saves, loads, evaluates, exports and serves like a classifier; bad label columns get a clear error."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from transferkit import Auto, ImageClassifier, TextClassifier, load_model
from transferkit.cli import app
from transferkit.data.labeled import Labeled
from transferkit.errors import BadInputError, BundleError
from transferkit.predictor import read
from transferkit.shapes import best_thresholds, choose_thresholds
from transferkit.targets import resolve

runner = CliRunner()

WORDS = {"flight": ["flight", "plane", "airport", "boarding pass"], "hotel": ["hotel", "room service", "suite",
                                                                               "check-in desk"],
         "train": ["train", "railway", "station platform", "rail ticket"]}
FILLER = ["late", "cheap", "lovely", "terrible", "today", "again", "booked", "cancelled"]
VALUE = {"flight": 100.0, "hotel": 50.0, "train": 20.0}


def _sentences(n: int, seed: int, several: bool):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topics = sorted(rng.sample(sorted(WORDS), rng.choice([1, 1, 2] if several else [1])))
        words = [rng.choice(WORDS[t]) for t in topics] + rng.sample(FILLER, 2)
        rng.shuffle(words)
        rows.append((" ".join(words), topics))
    return rows


@pytest.fixture(scope="module")
def tags_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("tags") / "tags.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows((text, "|".join(topics)) for text, topics in _sentences(60, 0, True))
    return path


@pytest.fixture(scope="module")
def tagger(tags_csv, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagger") / "model"
    result = runner.invoke(app, ["fit", str(tags_csv), "--out", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pricer(tmp_path_factory):
    rng = random.Random(1)
    rows = [(text, VALUE[topics[0]] + rng.uniform(-5, 5)) for text, topics in _sentences(45, 1, False)]
    model = TextClassifier(strategy="features", verbose=False).fit([t for t, _ in rows], [v for _, v in rows])
    folder = tmp_path_factory.mktemp("pricer") / "model"
    model.save(folder)
    return model, folder, rows


# -- what a label column means ---------------------------------------------------------------------------------------

def _data(labels, items=None):
    return Labeled(tuple(items or [f"item {i}" for i in range(len(labels))]), tuple(labels), "labels.csv")


def test_lists_and_separated_cells_are_several_labels_and_the_separator_is_said():
    listed = resolve(_data([("a", "b"), ("a",), ("b",), ("a", "b")]))
    assert listed.kind == "labels" and listed.names == ("a", "b")
    assert listed.indicator().tolist() == [[1, 1], [1, 0], [0, 1], [1, 1]]
    cells = resolve(_data(["a|b", "a", "b", "b | a"]))
    assert cells.kind == "labels" and cells.separator == "|" and cells.data.labels[3] == ("a", "b")
    assert any("split at '|'" in note for note in cells.notes)
    assert resolve(_data(["a;b", "a", "b", "a"]), separator=";").data.labels[0] == ("a", "b")
    assert resolve(_data(["a|b", "a|b", "a", "b"]), task="class").data.labels[0] == "a|b"  # kept whole when asked


def test_fractions_and_many_whole_numbers_are_numbers_and_few_whole_numbers_stay_classes():
    assert resolve(_data(["1.5", "2", "3.25", "2"])).kind == "number"
    assert resolve(_data([1.5, 2, 3.25])).values().tolist() == [1.5, 2.0, 3.25]
    assert resolve(_data(list(range(30)))).kind == "number"
    stars = resolve(_data([1, 2, 3, 4, 5, 1]))
    assert stars.kind == "class" and stars.names == (1, 2, 3, 4, 5)
    assert resolve(_data([1, 2, 3, 4]), task="number").kind == "number"


@pytest.mark.parametrize("labels, task, says", [
    (["1.5", "2.5", "cheap"], "auto", "mixes numbers .* and words"),
    (["1.5", "2.5", "cheap"], "number", "'cheap' .* is not a number"),
    (["a||b", "a", "b", "a"], "auto", "empty label"),
    (["a|", "a", "b", "b"], "auto", "empty label"),
    ([("a", "b|c"), ("a",), ("b|c",), ("a",)], "labels:|", "contains the separator"),
    ([(), ("a",), ("b",), ("a", "b")], "auto", "empty set of labels"),
    ([("a", "b"), ("a",), ("a",), ("a", "c")], "auto", "'b', 'c' occurs on a single item"),
    ([("a", "b"), ("a",), ("a", "c"), ("a", "b", "c")], "auto", "'a' is on every item"),
    ([1.5, 1.5, 1.5], "number", "the same number"),
    ([("a", "b"), ("a",)], "class", "several labels"),
    ([1.5, 2.0], "class", "is a fraction"),
])
def test_bad_label_columns_are_refused_with_the_row_and_the_fix(labels, task, says):
    task, _, separator = task.partition(":")
    with pytest.raises(BadInputError, match=says):
        resolve(_data(labels), task=task, separator=separator or None)


def test_an_item_listed_once_per_label_is_one_item_with_both_labels(tmp_path, small_train):
    images = sorted(small_train.rglob("*.png"))[:4]
    table = tmp_path / "tags.csv"
    rows = [(images[0], "bird"), (images[0], "sky"), (images[1], "bird"), (images[2], "sky"), (images[3], "bird"),
            (images[3], "sky")]
    table.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows))
    with pytest.raises(BadInputError, match="row 2 and 'sky' in row 3.*task='labels'"):  # one class unless asked
        read("image", table)
    merged = resolve(read("image", table, several_labels=True), "labels")
    assert len(merged.data) == 4 and merged.data.labels[0] == ("bird", "sky")
    assert any("repeat an item" in note for note in merged.notes)


# -- thresholds ------------------------------------------------------------------------------------------------------

def test_thresholds_give_the_best_f1_drawn_toward_one_half_or_reach_the_precision_asked_for():
    P = np.array([[0.9], [0.8], [0.35], [0.3], [0.2], [0.1]])
    Y = np.array([[1], [1], [1], [0], [0], [0]])
    best = best_thresholds(P, Y)[0]
    assert 0.3 < best <= 0.35  # all three positives, no negative: F1 = 1, which 0.5 would miss
    drawn = choose_thresholds(P, Y)[0]
    assert best < drawn < 0.5  # three positives are little evidence: most of the way back to 0.5
    many = choose_thresholds(np.repeat(P, 100, axis=0), np.repeat(Y, 100, axis=0))[0]
    assert best <= many < best + 0.02  # 300 positives: the threshold they show
    strict = choose_thresholds(np.array([[0.9], [0.8], [0.7], [0.6]]), np.array([[1], [0], [1], [1]]), 0.9)[0]
    assert strict > 0.8  # only the top item keeps precision >= 0.9
    assert choose_thresholds(P, Y, min_precision=0.99)[0] == pytest.approx(0.35 + (0.3 - 0.35) / 2)


# -- several labels through every surface ----------------------------------------------------------------------------

def test_several_labels_fit_with_an_estimate_and_predict_the_set_of_labels(tagger):
    folder, fit = tagger
    assert fit["target"]["kind"] == "labels" and fit["classes"] == ["flight", "hotel", "train"]
    distinct = len({text for text, _ in _sentences(60, 0, True)})  # a text listed twice is one item
    assert fit["estimate"]["measure"] == "micro_f1" and fit["estimate"]["n"] == distinct
    assert fit["estimate"]["accuracy"] > 0.8
    assert "thresholds chosen on the other folds" in fit["reason"]
    result = runner.invoke(app, ["predict", str(folder), "--json", "--text", "a plane ticket and a hotel suite",
                                 "--text", "the railway station platform"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert rows[0]["labels"] == ["flight", "hotel"] and rows[1]["labels"] == ["train"]
    assert set(rows[0]["probabilities"]) == {"flight", "hotel", "train"}
    model = load_model(folder, verbose=False)
    assert model.predict(["a plane ticket and a hotel suite"])[0] == ("flight", "hotel")


def test_several_labels_evaluate_with_intervals_and_a_per_label_report(tagger, tmp_path):
    folder, _ = tagger
    test = tmp_path / "test.csv"
    with test.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text", "label"), *((t, "|".join(k)) for t, k in _sentences(30, 7, True))])
    result = runner.invoke(app, ["evaluate", str(folder), str(test), "--json", "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])["metrics"]
    assert metrics["micro_f1"] > 0.8 and metrics["micro_f1_interval"][0] <= metrics["micro_f1"]
    assert [row["label"] for row in metrics["per_label"]] == ["flight", "hotel", "train"]
    assert "precision and recall per label" in (tmp_path / "r.html").read_text()
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("text,label\na boat trip,boat|flight\n")
    refused = runner.invoke(app, ["evaluate", str(folder), str(unknown)])
    assert refused.exit_code != 0 and "not trained on: 'boat'" in refused.output


def test_several_labels_stream_to_a_file_with_one_probability_column_per_label(tagger, tags_csv, tmp_path):
    folder, _ = tagger
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(folder), "--files", str(tags_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["text", "labels", "p_flight", "p_hotel", "p_train", "error"] and len(rows) == 60
    truth = {t: "|".join(k) for t, k in _sentences(60, 0, True)}
    assert np.mean([row["labels"] == truth[row["text"]] for row in rows]) > 0.9


def test_a_model_of_labels_refuses_rejection_and_other_strategies(tagger, tags_csv):
    folder, _ = tagger
    refused = runner.invoke(app, ["predict", str(folder), "--text", "a plane", "--reject", "auto"])
    assert refused.exit_code != 0 and "one class per item" in refused.output
    with pytest.raises(BadInputError, match="'scratch' is for one class per text"):
        TextClassifier(strategy="scratch", verbose=False).fit(tags_csv)
    with pytest.raises(BadInputError, match="min_precision"):
        TextClassifier(min_precision=1.5, verbose=False).fit(tags_csv)


@pytest.mark.slow  # a second several-labels fit
def test_min_precision_sets_the_thresholds_and_is_said(tags_csv):
    default = TextClassifier(verbose=False).fit(tags_csv)
    strict = TextClassifier(min_precision=0.99, verbose=False).fit(tags_csv)
    assert strict.report_.metrics["threshold_rule"] == "precision>=0.99" and "at least 0.99" in strict.reason_
    assert strict.target_["thresholds"] != default.target_["thresholds"]  # what each rule picks: test_thresholds_...


# -- numbers ---------------------------------------------------------------------------------------------------------

def test_numbers_fit_a_ridge_head_with_r2_and_predict_numbers(pricer):
    model, folder, rows = pricer
    assert model.target_ == {"kind": "number", "separator": None, "thresholds": None}
    estimate = model.report_.estimate
    assert estimate.key == "r2" and estimate.n == 45 and estimate.value > 0.5
    predicted = model.predict(["a cheap plane from the airport", "the train was late"])
    assert predicted.dtype == np.float64 and predicted[0] > 70 and predicted[1] < 45
    assert load_model(folder, verbose=False).predict(["the train was late"])[0] == pytest.approx(predicted[1])
    assert model.score([t for t, _ in rows], [v for _, v in rows]) > 0.5
    with pytest.raises(BadInputError, match="use predict"):
        model.predict_proba(["a plane"])


def test_numbers_evaluate_with_r2_mae_and_a_predicted_against_true_plot(pricer, tmp_path):
    _, folder, _ = pricer
    rng = random.Random(3)
    test = tmp_path / "test.csv"
    with test.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text", "label"), *((t, VALUE[k[0]] + rng.uniform(-5, 5))
                                                       for t, k in _sentences(25, 3, False))])
    result = runner.invoke(app, ["evaluate", str(folder), str(test), "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "R²" in result.output and "mean absolute error" in result.output
    assert "predicted against true" in (tmp_path / "r.html").read_text()
    printed = runner.invoke(app, ["predict", str(folder), "--json", "--text", "the hotel suite"])
    assert 30 < json.loads(printed.stdout.strip())["value"] < 70


# -- the model folder, the export and the server ---------------------------------------------------------------------

@pytest.mark.slow  # fits and exports twice
@pytest.mark.parametrize("task, labels", [("labels", lambda i: [["a"], ["b"], ["a", "b"]][i % 3]),
                                          ("number", lambda i: float(i % 5) + 0.5)])
def test_exports_to_onnx_with_the_same_answers(small_train, tiny_backbone, tmp_path, task, labels):
    from transferkit.export import export_onnx
    from transferkit.onnx_runtime import OnnxPredictor

    images = sorted(small_train.rglob("*.png"))
    model = ImageClassifier(tiny_backbone, "features", verbose=False).fit(images, [labels(i) for i in range(len(images))])
    assert model.target_["kind"] == task
    export_onnx(model.predictor(), tmp_path / "onnx", check_items=images)
    onnx = OnnxPredictor.load(tmp_path / "onnx")
    assert onnx.kind == task
    expected, got = model.predict(images), onnx.predict(images)
    if task == "number":
        assert np.allclose(expected.astype(float), got.astype(float), rtol=1e-4)
    else:
        assert list(expected) == list(got)


def test_an_edited_target_is_refused_on_load(pricer, tmp_path):
    import shutil

    from conftest import reseal

    _, folder, _ = pricer
    copy = tmp_path / "m"
    shutil.copytree(folder, copy)
    document = json.loads((copy / "transferkit.json").read_text())
    document["target"] = {"kind": "labels", "thresholds": [0.5]}
    (copy / "transferkit.json").write_text(json.dumps(document))
    reseal(copy)
    with pytest.raises(BundleError, match="does not match its head"):
        load_model(copy)


def test_the_server_answers_labels_and_numbers(tagger, pricer):
    from fastapi.testclient import TestClient

    from transferkit.predictor import Predictor
    from transferkit.serve import create_app

    for folder, kind, key in ((tagger[0], "labels", "labels"), (pricer[1], "number", "value")):
        with TestClient(create_app(Predictor.load(folder))) as client:
            response = client.post("/predict", json={"texts": ["a plane from the airport"]})
            assert response.status_code == 200, response.text
            assert key in response.json()["predictions"][0]
            assert client.get("/model").json()["target"]["kind"] == kind


# -- fine-tuning an image network for several labels or a number ----------------------------------------------------

@pytest.mark.parametrize("task, labels", [("labels", lambda i: [["a"], ["b"], ["a", "b"]][i % 3]),
                                          ("number", lambda i: float(i % 5) * 10 + 0.5)])
def test_fine_tuning_for_labels_or_numbers_is_judged_on_images_it_never_trained_on(small_train, tiny_backbone,
                                                                                  tmp_path, task, labels):
    from transferkit import FineTune, NetworkTuner
    from transferkit.export import export_onnx
    from transferkit.onnx_runtime import OnnxPredictor

    images = sorted(small_train.rglob("*.png"))
    targets = [labels(i) for i in range(len(images))]
    model = ImageClassifier(tiny_backbone, FineTune(tuner=NetworkTuner(epochs=2, unfreeze=1, augment=False)),
                            verbose=False, task=task).fit(images, targets)
    key = "micro_f1" if task == "labels" else "r2"
    estimate = model.report_.estimate
    assert model.strategy_ == "finetune" and estimate.key == f"val_{key}" and estimate.n == 4  # 20% of 18 images
    assert f"frozen_val_{key}" in model.report_.metrics and "held-out images" in model.reason_
    assert model.featurizer_.tuned
    answers = model.predict(images)
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    export_onnx(model.predictor(), tmp_path / "onnx", check_items=images)  # checked against the model, or refused
    onnx = OnnxPredictor.load(tmp_path / "onnx")
    for other in (loaded, onnx):
        if task == "number":
            assert all(isinstance(v, float) for v in answers)
            assert np.allclose(np.asarray(other.predict(images), float), np.asarray(answers, float), rtol=1e-3)
        else:
            assert list(other.predict(images)) == list(answers)


def test_a_sentence_encoder_tunes_on_how_alike_two_texts_labels_are(tags_csv, tiny_encoder):
    from transferkit import ContrastiveTuner, FineTune
    from transferkit.shapes import similarity

    assert similarity(np.array([[1, 0], [1, 1], [0, 0]]))[0].tolist() == [1.0, 0.5, 0.0]  # labels in common
    assert similarity(np.array([0.0, 5.0, 10.0]))[0].tolist() == [1.0, 0.5, 0.0]  # numbers: distance over range
    model = TextClassifier(tiny_encoder, FineTune(tuner=ContrastiveTuner(rounds=2)), verbose=False).fit(tags_csv)
    assert model.strategy_ == "finetune" and model.report_.estimate.key == "val_micro_f1"
    assert "each pair's target the share of labels they have in common" in model.reason_
    assert all(set(labels) <= {"flight", "hotel", "train"} for labels in model.predict(["a plane to the hotel"]))
    with pytest.raises(BadInputError, match="loss='batch'"):
        TextClassifier(tiny_encoder, FineTune(tuner=ContrastiveTuner(loss="pairs")), verbose=False).fit(tags_csv)


def test_auto_tunes_the_encoder_for_numbers_and_few_labels_per_text_where_it_paid_off(tiny_encoder):
    rows = _sentences(30, 4, False)
    texts, values = [t for t, _ in rows], [VALUE[k[0]] for _, k in rows]
    numbers = TextClassifier(tiny_encoder, verbose=False, task="number").fit(texts, values)
    assert numbers.strategy_ == "finetune" and "auto tuned the encoder: 30 texts" in numbers.reason_
    few = TextClassifier(tiny_encoder, verbose=False, task="number").fit(texts[:12], values[:12])
    assert few.strategy_ == "features"  # under 20 numbers tuning was not measured: frozen features
    budget = TextClassifier(tiny_encoder, strategy=Auto(time_budget=1), verbose=False, task="number")
    assert budget.fit(texts, values).strategy_ == "features"
    tagged = _sentences(24, 5, True)
    labels = TextClassifier(tiny_encoder, verbose=False).fit([t for t, _ in tagged], [k for _, k in tagged])
    assert labels.strategy_ == "finetune" and "texts on the smallest label" in labels.reason_
