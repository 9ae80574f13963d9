"""Nothing lost: a full disk or a read-only destination fails cleanly with nothing half-written, Ctrl-C says how to
continue and keeps the checkpoints, and two fits with the same seed give byte-identical models."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferkit import Features, FineTune, ImageClassifier
from transferkit.cli import app
from transferkit.errors import BadInputError, BundleError
from transferkit.finetune import NetworkTuner

runner = CliRunner()


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _disk_full_as_safetensors_says(*args, **kwargs):
    from safetensors import SafetensorError

    raise SafetensorError('Error while serializing: I/O error: No space left on device (os error 28)')


@pytest.mark.parametrize("full", [_disk_full, _disk_full_as_safetensors_says])
def test_a_full_disk_while_saving_keeps_the_old_model_and_says_so(fitted_features, tmp_path, monkeypatch, full):
    """safetensors reports a full disk as its own SafetensorError, which once reached the user as a traceback."""
    fitted_features.save(tmp_path / "model")
    before = {p: p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file()}
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(BundleError, match="No space left on device.*unchanged"):
        fitted_features.save(tmp_path / "model")
    assert {p: p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_full_disk_for_the_feature_cache_does_not_stop_the_fit(small_train, tiny_backbone, tmp_path, monkeypatch,
                                                                 capsys):
    import numpy as np

    monkeypatch.setattr(np, "save", _disk_full)
    clf = ImageClassifier(tiny_backbone, Features(), cache_dir=str(tmp_path / "cache"), verbose=False).fit(small_train)
    assert len(clf.classes_) == 3
    assert "cannot be written" in capsys.readouterr().err


def test_a_full_disk_for_a_report_writes_nothing(tmp_path, monkeypatch):
    from transferkit.report import write_report

    monkeypatch.setattr(os, "replace", _disk_full)
    with pytest.raises(BadInputError, match="No space left on device.*Nothing was written"):
        write_report(tmp_path / "r.html", "<html></html>")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_destination_is_refused_before_the_fit(small_train, tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == tmp_path else real(path, mode))
    result = runner.invoke(app, ["fit", str(small_train), "--out", str(tmp_path / "model")])
    assert result.exit_code == 2 and "is not writable" in result.output and "Features of" not in result.output


def test_a_class_name_that_is_not_utf8_still_gets_its_report(tmp_path, tiny_backbone, small_train):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_train / "birds", data / "birds")
    odd = os.fsdecode(b"caf\xe9")  # a Latin-1 folder name: not valid UTF-8
    shutil.copytree(small_train / "fruit", data / odd)
    assert runner.invoke(app, ["fit", str(data), "--out", str(tmp_path / "m"), "--model", tiny_backbone,
                               "--strategy", "features"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "m"), str(data), "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "caf" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_two_fits_with_the_same_seed_give_byte_identical_models(small_train, tiny_backbone, tmp_path):
    for run in ("a", "b"):
        ImageClassifier(tiny_backbone, FineTune(tuner=NetworkTuner(epochs=1)), seed=7,
                        verbose=False).fit(small_train).save(tmp_path / run)

    def digests(folder: Path) -> dict:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in folder.rglob("*.safetensors")}

    assert digests(tmp_path / "a") == digests(tmp_path / "b") and len(digests(tmp_path / "a")) == 3


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the drop the test stages
def test_a_ctrl_c_that_python_drops_in_a_finaliser_still_stops_training():
    """Python drops a KeyboardInterrupt raised inside ``__del__`` ("Exception ignored in ..."); once a fit ran on to
    its end that way after Ctrl-C. The trainer's callback remembers the key and raises it at the next batch."""
    import lightning as L

    from transferkit.finetune.engine import _ctrl_c

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, inside __del__, where its KeyboardInterrupt is dropped

    ctrl_c = _ctrl_c(L)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even under a CI runner
    try:
        with ctrl_c.watching():
            try:
                Finaliser()
            except KeyboardInterrupt:  # pragma: no cover - delivered after __del__ returned: nothing was dropped
                pass
            assert ctrl_c.pressed
            with pytest.raises(KeyboardInterrupt):
                ctrl_c.on_train_batch_start(None, None, None, 0)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after training
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.slow  # fine-tunes a network
def test_ctrl_c_during_fine_tuning_says_how_to_resume_and_keeps_the_checkpoints(small_train, tiny_backbone, tmp_path):
    out = tmp_path / "model"
    workdir = tmp_path / ".model.training"
    proc = subprocess.Popen([sys.executable, "-m", "transferkit.cli", "fit", str(small_train), "--out", str(out),
                             "--model", tiny_backbone, "--strategy", "finetune", "--epochs", "200", "--patience", "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            # as a terminal starts it: a runner started in the background ignores SIGINT, and a child
                            # inherits that (the fit then ran to its end in such a CI run)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (workdir / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    # still running: early stopping is off, so the fit cannot end by itself before the signal
    assert proc.poll() is None, "the fit ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert (workdir / "checkpoints" / "last.ckpt").exists() and not out.exists()


def test_ray_under_an_address_space_limit_says_how_to_lift_it(tiny_image_model, small_train, monkeypatch, tmp_path):
    """Under `ulimit -v`, Ray cannot map its object store and once aborted with a native stack dump."""
    import resource

    real = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit", lambda which: (4 << 30, resource.RLIM_INFINITY)
                        if which == resource.RLIMIT_AS else real(which))
    result = runner.invoke(app, ["predict", str(tiny_image_model), str(small_train), "--engine", "ray", "--out",
                                 str(tmp_path / "p.csv")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "limited to 4.0 GiB (ulimit -v)" in text and "ulimit -v unlimited" in text, text
    assert not (tmp_path / "p.csv").exists()
