"""Model folders: components that save themselves, folders written by transferkit 0.1 still load and predict as they
did, saving is atomic and never replaces what is not a model, and folders get the user's usual permissions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import reseal

from transferkit import ImageClassifier, TextClassifier, load_model
from transferkit.bundle import CONFIG_FILE, MANIFEST_FILE, REPORT_FILE, WEIGHTS_FILE
from transferkit.errors import BundleError

FORMAT1 = Path(__file__).parent / "fixtures" / "format1"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "clipart"
EXPECTED = json.loads((FORMAT1 / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_folders_written_by_transferkit_0_1_load_and_predict_as_they_did(name):
    """The fixtures were written by transferkit 0.1.0 itself (tests/fixtures/format1/made_with.py)."""
    expected = EXPECTED[name]
    model = load_model(FORMAT1 / name, verbose=False, precision="fp32")
    assert isinstance(model, ImageClassifier if name.startswith("image") else TextClassifier)
    assert model.classes_.tolist() == expected["classes"]
    inputs = [EXAMPLE / p for p in expected["inputs"]] if name.startswith("image") else expected["inputs"]
    np.testing.assert_allclose(model.predict_proba(inputs), np.array(expected["proba"]), atol=1e-5)
    assert model.strategy_ == name.split("-")[1] and model.reason_


def test_format1_params_do_not_reach_the_constructor(tmp_path):
    """A shared model must not decide where predict writes: 0.1's params (cache_dir, unknown keys) are ignored."""
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(FORMAT1 / "text-scratch", folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["params"] |= {"cache_dir": str(tmp_path / "elsewhere"), "surprise": 1}
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    model = load_model(folder, verbose=False)
    assert model.cache_dir is None


def test_a_model_folder_is_made_of_components(fitted_features, tmp_path):
    fitted_features.save(tmp_path / "model")
    names = sorted(p.relative_to(tmp_path / "model").as_posix() for p in (tmp_path / "model").rglob("*"))
    assert names == sorted([CONFIG_FILE, REPORT_FILE, MANIFEST_FILE, "README.md", "featurizer", "featurizer/config.json",
                            f"featurizer/{WEIGHTS_FILE}", "head", "head/config.json", f"head/{WEIGHTS_FILE}", "open_set",
                            "open_set/config.json", f"open_set/{WEIGHTS_FILE}"])
    featurizer = json.loads((tmp_path / "model" / "featurizer" / "config.json").read_text())
    assert featurizer["kind"] == "image-backbone" and featurizer["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    document = json.loads((tmp_path / "model" / CONFIG_FILE).read_text())
    assert {"torch", "timm", "scikit-learn"} <= set(document["versions"])
    assert document["inference"] == {"batch_size": 32, "precision": "auto", "tta": False, "path_column": None,
                                     "label_column": None}


def _word_vectors(folder: Path) -> Path:
    path = folder / "vectors.txt"
    path.write_text("good 0.9 0.1 0.0\nbad -0.8 0.2 0.1\nmatch 0.1 0.9 0.3\nrecipe 0.0 -0.2 0.9\n")
    return path


@pytest.mark.parametrize("kind", ["image-backbone", "sentence-encoder", "word-vectors", "tfidf"])
def test_a_featurizer_saves_its_constructor_arguments_and_loads_as_cls_of_them(kind, tiny_backbone, tiny_encoder,
                                                                               tmp_path):
    from transferkit.featurizers import ImageBackbone, Tfidf, load_featurizer, text_featurizer
    from transferkit.zoo import resolve

    texts = ["good match", "bad recipe", "a good recipe"]
    made = {"image-backbone": lambda: ImageBackbone.from_spec(resolve(tiny_backbone, "image")),
            "sentence-encoder": lambda: text_featurizer(resolve(tiny_encoder, "text"), long_text="chunk"),
            "word-vectors": lambda: text_featurizer(resolve(str(_word_vectors(tmp_path)), "text")),
            "tfidf": lambda: Tfidf().fit(texts)}[kind]()
    config, tensors = made.save()
    assert config["kind"] == kind and made.config_keys
    assert set(config) == {"kind", *made.config_keys, *made.fingerprint()}  # nothing else is kept
    loaded = load_featurizer(json.loads(json.dumps(config)), tensors, precision="auto")  # as made: bf16 or not
    assert type(loaded) is type(made) and loaded.get_config() == made.get_config()
    items = [EXAMPLE / "train" / "birds" / sorted(os.listdir(EXAMPLE / "train" / "birds"))[0]] if kind == "image-backbone" \
        else texts
    first, again = (f.transform([f.prepare(i) for i in items]) for f in (made, loaded))
    first, again = (x.toarray() if hasattr(x, "toarray") else x for x in (first, again))
    np.testing.assert_allclose(again, first, atol=1e-5)


def test_folders_and_files_get_the_users_permissions(fitted_features, tmp_path):
    old = os.umask(0o022)
    try:
        fitted_features.save(tmp_path / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "model" / CONFIG_FILE).stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "model" / "head" / WEIGHTS_FILE).stat().st_mode) == 0o644


def test_a_crash_while_saving_leaves_the_old_model_intact(fitted_features, tmp_path, monkeypatch):
    target = tmp_path / "model"
    fitted_features.save(target)
    before = (target / "head" / WEIGHTS_FILE).read_bytes()
    import safetensors.torch

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        fitted_features.save(target)
    assert (target / "head" / WEIGHTS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no half-written folder left behind


def test_replacing_a_model_keeps_the_users_other_files(fitted_features, tmp_path):
    target = tmp_path / "model"
    fitted_features.save(target)
    (target / "notes.txt").write_text("mine")
    fitted_features.save(target, overwrite=True)
    assert (target / "notes.txt").read_text() == "mine" and (target / CONFIG_FILE).is_file()


def test_an_existing_model_is_replaced_only_when_asked(fitted_features, tmp_path):
    fitted_features.save(tmp_path / "model")
    with pytest.raises(BundleError, match="--overwrite"):
        fitted_features.save(tmp_path / "model", overwrite=False)


def test_a_folder_that_is_not_a_model_is_never_replaced(fitted_features, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(BundleError, match="not a transferkit model folder"):
        fitted_features.save(folder)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


def test_a_model_that_appears_while_saving_is_not_replaced(fitted_features, tmp_path, monkeypatch):
    """Two fits racing for one --out: the second to finish gets a clear error, the first model stays whole."""
    from transferkit import bundle

    target = tmp_path / "model"
    real_write = bundle._write_json
    raced = []

    def racer_writes_first(path, value):
        real_write(path, value)
        if path.name == CONFIG_FILE and not raced:
            raced.append(True)
            fitted_features.save(target)  # the other process finishes first

    monkeypatch.setattr(bundle, "_write_json", racer_writes_first)
    with pytest.raises(BundleError, match="appeared while this model was being written"):
        fitted_features.save(target, overwrite=False)
    monkeypatch.undo()
    assert load_model(target, verbose=False).classes_.tolist() == fitted_features.classes_.tolist()


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(classes=d["classes"] + ["extra"]), "names 7 classes but its head predicts 6"),
    (lambda d: d.update(classes=d["classes"][:-1]), "names 5 classes but its head predicts 6"),
    (lambda d: d.update(classes=[d["classes"][0]] * 6), "distinct names"),
    (lambda d: d.update(components=[{"name": "../../etc", "kind": "x"}]), "not valid"),
    (lambda d: d.update(inference={"batch_size": -3}), "batch_size -3"),
])
def test_an_edited_model_description_is_refused_with_the_reason(fitted_features, tmp_path, edit, message):
    fitted_features.save(tmp_path / "model")
    path = tmp_path / "model" / CONFIG_FILE
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(BundleError, match="transferkit.json is not the file that was saved"):
        load_model(tmp_path / "model", verbose=False)
    reseal(tmp_path / "model")  # the manifest rewritten to match: the description's own checks still refuse it
    with pytest.raises(BundleError, match=message):
        load_model(tmp_path / "model", verbose=False)


def test_a_folder_of_a_newer_format_asks_for_an_upgrade(fitted_features, tmp_path):
    fitted_features.save(tmp_path / "model")
    path = tmp_path / "model" / CONFIG_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | {"format_version": 99}))
    with pytest.raises(BundleError, match="newer transferkit"):
        load_model(tmp_path / "model", verbose=False)


def test_a_half_written_folder_is_not_loaded(tmp_path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "featurizer").mkdir()
    with pytest.raises(BundleError, match="not a transferkit model"):
        ImageClassifier.load(tmp_path / "partial")
