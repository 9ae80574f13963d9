"""Data sources and splits: folders, CSVs, the mistakes users make, and the seeded stratified split."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from transferkit.data import check_trainable, read_images, stratified_split
from transferkit.errors import BadInputError


def _tree(root, counts):
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / cls / f"{i}.png")
    return root


def test_folder_layout_gives_paths_labels_and_sorted_classes(tmp_path):
    data = read_images(_tree(tmp_path / "d", {"dogs": 3, "cats": 2}))
    assert data.classes == ["cats", "dogs"]
    assert Counter(data.labels) == {"dogs": 3, "cats": 2}
    assert all(p.parent.name == label for p, label in zip(data.items, data.labels))


def test_csv_paths_are_relative_to_the_csv(tmp_path):
    _tree(tmp_path / "imgs", {"a": 2, "b": 2})
    (tmp_path / "labels.csv").write_text("path,label\nimgs/a/0.png,x\nimgs/b/1.png,y\n")
    data = read_images(tmp_path / "labels.csv")
    assert data.items[0] == tmp_path / "imgs/a/0.png" and data.labels == ("x", "y")


def test_csv_without_path_column_says_what_is_expected(tmp_path):
    (tmp_path / "bad.csv").write_text("name,label\nalice,x\n")
    with pytest.raises(BadInputError, match="cannot tell which column holds the image paths.*--path-column"):
        read_images(tmp_path / "bad.csv")


def test_a_path_column_is_found_by_its_name_or_by_holding_image_files(tmp_path):
    (tmp_path / "a.csv").write_text("filename,category\nx.png,cat\n")
    assert read_images(tmp_path / "a.csv").labels == ("cat",)
    (tmp_path / "b.csv").write_text("picture,kind\nx.png,cat\n")
    data = read_images(tmp_path / "b.csv", label_column="kind")
    assert data.items == (tmp_path / "x.png",) and "image paths from column 'picture'" in data.notes[-1]


def test_csv_empty_label_names_the_row(tmp_path):
    (tmp_path / "l.csv").write_text("path,label\na.png,x\nb.png,\n")
    with pytest.raises(BadInputError, match=r"row 3 have an empty label"):
        read_images(tmp_path / "l.csv")


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BadInputError, match="holds no images.*subfolder per class"):
        read_images(tmp_path)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        read_images(tmp_path / "nowhere")


def test_a_single_class_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="single class.*at least two"):
        check_trainable(read_images(_tree(tmp_path / "d", {"only": 3})), noun="image")


def test_a_class_with_one_image_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="'lonely' has a single image"):
        check_trainable(read_images(_tree(tmp_path / "d", {"lonely": 1, "many": 4})), noun="image")


def test_split_is_stratified_seeded_and_disjoint():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 2
    train, val = stratified_split(labels, 0.2, seed=3)
    assert set(train).isdisjoint(val) and sorted([*train, *val]) == list(range(len(labels)))
    val_counts = Counter(labels[i] for i in val)
    assert val_counts == {"a": 2, "b": 1, "c": 1}  # every class on both sides
    again = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(stratified_split(labels, 0.2, seed=4)[1], val)
