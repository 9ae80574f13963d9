"""Sharing: every saved model folder carries a model card; `transferkit push` uploads it to the Hugging Face Hub and
`hf://OWNER/NAME` loads it back, both through huggingface_hub's real HTTP code against a local fake hub on
127.0.0.1; offline, both fail fast with a message."""

from __future__ import annotations

import time

import huggingface_hub.constants
import numpy as np
import pytest
from fakehub import FakeHub
from typer.testing import CliRunner

from transferkit import Features, TextClassifier, load_model
from transferkit.cli import app
from transferkit.errors import BadInputError, WeightsUnavailableError
from transferkit.share import hub_name, push

runner = CliRunner()


@pytest.fixture(scope="module")
def image_model(tiny_image_model):
    return tiny_image_model


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_tests")
        yield fake


def test_a_saved_model_has_a_card_with_its_data_strategy_metrics_and_limits(image_model):
    card = (image_model / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transferkit\npipeline_tag: image-classification")
    assert "| birds | 6 |" in card and "18 labeled images" in card
    assert "Strategy: `features`" in card and "Why: features: frozen" in card
    assert "Cross-validated accuracy: **" in card and "n=18, 5 folds, 95% interval" in card
    assert "## Limitations" in card and "answers one of its 3 classes unless asked to reject" in card
    assert "AUROC" in card and "`predict --reject auto`" in card


def test_a_text_models_card_names_its_encoder(text_csv, tiny_encoder, tmp_path):
    TextClassifier(tiny_encoder, Features(), verbose=False).fit(text_csv).save(tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "sentence-encoder (frozen)" in card


def test_pushed_model_loads_back_by_hub_name_and_predicts_the_same(hub, image_model, small_train):
    result = runner.invoke(app, ["push", str(image_model), "--repo", "alice/birds"])
    assert result.exit_code == 0, result.output
    assert "hf://alice/birds" in result.output
    assert {"README.md", "transferkit.json", "report.json", "featurizer/config.json", "head/model.safetensors"} \
        <= set(hub.repos["alice/birds"])
    images = sorted(small_train.rglob("*.png"))
    here = load_model(image_model, verbose=False).predict_proba(images)
    there = load_model("hf://alice/birds", verbose=False).predict_proba(images)
    np.testing.assert_allclose(there, here, atol=1e-6)
    cli = runner.invoke(app, ["predict", "hf://alice/birds", str(images[0]), "--json"])
    assert cli.exit_code == 0, cli.output


def test_a_second_load_comes_from_the_cache_without_the_network(hub, image_model):
    push(image_model, "alice/cached")
    load_model("hf://alice/cached", verbose=False)
    before = len(hub.requests)
    load_model("hf://alice/cached", verbose=False)
    assert len(hub.requests) == before


def test_push_without_a_token_says_how_to_log_in(hub, image_model, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    result = runner.invoke(app, ["push", str(image_model), "--repo", "alice/birds"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--token" in result.output


def test_a_missing_hub_model_is_a_clear_error(hub):
    result = runner.invoke(app, ["predict", "hf://alice/nothing-here", "x.png"])
    assert result.exit_code == 2 and "hf://alice/nothing-here" in result.output and "Traceback" not in result.output


def test_offline_push_and_load_fail_within_seconds(image_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="cannot be reached"):
        push(image_model, "alice/birds")
    with pytest.raises(WeightsUnavailableError, match="cannot be reached"):
        load_model("hf://alice/never-downloaded")
    assert time.monotonic() - start < 10


def test_names_that_are_not_hub_names_are_refused_before_any_request(image_model, tmp_path):
    assert hub_name("hf://alice/birds") == "alice/birds" and hub_name("models/birds") is None
    with pytest.raises(BadInputError, match="OWNER/NAME"):
        push(image_model, "no-owner")
    with pytest.raises(BadInputError, match="hf://OWNER/NAME"):
        hub_name("hf://../../etc")
    result = runner.invoke(app, ["push", str(tmp_path), "--repo", "alice/birds"])
    assert result.exit_code == 2 and "not a transferkit model" in result.output
