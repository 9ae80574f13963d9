"""``transferkit cache``: what the cache folder holds, part by part, and clearing a part removes that part alone,
never anything else a user keeps in the folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from transferkit.cli import app

runner = CliRunner()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A cache folder written where transferkit's own writers put each part, beside a file of the user's."""
    from transferkit.features import FeatureCache
    from transferkit.loading import export_folder
    from transferkit.onnx_features import graph_folder

    root = tmp_path / "cache"
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(root))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    a, b = FeatureCache("a" * 20, root), FeatureCache("b" * 20, root)
    for path, size in ((a._file("1e01"), 100), (a._file("5801"), 100), (b._file("0601"), 50),
                       (graph_folder(root) / "cccc-opset18.onnx", 1000), (export_folder(model) / "model.onnx", 2000),
                       (export_folder(model) / "transferkit-export.json", 10)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    (root / "notes.txt").write_text("the user's own file")
    return root


def test_the_cache_command_counts_each_part(cache):
    result = runner.invoke(app, ["cache", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["parts"] == {"features": {"entries": 2, "files": 3, "bytes": 250},
                             "graphs": {"entries": 1, "files": 1, "bytes": 1000},
                             "exports": {"entries": 1, "files": 2, "bytes": 2010}}
    assert info["bytes"] == 3260 and info["folder"] == str(cache)
    shown = runner.invoke(app, ["cache"])
    assert shown.exit_code == 0 and "--clear" in shown.output and "exports" in shown.output


def test_clearing_a_part_removes_it_alone(cache):
    result = runner.invoke(app, ["cache", "--clear", "exports", "--clear", "graphs", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bytes"] == 3010
    assert not (cache / "exports").exists() and not (cache / "onnx-features").exists()
    assert len(list((cache / "features").rglob("*.npy"))) == 3
    assert (cache / "notes.txt").read_text() == "the user's own file"
    everything = runner.invoke(app, ["cache", "--clear", "all"])
    assert everything.exit_code == 0 and "Freed" in everything.output
    assert sorted(p.name for p in cache.iterdir()) == ["notes.txt"]
    again = runner.invoke(app, ["cache", "--clear", "all", "--json"])  # nothing left to clear: not an error
    assert again.exit_code == 0 and json.loads(again.stdout)["bytes"] == 0


def test_an_unknown_part_is_refused_with_the_parts_there_are(cache):
    result = runner.invoke(app, ["cache", "--clear", "models"])
    assert result.exit_code == 2 and "features, graphs, exports or all" in result.output
    assert (cache / "exports").is_dir()


def test_a_part_that_is_a_link_elsewhere_is_not_followed(cache, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (cache / "exports").rename(tmp_path / "old-exports")
    (cache / "exports").symlink_to(elsewhere)
    result = runner.invoke(app, ["cache", "--clear", "exports"])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert (elsewhere / "keep.txt").read_text() == "keep"


def test_only_the_most_recently_used_exports_are_kept_and_half_written_ones_go_after_a_day(tmp_path):
    import os
    import time

    from transferkit.cache import STALE_SECONDS, prune_exports

    folder = tmp_path / "exports"
    now = time.time()
    for i in range(5):  # export 4 used last, export 0 longest ago
        (folder / f"export{i}").mkdir(parents=True)
        (folder / f"export{i}" / "model.onnx").write_bytes(b"x")
        os.utime(folder / f"export{i}", (now - 100 + i, now - 100 + i))
    for name, age in ((".killed.123", STALE_SECONDS + 60), (".writing.456", 60)):
        (folder / name).mkdir()
        os.utime(folder / name, (now - age, now - age))
    (folder / "a-file").write_text("not an export folder")

    removed = prune_exports(keep=3, cache_dir=tmp_path)
    assert sorted(p.name for p in removed) == [".killed.123", "export0", "export1"]
    assert sorted(p.name for p in folder.iterdir()) == [".writing.456", "a-file", "export2", "export3", "export4"]


@pytest.mark.slow  # exports a text model
def test_a_predict_on_a_cached_export_renews_it_and_a_loaded_text_export_outlives_its_folder(text_csv, tiny_encoder,
                                                                                         tmp_path, monkeypatch):
    import os
    import shutil

    from transferkit import runtime
    from transferkit.loading import export_folder, load_predictor

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    model = tmp_path / "model"
    assert runner.invoke(app, ["fit", str(text_csv), "--out", str(model), "--model", tiny_encoder, "--strategy",
                               "features"]).exit_code == 0
    export = export_folder(model)
    os.utime(export, (1, 1))  # used long ago
    loaded = load_predictor(model, runtime="onnx")
    assert export.stat().st_mtime > 1  # renewed: kept before exports used longer ago
    shutil.rmtree(export)  # pruned by another process's fit while this one runs it
    assert len(loaded.predict_proba(["the match went to extra time", "a new phone"])) == 2
