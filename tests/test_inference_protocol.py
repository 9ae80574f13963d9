"""The Open Inference Protocol (KServe v2) on `transferkit serve`, driven by a client nobody here wrote (tritonclient's
HTTP client) against a server the test starts on 127.0.0.1 and stops: the same labels as `predict --json`, images as
binary tensors, texts as JSON strings, and clear 4xx answers for requests the protocol does not allow."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from test_serve import _start
from typer.testing import CliRunner

from transferkit.cli import app

tritonclient = pytest.importorskip("tritonclient.http")
runner = CliRunner()


@pytest.fixture(scope="module")
def image_v2(tiny_image_model):
    proc, url = _start(tiny_image_model, "--runtime", "torch")
    yield tiny_image_model, url, tritonclient.InferenceServerClient(url.removeprefix("http://"))
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def text_v2(text_features_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("v2") / "topics"
    text_features_model.save(folder)
    proc, url = _start(folder)
    yield folder, url, tritonclient.InferenceServerClient(url.removeprefix("http://"))
    proc.terminate()
    proc.wait(timeout=30)


def _predicted(model, *inputs) -> list[str]:
    result = runner.invoke(app, ["predict", str(model), *inputs, "--json", "--runtime", "torch"])
    assert result.exit_code == 0, result.output
    return [json.loads(line)["label"] for line in result.stdout.strip().splitlines()]


def test_tritonclient_gets_the_labels_predict_gives_for_images_sent_as_binary_tensors(image_v2, small_train):
    folder, _, client = image_v2
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(folder.name)
    metadata = client.get_model_metadata(folder.name)
    assert metadata["inputs"][0]["name"] == "INPUT" and [o["name"] for o in metadata["outputs"]] == [
        "PROBABILITIES", "LABEL"]
    files = sorted(small_train.rglob("*.png"))[::3]
    tensor = tritonclient.InferInput("INPUT", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array([f.read_bytes() for f in files], dtype=object), binary_data=True)
    result = client.infer(folder.name, [tensor])
    assert result.as_numpy("LABEL").astype(str).tolist() == _predicted(folder, *map(str, files))
    probabilities = result.as_numpy("PROBABILITIES")
    assert probabilities.shape == (len(files), 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)


@pytest.mark.slow  # a server process on a text model; the image test stays in the fast lane
def test_tritonclient_gets_the_labels_predict_gives_for_texts_sent_as_json(text_v2):
    folder, _, client = text_v2
    texts = ["The striker scored twice in the final.", "Preheat the oven and whisk the eggs."]
    tensor = tritonclient.InferInput("INPUT", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=False)
    result = client.infer(folder.name, [tensor])
    assert result.as_numpy("LABEL").astype(str).tolist() == _predicted(folder, "--text", *texts)


@pytest.mark.parametrize("path, body, status, says", [
    ("/v2/models/other/infer", {"inputs": []}, 404, "no model named 'other'"),
    (None, {"inputs": [{"name": "INPUT", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}, 400, "binary tensor"),
    (None, {"inputs": [{"name": "IMAGE", "datatype": "FP32", "shape": [1], "data": [1.0]}]}, 400, "named 'INPUT'"),
    (None, {"inputs": []}, 400, "exactly one input tensor"),
])
def test_requests_the_protocol_does_not_allow_get_a_4xx_that_says_why(image_v2, path, body, status, says):
    folder, url, _ = image_v2
    response = httpx.post(url + (path or f"/v2/models/{folder.name}/infer"), json=body, timeout=30)
    assert response.status_code == status and says in response.json()["error"]


def test_an_unreadable_image_fails_the_request_and_names_the_input(image_v2):
    folder, url, _ = image_v2
    blob = b"not an image"
    header = json.dumps({"inputs": [{"name": "INPUT", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": 4 + len(blob)}}]}).encode()
    response = httpx.post(f"{url}/v2/models/{folder.name}/infer", content=header + len(blob).to_bytes(4, "little") + blob,
                          headers={"Inference-Header-Content-Length": str(len(header))}, timeout=30)
    assert response.status_code == 400 and response.json()["error"].startswith("input 0")
