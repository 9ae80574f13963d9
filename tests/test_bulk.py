"""Bulk prediction: streamed to CSV / JSON lines / Parquet, resumable after a kill without a row duplicated or lost,
unreadable inputs reported in the output, top-k and every class's probability as columns."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from transferkit.bulk import predict_to_file
from transferkit.cli import app
from transferkit.predictor import Predictor

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tiny_image_model):
    return tiny_image_model


@pytest.fixture
def inputs(small_train, tmp_path):
    files = sorted(small_train.rglob("*.png"))
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    return [*files[:7], bad, *files[7:]]


def _rows(path):
    if path.suffix == ".csv":
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_killed_run_continues_where_it_stopped_without_duplicates_or_losses(model, inputs, tmp_path, suffix):
    predictor = Predictor.load(model)
    reference = tmp_path / f"whole{suffix}"
    predict_to_file(predictor, inputs, reference, top=2, chunk=4, progress=False)
    out = tmp_path / f"resumed{suffix}"

    class Killed(Exception):
        pass

    def kill_after_two_chunks(written):
        if written >= 8:
            with open(out, "a") as fh:
                fh.write('{"half a ro')  # the row in flight when the process died
            raise Killed

    with pytest.raises(Killed):
        predict_to_file(predictor, inputs, out, top=2, chunk=4, progress=False, on_chunk=kill_after_two_chunks)
    counts = predict_to_file(predictor, inputs, out, top=2, chunk=4, progress=False)
    assert counts["already_there"] == 8 and counts["written"] == len(inputs) - 8
    key = "file"
    resumed, whole = _rows(out), _rows(reference)
    assert sorted(r[key] for r in resumed) == sorted(str(i) for i in inputs)  # each input once
    by_input = {r[key]: r for r in whole}
    for row in resumed:
        assert row.get("label") == by_input[row[key]].get("label")
        assert float(row.get("probability") or 0) == pytest.approx(float(by_input[row[key]].get("probability") or 0))


def test_rows_hold_top_k_every_class_and_the_errors(model, inputs, tmp_path):
    out = tmp_path / "p.csv"
    counts = predict_to_file(Predictor.load(model), inputs, out, top=2, progress=False)
    rows = _rows(out)
    assert counts == {"written": len(inputs), "already_there": 0, "unreadable": 1, "estimate": None,
                      "unfamiliar": None}  # < 20 items: neither is read
    classes = ["beverages", "birds", "fruit"]
    assert list(rows[0]) == ["file", "label", "probability", "top2_label", "top2_probability",
                             *[f"p_{c}" for c in classes], "error"]
    good = [r for r in rows if not r["error"]]
    assert all(abs(sum(float(r[f"p_{c}"]) for c in classes) - 1) < 1e-6 for r in good)
    assert [r["error"] for r in rows if r["error"]] == ["not an image file PIL can read"]
    proba = Predictor.load(model).predict_items([inputs[0]])[0][0]
    assert good[0]["label"] == classes[int(np.argmax(proba))]


def test_the_cli_writes_parquet_and_says_what_it_did(model, small_train, tmp_path):
    import pyarrow.parquet as pq  # pyarrow comes with ray[data], in the [test] extra

    out = tmp_path / "p.parquet"
    result = runner.invoke(app, ["predict", str(model), str(small_train), "--out", str(out), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "Wrote 18 prediction(s)" in result.output
    table = pq.read_table(out)
    assert table.num_rows == 18 and "top3_label" in table.column_names and not (tmp_path / "p.parquet.partial.jsonl").exists()


def test_an_output_of_another_model_is_not_appended_to(model, inputs, tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("id,score\n1,0.5\n")
    with pytest.raises(Exception, match="other columns"):
        predict_to_file(Predictor.load(model), inputs, out, progress=False)
    assert out.read_text() == "id,score\n1,0.5\n"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_second_run_with_other_options_is_refused_not_silently_skipped(model, small_train, tmp_path, suffix):
    """A second run into the same file with --top 3 once wrote nothing, exited 0 and kept the first run's rows."""
    out = tmp_path / f"p{suffix}"
    assert runner.invoke(app, ["predict", str(model), str(small_train), "--out", str(out)]).exit_code == 0
    before = out.read_text()
    again = runner.invoke(app, ["predict", str(model), str(small_train), "--out", str(out), "--top", "3"])
    text = " ".join(again.output.split())
    assert again.exit_code == 2 and "Write to a new file" in text, text
    assert out.read_text() == before


@pytest.mark.slow  # exports the model
def test_auto_exports_only_for_a_job_large_enough_to_repay_it(model, small_train, tmp_path, monkeypatch):
    from transferkit import runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))  # no export of this model cached yet
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")  # as measured on a CPU here

    def runtime_of(out):
        result = runner.invoke(app, ["predict", str(model), str(small_train), "--out", str(tmp_path / out), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])["runtime"]

    assert runtime_of("small.csv") == "torch"  # 18 images: an export would cost more than it saves
    assert runner.invoke(app, ["predict", str(model), str(next(small_train.rglob("*.png"))), "--runtime",
                               "onnx"]).exit_code == 0  # exports once, into the cache
    assert runtime_of("again.csv") == "onnx"  # the export is there now: the faster runtime costs nothing more


@pytest.mark.slow  # exports the model
def test_with_the_export_cached_predict_and_evaluate_run_on_onnx_and_build_no_pytorch_model(model, small_train, tmp_path,
                                                                                           monkeypatch):
    from transferkit import predictor, runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    image = str(next(small_train.rglob("*.png")))
    on_torch = runner.invoke(app, ["predict", str(model), image, "--json"])  # no export yet: PyTorch, nothing exported
    assert on_torch.exit_code == 0, on_torch.output
    assert not (tmp_path / "cache" / "exports").exists()
    assert runner.invoke(app, ["predict", str(model), image, "--runtime", "onnx"]).exit_code == 0  # exports, cached

    def unused(*args, **kwargs):
        raise AssertionError("the PyTorch model was built for a predict ONNX Runtime runs")

    monkeypatch.setattr(predictor.Predictor, "load", classmethod(unused))
    on_onnx = runner.invoke(app, ["predict", str(model), image, "--json"])
    assert on_onnx.exit_code == 0, on_onnx.output
    evaluated = runner.invoke(app, ["evaluate", str(model), str(small_train), "--json"])  # measures what predict runs
    assert evaluated.exit_code == 0, evaluated.output
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (on_torch, on_onnx))
    assert first["label"] == second["label"] and abs(first["probability"] - second["probability"]) < 0.05


@pytest.mark.slow  # exports the model
def test_an_export_another_process_cached_first_is_kept_and_this_one_dropped(model, tmp_path, monkeypatch):
    import shutil

    from transferkit import export, loading
    from transferkit.onnx_runtime import MANIFEST

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    target = loading.export_folder(model)
    real = export.export_onnx

    def racing(predictor, out, **kwargs):  # the other process finishes while this one exports
        done = real(predictor, out, **kwargs)
        shutil.copytree(out, target)
        (target / "theirs").write_text("the other process's export")
        return done

    monkeypatch.setattr(export, "export_onnx", racing)
    assert loading.cached_export(model) == target
    assert (target / "theirs").is_file() and (target / MANIFEST).is_file()
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # this process's copy is gone


@pytest.mark.slow  # exports the model, twice
def test_a_damaged_cached_export_is_exported_again_not_fatal(model, small_train, tmp_path, monkeypatch):
    from transferkit.loading import export_folder

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    image = str(next(small_train.rglob("*.png")))
    assert runner.invoke(app, ["predict", str(model), image, "--runtime", "onnx"]).exit_code == 0  # exports, cached
    graph = export_folder(model) / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])  # cut short, as by a full disk or a killed copy
    result = runner.invoke(app, ["predict", str(model), image, "--json"])
    assert result.exit_code == 0, result.output
    assert "was damaged" in result.stderr and json.loads(result.stdout.strip().splitlines()[-1])["label"]
    assert len(graph.read_bytes()) > 1000  # exported again


def _predict_in_a_new_process(args: list[str], cache: Path) -> tuple[dict, bool]:
    """The last answer of ``transferkit ARGS`` in a new Python process on a CPU, and whether it imported PyTorch."""
    import subprocess

    script = ("import sys; from transferkit import runtime; from transferkit.cli import app; "
              "from typer.testing import CliRunner; "
              "runtime.default_device_type = lambda: 'cpu'; "  # a CPU, as a Linux machine without GPU files reads
              f"r = CliRunner().invoke(app, {args!r}); "
              "assert r.exit_code == 0, r.output; print(r.stdout.strip()); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "TRANSFERKIT_CACHE": str(cache)})
    answer, imported = done.stdout.strip().splitlines()[-2:]
    return json.loads(answer), imported == "True"


@pytest.mark.slow  # exports the model
def test_a_predict_on_a_cached_export_never_imports_pytorch(model, small_train, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    image = str(next(small_train.rglob("*.png")))
    assert runner.invoke(app, ["predict", str(model), image, "--runtime", "onnx"]).exit_code == 0  # exports, cached
    answer, imported = _predict_in_a_new_process(["predict", str(model), image, "--json"], tmp_path / "cache")
    assert answer["label"] and not imported


@pytest.mark.slow  # exports the model
def test_with_the_export_cached_a_bulk_job_loads_no_pytorch_model_and_rejects_on_onnx(model, small_train, tmp_path,
                                                                                      monkeypatch):
    import csv

    from transferkit import predictor, runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    assert runner.invoke(app, ["predict", str(model), str(next(small_train.rglob("*.png"))), "--runtime",
                               "onnx"]).exit_code == 0  # exports once, into the cache

    def unused(*args, **kwargs):
        raise AssertionError("the PyTorch model was built for a job ONNX Runtime runs")

    monkeypatch.setattr(predictor.Predictor, "load", classmethod(unused))
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(model), str(small_train), "--out", str(out), "--json",
                                 "--reject", "auto"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["runtime"] == "onnx"
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(list(small_train.rglob("*.png"))) and {"known", "known_score"} <= set(rows[0])


def _fit_json(args: list[str]) -> dict:
    result = runner.invoke(app, ["fit", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fit_leaves_the_export_predict_runs_in_the_cache_and_no_export_leaves_none(small_train, tiny_backbone, tmp_path,
                                                                                 monkeypatch):
    from transferkit import predictor, runtime
    from transferkit.loading import export_folder
    from transferkit.onnx_runtime import is_export

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")  # a CPU, as measured
    common = [str(small_train), "--model", tiny_backbone, "--strategy", "features"]
    fitted = _fit_json([*common, "--out", str(tmp_path / "model")])
    assert fitted["onnx_export"] == str(export_folder(tmp_path / "model")) and is_export(Path(fitted["onnx_export"]))
    skipped = _fit_json([*common, "--out", str(tmp_path / "other"), "--seed", "1", "--no-export"])
    assert skipped["onnx_export"] is None and not is_export(export_folder(tmp_path / "other"))

    def unused(*args, **kwargs):
        raise AssertionError("the PyTorch model was built where fit left an export")

    monkeypatch.setattr(predictor.Predictor, "load", classmethod(unused))
    answer = runner.invoke(app, ["predict", str(tmp_path / "model"), str(next(small_train.rglob("*.png"))), "--json"])
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout.strip().splitlines()[-1])["label"] in ("beverages", "birds", "fruit")


def test_a_model_refitted_in_place_gets_its_own_export_not_the_one_before(small_train, tiny_backbone, tmp_path,
                                                                          monkeypatch):
    from transferkit import runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    common = [str(small_train), "--out", str(tmp_path / "model"), "--model", tiny_backbone, "--strategy", "features"]
    first = _fit_json(common)["onnx_export"]
    second = _fit_json([*common, "--seed", "1", "--overwrite"])["onnx_export"]  # the same process, the same folder
    assert first != second and json.loads((Path(second) / "transferkit-export.json").read_text())["classes"]


def test_a_cached_export_never_answers_for_a_model_folder_damaged_since(small_train, tiny_backbone, tmp_path,
                                                                       monkeypatch):
    from transferkit import runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    model = tmp_path / "model"
    assert _fit_json([str(small_train), "--out", str(model), "--model", tiny_backbone, "--strategy",
                      "features"])["onnx_export"]
    weights = model / "head" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])  # cut short after the export was cached
    for command in (["predict", str(model), str(next(small_train.rglob("*.png")))],
                    ["evaluate", str(model), str(small_train)], ["export", str(model), "--out", str(tmp_path / "onnx")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "head/model.safetensors is not the file that was saved" in result.output


def test_an_export_that_fails_at_fit_leaves_the_model_saved_and_says_so(small_train, tiny_backbone, tmp_path,
                                                                       monkeypatch):
    from transferkit import loading, runtime
    from transferkit.errors import BadInputError

    def fails(folder, verbose=False):
        raise BadInputError("The ONNX graph does not reproduce the model")

    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    monkeypatch.setattr(loading, "cached_export", fails)
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "model"), "--model", tiny_backbone,
                                 "--strategy", "features"])
    assert result.exit_code == 0, result.output
    assert "its ONNX export failed (The ONNX graph does not reproduce the model)" in result.stderr
    assert (tmp_path / "model" / "transferkit.json").is_file()


def test_ctrl_c_during_the_fits_export_skips_it_and_the_fit_ends_as_usual(small_train, tiny_backbone, tmp_path,
                                                                         monkeypatch):
    from transferkit import loading, runtime

    def interrupted(folder, verbose=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    monkeypatch.setattr(loading, "cached_export", interrupted)
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "model"), "--model", tiny_backbone,
                                 "--strategy", "features", "--json"])
    assert result.exit_code == 0, result.output
    assert "Export skipped; the model in" in result.stderr and json.loads(result.stdout.splitlines()[-1])["classes"]


def test_a_cache_that_cannot_be_written_leaves_the_fit_saved_without_an_export(small_train, tiny_backbone, tmp_path,
                                                                              monkeypatch):
    from transferkit import runtime

    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "model"), "--model", tiny_backbone,
                                 "--strategy", "features", "--json"])
    assert result.exit_code == 0, result.output
    assert "its ONNX export failed" in result.stderr and json.loads(result.stdout.splitlines()[-1])["onnx_export"] is None
    assert (tmp_path / "model" / "transferkit.json").is_file()


def test_fit_exports_no_text_model_that_averages_windows_and_export_refuses_it_at_once(text_csv, tiny_encoder,
                                                                                      tmp_path, monkeypatch):
    from transferkit import loading, runtime

    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    model = str(tmp_path / "model")
    fitted = runner.invoke(app, ["fit", str(text_csv), "--out", model, "--model", tiny_encoder, "--strategy", "features",
                                 "--long-text", "chunk", "--json"])
    assert fitted.exit_code == 0 and "export" not in fitted.stderr, fitted.output
    assert json.loads(fitted.stdout.splitlines()[-1])["onnx_export"] is None
    refused = runner.invoke(app, ["export", model, "--out", str(tmp_path / "onnx")])
    assert refused.exit_code == 2 and "long_text=chunk" in refused.output and "--runtime torch" in refused.output

    def unused(folder, verbose=False):
        raise AssertionError("an export was tried for a model no export can run")

    monkeypatch.setattr(loading, "cached_export", unused)
    assert loading.auto_runtime(Path(model)) == "torch"  # what serve runs, left to auto: no export tried


def test_fit_exports_no_model_of_numbers_predict_would_run_on_pytorch(tmp_path, tiny_backbone, monkeypatch):
    from PIL import Image

    from transferkit import runtime

    monkeypatch.setattr(runtime, "faster_runtime", lambda modality, kinds, few=False: "onnx")
    rows = ["path,label"]
    for i in range(12):
        Image.new("RGB", (32, 32), (20 * i, 100, 200 - 10 * i)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{i * 0.5}")
    (tmp_path / "counts.csv").write_text("\n".join(rows) + "\n")
    fitted = _fit_json([str(tmp_path / "counts.csv"), "--out", str(tmp_path / "model"), "--model", tiny_backbone])
    assert fitted["target"]["kind"] == "number" and fitted["onnx_export"] is None


@pytest.mark.slow  # a second process, and a text encoder's export
def test_a_text_predict_after_fit_runs_its_cached_export_and_never_imports_pytorch(text_csv, tiny_encoder, tmp_path,
                                                                                  monkeypatch):
    from transferkit import runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "default_device_type", lambda: "cpu")
    model = str(tmp_path / "model")
    assert _fit_json([str(text_csv), "--out", model, "--model", tiny_encoder, "--strategy", "features"])["onnx_export"]
    answer, imported = _predict_in_a_new_process(["predict", model, "--text", "the match went to extra time", "--json"],
                                                 tmp_path / "cache")
    assert answer["label"] and not imported
