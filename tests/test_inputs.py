"""The inputs people have: PIL images, numpy arrays and pandas DataFrames as well as paths; labels that keep their
type; tables as spreadsheets write them; and a property-based layer over the readers (Hypothesis)."""

from __future__ import annotations

import csv
import json
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from transferkit import Features, ImageClassifier, TextClassifier
from transferkit.data import read_images, read_texts
from transferkit.errors import BadInputError


def test_pil_images_and_numpy_arrays_fit_and_predict_like_their_files(small_train, tiny_backbone):
    paths = sorted(small_train.rglob("*.png"))
    labels = [p.parent.name for p in paths]
    clf = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(paths, labels)
    as_pil = [Image.open(p).convert("RGB") for p in paths]
    np.testing.assert_allclose(clf.predict_proba(as_pil), clf.predict_proba(paths), atol=1e-6)
    as_arrays = np.stack([np.asarray(im.resize((48, 48))) for im in as_pil])  # one N x H x W x 3 batch
    assert clf.predict_proba(as_arrays).shape == (len(paths), 3)
    fitted_on_arrays = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(as_arrays, labels)
    assert fitted_on_arrays.classes_.tolist() == sorted(set(labels))


@pytest.mark.parametrize("bad,why", [
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8, 2), np.uint8), "shape"),
    (object(), "not an image path"),
])
def test_an_unusable_in_memory_image_is_named_with_the_reason(small_train, tiny_backbone, bad, why):
    paths = sorted(small_train.rglob("*.png"))
    clf = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(paths, [p.parent.name for p in paths])
    with pytest.raises(BadInputError, match=why):
        clf.predict_proba([bad])


def test_integer_labels_stay_integers_through_fit_save_and_load(small_train, tiny_backbone, tmp_path):
    paths = sorted(small_train.rglob("*.png"))
    names = sorted({p.parent.name for p in paths})
    labels = [names.index(p.parent.name) + 1 for p in paths]
    clf = ImageClassifier(tiny_backbone, Features(), verbose=False).fit(paths, labels)
    assert clf.classes_.tolist() == [1, 2, 3] and isinstance(clf.predict(paths[:1])[0].item(), int)
    clf.save(tmp_path / "m")
    loaded = ImageClassifier.load(tmp_path / "m", verbose=False)
    assert loaded.classes_.tolist() == [1, 2, 3] and loaded.predict(paths[:3]).tolist() == clf.predict(paths[:3]).tolist()


def test_labels_of_mixed_types_are_refused_instead_of_merged():
    with pytest.raises(BadInputError, match="mix types"):
        read_texts(["a", "b", "c"], [1, "1", 1])
    assert read_texts(["a", "b"], [1.0, 2.5]).labels == (1.0, 2.5)  # numbers to predict (targets.resolve decides)
    with pytest.raises(BadInputError, match="fraction"):
        TextClassifier(task="class", verbose=False).fit(["a", "b", "c", "d"], [1.0, 2.5, 1.0, 2.5])


def test_dataframes_with_named_columns(tmp_path):
    pd = pytest.importorskip("pandas")
    texts = pd.DataFrame({"review": ["great", "awful", "fine"], "stars": ["5", "1", "3"], "id": [1, 2, 3]})
    data = read_texts(texts, label_column="stars")
    assert data.items == ("great", "awful", "fine") and data.labels == ("5", "1", "3")
    assert "texts from column 'review', labels from 'stars'" in data.notes[-1]
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    images = pd.DataFrame({"file": [str(tmp_path / "a.png")], "kind": ["x"]})
    assert read_images(images, label_column="kind").items == (tmp_path / "a.png",)


def test_an_unquoted_line_separator_stays_inside_its_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfirst line\u2028still the first,a\nsecond,b\n", encoding="utf-8")
    data = read_texts(path)
    assert data.items == ("first line\u2028still the first", "second") and data.labels == ("a", "b")


def test_a_tab_separated_file_named_csv_is_read_as_such_and_said(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text\tlabel\nhello world\tgreeting\n", encoding="utf-8")
    data = read_texts(path)
    assert data.items == ("hello world",) and any("tab-separated" in n for n in data.notes)


def test_a_fit_says_which_columns_it_used(text_csv, tiny_encoder, capsys):
    TextClassifier(tiny_encoder, Features(), verbose=True).fit(text_csv)
    assert "texts from column 'text', labels from 'label'" in capsys.readouterr().err


def test_the_library_leaves_the_csv_field_limit_as_it_found_it(text_csv):
    before = csv.field_size_limit()
    read_texts(text_csv)
    assert csv.field_size_limit() == before


# -- properties ------------------------------------------------------------------------------------------------------

cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
words = st.text(alphabet=string.ascii_letters + string.digits + " ,;\"'\t\u2028\u00e9", min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(words, st.sampled_from(["a", "b", "c"])), min_size=1, max_size=12))
def test_a_csv_written_by_the_csv_module_reads_back_the_same_rows(tmp_path, rows):
    rows = [(t, lab) for t, lab in rows if t.strip()]
    if not rows:
        return
    path = tmp_path / "t.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    data = read_texts(path)
    assert list(zip(data.items, data.labels)) == rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.fixed_dictionaries({"text": cells, "label": st.one_of(st.sampled_from(["x", "y"]),
                                                                                 st.integers(0, 3))}),
                        min_size=1, max_size=10))
def test_jsonl_reads_back_its_records_or_says_why_not(tmp_path, records):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    try:
        data = read_texts(path)
    except BadInputError as exc:  # mixed label types, or nothing usable: said, never a crash
        assert str(path) in str(exc) or "mix types" in str(exc)
        return
    kept = [r for r in records if r["text"].strip()]
    assert list(data.items) == [r["text"] for r in kept] and list(data.labels) == [r["label"] for r in kept]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_any_bytes_named_png_are_read_or_skipped_with_a_reason(tmp_path, content):
    from transferkit.data import ImageDecodeError, load_image

    path = tmp_path / "x.png"
    path.write_bytes(content)
    try:
        image = load_image(path)
    except ImageDecodeError as exc:
        assert exc.reason
        return
    assert image.mode == "RGB"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
                             lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                             max_leaves=10))
def test_any_json_as_a_model_description_is_refused_cleanly(fitted_features, tmp_path_factory, document):
    from transferkit import load_model
    from transferkit.errors import TransferkitError

    folder = tmp_path_factory.mktemp("m")
    fitted_features.save(folder / "model")
    (folder / "model" / "transferkit.json").write_text(json.dumps(document))
    with pytest.raises(TransferkitError):
        load_model(folder / "model", verbose=False)
