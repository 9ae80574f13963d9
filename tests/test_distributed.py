"""Ray Data on a local 2-worker cluster started by the test: the same predictions as one process, nothing lost or
duplicated when a worker is killed mid-run, and features extracted by Ray workers land in the cache a fit reads."""

from __future__ import annotations

import csv
import os
import shutil
import signal

import pytest
import ray  # the [test] and [scale] extras

from transferkit import Features, ImageClassifier
from transferkit.bulk import predict_to_file
from transferkit.distributed import predict_with_ray, warm_cache_with_ray
from transferkit.predictor import Predictor

pytestmark = pytest.mark.slow  # a local Ray cluster takes a while to start on 2 cores


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model(small_train, tiny_backbone, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray") / "model"
    ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train).save(folder)
    return folder


def _rows(path):
    with path.open(newline="") as fh:
        return {r["file"]: r for r in csv.DictReader(fh)}


def test_ray_predicts_what_one_process_predicts(cluster, model, small_train, tmp_path, monkeypatch):
    monkeypatch.setattr("transferkit.evaluate.LABEL_FREE_MIN_ITEMS", 10)  # 18 files: read the accuracy from them
    files = sorted(small_train.rglob("*.png"))
    local = predict_to_file(Predictor.load(model), files, tmp_path / "one.csv", top=2, progress=False)
    counts = predict_with_ray(model, files, tmp_path / "ray.csv", workers=2, top=2, batch_size=4, progress=False)
    one, distributed = _rows(tmp_path / "one.csv"), _rows(tmp_path / "ray.csv")
    assert counts["written"] == len(files) and set(one) == set(distributed)
    assert counts["estimate"]["n"] == local["estimate"]["n"] == len(files)
    assert counts["estimate"]["accuracy"] == pytest.approx(local["estimate"]["accuracy"], abs=1e-6)
    for name, row in one.items():
        assert distributed[name]["label"] == row["label"]
        assert float(distributed[name]["probability"]) == pytest.approx(float(row["probability"]), abs=1e-6)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, model, small_train, tmp_path):
    files = []
    for i, src in enumerate(sorted(small_train.rglob("*.png")) * 4):  # 72 distinct files: a run of 36 batches
        (tmp_path / "in" / src.parent.name).mkdir(parents=True, exist_ok=True)
        files.append(tmp_path / "in" / src.parent.name / f"{i}-{src.name}")
        shutil.copy(src, files[-1])
    markers = tmp_path / "actors"
    markers.mkdir()
    killed = []

    def kill_one_worker(written: int) -> None:  # after the first rows came back, while most are still to come
        pids = [int(p.stem) for p in markers.glob("*.pid")]
        if not killed and pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append((pids[0], written))

    counts = predict_with_ray(model, files, tmp_path / "p.csv", workers=2, batch_size=2, progress=False,
                              marker=str(markers), on_rows=kill_one_worker)
    assert killed and killed[0][1] < len(files), "no worker was killed mid-run: the test did not test anything"
    with (tmp_path / "p.csv").open(newline="") as fh:
        names = [r["file"] for r in csv.DictReader(fh)]
    assert sorted(names) == sorted(map(str, files)) and counts["written"] == len(files)  # each once, none lost


def test_features_extracted_by_ray_are_the_ones_the_fit_reads(cluster, small_train, tiny_backbone, tmp_path):
    clf = ImageClassifier(tiny_backbone, Features(), cache_dir=str(tmp_path / "cache"), verbose=False)
    files = sorted(small_train.rglob("*.png"))
    assert warm_cache_with_ray(clf._featurizer(), files, workers=2, batch_size=4, cache_dir=str(tmp_path / "cache")) \
        == len(files)
    clf.fit(small_train)
    assert clf.metrics_["n_features_computed"] == 0 and clf.metrics_["n_features_cached"] == len(files)


def test_the_cli_predicts_and_fits_with_ray_workers(cluster, model, small_train, tiny_backbone, pool_folder, tmp_path,
                                                    monkeypatch):
    from typer.testing import CliRunner

    from transferkit.cli import app

    runner = CliRunner()
    local = runner.invoke(app, ["predict", str(model), str(small_train), "--out", str(tmp_path / "local.csv")])
    on_ray = runner.invoke(app, ["predict", str(model), str(small_train), "--out", str(tmp_path / "ray.csv"),
                                 "--engine", "ray", "--workers", "2"])
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    assert {k: r["label"] for k, r in _rows(tmp_path / "local.csv").items()} == \
        {k: r["label"] for k, r in _rows(tmp_path / "ray.csv").items()}
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "empty-cache"))  # the workers extract every image
    fitted = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "m"), "--model", tiny_backbone,
                                 "--strategy", "features", "--engine", "ray"])
    assert fitted.exit_code == 0, fitted.output
    assert "Ray: 2 worker(s) extracted 18 feature rows" in fitted.output
    with_pool = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "p"), "--model", tiny_backbone,
                                    "--strategy", "features", "--engine", "ray", "--unlabeled", str(pool_folder)])
    assert with_pool.exit_code == 0, with_pool.output  # the pool's 18 readable images are new; the rest cached or bad
    assert "Ray: 2 worker(s) extracted 18 feature rows" in with_pool.output and "unlabeled items" in with_pool.output
    no_out = runner.invoke(app, ["predict", str(model), str(small_train), "--engine", "ray"])
    assert no_out.exit_code != 0 and "--out" in no_out.output


def test_ray_workers_reject_as_one_process_rejects(cluster, model, small_train, example_test, tmp_path):
    files = sorted(small_train.rglob("*.png")) + sorted((example_test / "mammals").glob("*.png"))[:6]
    local = predict_to_file(Predictor.load(model), files, tmp_path / "one.csv", progress=False, reject=0.2,
                            unknown="other")
    counts = predict_with_ray(model, files, tmp_path / "ray.csv", workers=2, batch_size=4, progress=False,
                              reject=0.2, unknown="other")
    one, distributed = _rows(tmp_path / "one.csv"), _rows(tmp_path / "ray.csv")
    assert set(one) == set(distributed) and counts["rejected"] == local.get("rejected", 0)
    for name, row in one.items():
        assert (distributed[name]["label"], distributed[name]["known"]) == (row["label"], row["known"])
        assert float(distributed[name]["known_score"]) == pytest.approx(float(row["known_score"]), abs=1e-5)


def test_ray_predicts_several_labels_and_numbers_as_one_process_does(cluster, small_train, tiny_backbone, tmp_path):
    files = sorted(small_train.rglob("*.png"))
    for name, labels in (("labels", [[["a"], ["b"], ["a", "b"]][i % 3] for i in range(len(files))]),
                         ("number", [float(i % 5) + 0.5 for i in range(len(files))])):
        folder = tmp_path / name
        ImageClassifier(tiny_backbone, Features(), verbose=False).fit(files, labels).save(folder)
        predict_to_file(Predictor.load(folder), files, tmp_path / f"{name}-one.csv", progress=False)
        predict_with_ray(folder, files, tmp_path / f"{name}-ray.csv", workers=2, batch_size=4, progress=False)
        one, distributed = _rows(tmp_path / f"{name}-one.csv"), _rows(tmp_path / f"{name}-ray.csv")
        column = "labels" if name == "labels" else "value"
        assert set(one) == set(distributed) and column in next(iter(one.values()))
        for key, row in one.items():
            if name == "labels":
                assert distributed[key][column] == row[column]
            else:
                assert float(distributed[key][column]) == pytest.approx(float(row[column]), abs=1e-6)


def test_ray_workers_run_what_one_process_runs_here_the_models_cached_export(cluster, model, small_train, tmp_path):
    from transferkit.jobs import predict_to_out
    from transferkit.loading import cached_export, load_predictor, predict_runtime

    files = sorted(small_train.rglob("*.png"))
    cached_export(model)  # as fit leaves it
    loaded = load_predictor(model, runtime=predict_runtime(model, "auto"))  # what `predict` loads, auto
    assert loaded.runtime == "onnx"
    local, _ = predict_to_out(loaded, model, files, tmp_path / "one.csv", progress=False)
    _, ran_on = predict_to_out(loaded, model, files, tmp_path / "auto.csv", engine="ray", progress=False)
    assert ran_on == "onnx"
    markers = tmp_path / "actors"
    markers.mkdir()
    predict_with_ray(model, files, tmp_path / "ray.csv", workers=2, batch_size=4, runtime="onnx", progress=False,
                     marker=str(markers))
    ran = {p.read_text() for p in markers.glob("*.pid")}
    assert ran and all(r.startswith("onnx ") for r in ran), ran  # each worker ran the export, none PyTorch
    one, auto, distributed = _rows(tmp_path / "one.csv"), _rows(tmp_path / "auto.csv"), _rows(tmp_path / "ray.csv")
    assert set(one) == set(auto) == set(distributed) == set(map(str, files))
    for name, row in one.items():
        for other in (auto[name], distributed[name]):
            assert other["label"] == row["label"]
            assert float(other["probability"]) == pytest.approx(float(row["probability"]), abs=1e-6)
