"""Train on a source task, register the network in the local zoo, and reuse it by name on another task."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from transferkit.cli import app

runner = CliRunner()


@pytest.fixture()
def local_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_MODELS", str(tmp_path / "zoo"))
    return tmp_path / "zoo"


@pytest.mark.slow
def test_pretrain_registers_a_backbone_that_fit_and_models_reuse(local_zoo, small_train, example_test, tmp_path):
    result = runner.invoke(app, ["pretrain", str(small_train), "--name", "clip-net", "--scratch", "--epochs", "1",
                                 "--input-size", "64", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["classes"] == ["beverages", "birds", "fruit"]
    entry = local_zoo / "clip-net"
    config = json.loads((entry / "transferkit.json").read_text())
    assert config["preprocessing"]["input_size"] == 64 and config["trained_on"]["how"] == "from scratch"
    assert not any(k.startswith("classifier") for k in __import__("safetensors.torch").torch.load_file(
        str(entry / "model.safetensors")))  # the source task's classifier is not part of the backbone

    listing = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert {"name": "clip-net", "source": "local"}.items() <= next(m for m in listing if m["name"] == "clip-net").items()

    from transferkit import ImageClassifier
    from transferkit.zoo import create_backbone, resolve

    spec = resolve("clip-net")
    assert spec.source == "local" and spec.preprocessing.input_size == 64
    net = create_backbone(spec, num_classes=0)
    saved = __import__("safetensors.torch").torch.load_file(str(entry / "model.safetensors"))
    assert all(np.array_equal(net.state_dict()[k].numpy(), v.numpy()) for k, v in saved.items())

    files = [f for c in ("birds", "fruit", "beverages") for f in sorted((example_test / c).glob("*.png"))[:4]]
    labels = [f.parent.name for f in files]
    clf = ImageClassifier(backbone="clip-net", strategy="features", verbose=False).fit(files, labels)
    assert clf.preprocessing_.input_size == 64 and "clip-net" in clf.reason_


def test_pretrain_refuses_builtin_names_and_duplicates(local_zoo, small_train):
    from transferkit import BadInputError
    from transferkit.zoo import register_local_model, resolve

    spec = resolve("tf_efficientnet_lite0")
    with pytest.raises(BadInputError, match="built-in zoo model"):
        register_local_model("lite0", None, spec, spec.preprocessing, {})
    with pytest.raises(BadInputError, match="letters, digits"):
        register_local_model("../escape", None, spec, spec.preprocessing, {})
