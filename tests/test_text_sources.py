"""Reading labeled texts: CSV / TSV / JSONL with detected or named columns, class folders of .txt files, and the
mistakes users make (bad encodings, empty texts, missing labels, broken lines), reported with the file and row."""

from __future__ import annotations

import json

import pytest

from transferkit import BadInputError
from transferkit.data import is_text_source, read_texts


def test_csv_columns_are_detected_and_rows_kept_in_order(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id,Review,Category\n1,Great phone,tech\n2,\"Lovely, warm soup\",food\n", encoding="utf-8")
    data = read_texts(path)
    assert data.items == ("Great phone", "Lovely, warm soup") and data.labels == ("tech", "food")


def test_named_columns_win_and_a_wrong_name_lists_the_columns(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\nhello,x\nworld,y\n", encoding="utf-8")
    assert read_texts(path, text_column="a", label_column="b").labels == ("x", "y")
    with pytest.raises(BadInputError, match=r"cannot tell which column holds the text.*--text-column"):
        read_texts(path)
    with pytest.raises(BadInputError, match=r"no column 'body'.*\['a', 'b'\]"):
        read_texts(path, text_column="body")


def test_tsv_and_jsonl(tmp_path):
    tsv = tmp_path / "d.tsv"
    tsv.write_text("sentence\tlabel\nfirst one\tp\nsecond one\tn\n", encoding="utf-8")
    assert read_texts(tsv).items == ("first one", "second one")
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in [{"text": "a b", "label": 1}, {"text": "c d", "label": 0}]))
    data = read_texts(jsonl)
    assert data.items == ("a b", "c d") and data.labels == (1, 0)  # JSON numbers stay numbers


def test_broken_json_line_names_the_line(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "ok", "label": "a"}\n{"text": "broken"\n')
    with pytest.raises(BadInputError, match=r"d.jsonl, line 2 is not valid JSON"):
        read_texts(jsonl)


def test_empty_texts_and_missing_labels_are_left_out_and_reported(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\ngood one,a\n   ,a\nno label here,\nanother,b\n", encoding="utf-8")
    data = read_texts(path)
    assert data.items == ("good one", "another")
    assert any("1 empty text(s) (row 3)" in n for n in data.notes)
    assert any("1 text(s) without a label (row 4)" in n for n in data.notes)


def test_bytes_that_are_not_utf8_are_replaced_and_counted(tmp_path):
    root = tmp_path / "folder"
    (root / "pos").mkdir(parents=True)
    (root / "neg").mkdir()
    (root / "pos" / "1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "neg" / "1.txt").write_text("plain text", encoding="utf-8")
    data = read_texts(root)
    assert data.labels == ("neg", "pos")
    assert data.items[1] == "caf\ufffd au lait"
    assert any("not valid UTF-8" in n and "1.txt" in n for n in data.notes)


def test_a_file_of_nothing_usable_is_an_error_that_says_why(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n,a\n  ,b\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="holds no usable text: .*left out 2 empty text"):
        read_texts(path)


def test_lists_from_python_need_one_label_each():
    with pytest.raises(BadInputError, match="3 texts but 2 labels"):
        read_texts(["a", "b", "c"], ["x", "y"])


def test_require_labels_explains_how_to_give_them(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("one\ntwo\n")
    assert read_texts(path).items == ("one", "two")
    with pytest.raises(BadInputError, match="has no labels"):
        read_texts(path, require_labels=True)


def test_text_or_images_is_decided_from_the_input(tmp_path, example_train, text_csv):
    images_csv = tmp_path / "images.csv"
    images_csv.write_text("path,label\na.png,x\n")
    txt_folder = tmp_path / "t" / "cls"
    txt_folder.mkdir(parents=True)
    (txt_folder / "a.txt").write_text("hello")
    assert is_text_source(text_csv) and is_text_source(tmp_path / "t")
    assert not is_text_source(images_csv) and not is_text_source(example_train)
