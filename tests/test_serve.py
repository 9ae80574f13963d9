"""The prediction server, started by the test on 127.0.0.1 and stopped by it: real requests predict what
`transferkit predict` predicts, several inputs per request and concurrent requests are batched, and bad requests get
a 4xx with a message, never a 500 with a traceback."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from transferkit import Features, ImageClassifier, TextClassifier
from transferkit.cli import app

runner = CliRunner()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model, *extra):
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "transferkit.cli", "serve", str(model), "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode()[-2000:])
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("the server did not start")


@pytest.fixture(scope="module")
def image_server(small_train, tiny_backbone, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve") / "model"
    ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train).save(folder)
    proc, url = _start(folder, "--runtime", "torch")  # compared with `predict` to the last digit
    yield folder, url
    proc.terminate()
    proc.wait(timeout=30)


def test_uploads_are_predicted_as_transferkit_predict_predicts(image_server, small_train):
    model, url = image_server
    files = sorted(small_train.rglob("*.png"))[::4]
    response = httpx.post(f"{url}/predict", params={"top": 2},
                          files=[("files", (f.name, f.read_bytes(), "image/png")) for f in files], timeout=60)
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    cli = runner.invoke(app, ["predict", str(model), *map(str, files), "--json", "--top", "2"])
    expected = [json.loads(line) for line in cli.stdout.strip().splitlines()]
    assert [p["input"] for p in served] == [f.name for f in files]
    assert [p["label"] for p in served] == [e["label"] for e in expected]
    for p, e in zip(served, expected):
        assert p["probability"] == pytest.approx(e["probability"], abs=1e-6) and len(p["top"]) == 2


def test_health_model_and_openapi(image_server):
    _, url = image_server
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    info = httpx.get(f"{url}/model").json()
    assert info["classes"] == ["beverages", "birds", "fruit"] and info["preparation"][0]["preprocessing"]["input_size"] == 64
    assert "/predict" in httpx.get(f"{url}/openapi.json").json()["paths"]
    assert httpx.get(f"{url}/monitor").json()["window"] == 1000


def test_the_monitor_reads_the_accuracy_of_the_last_inputs_from_the_models_confidence(image_server, small_train):
    from transferkit.evaluate import calibrated_confidences, label_free_estimate
    from transferkit.predictor import Predictor
    from transferkit.serve import Batcher, Limits

    model, _ = image_server
    predictor = Predictor.load(model)
    files = sorted(small_train.rglob("*.png")) * 2  # 36 inputs: past the 20 the estimate starts at

    async def go(batcher):
        worker = asyncio.create_task(batcher.run())
        few = batcher.monitor()
        await asyncio.gather(*(batcher.predict([str(f)]) for f in files))
        worker.cancel()
        return few, batcher.monitor()

    few, after = asyncio.run(go(Batcher(predictor, Limits(max_batch=8))))
    assert few["estimate"] is None and "so far" in few["why_none"]
    proba, _, _ = predictor.predict_items([str(f) for f in files])
    expected = label_free_estimate(calibrated_confidences(proba, predictor.report.temperature),
                                   predictor.report.estimate)
    assert after["inputs"] == len(files) and after["estimate"]["n"] == len(files)
    assert after["estimate"]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    assert few["unfamiliar"] is None and after["unfamiliar"]["n"] == len(files)  # the same window, open-set scores
    _, _, _, scores = predictor.predict_scored([str(f) for f in files])
    assert after["unfamiliar"]["below"] == int((scores < predictor.open_set.threshold(0.05)).sum())


def test_concurrent_requests_are_batched_and_none_is_lost(image_server, small_train):
    _, url = image_server
    files = sorted(small_train.rglob("*.png"))

    async def go():
        async with httpx.AsyncClient(timeout=60) as client:
            async def one(f):
                r = await client.post(f"{url}/predict", files=[("files", (f.name, f.read_bytes(), "image/png"))])
                return r.status_code, r.json()["predictions"][0]["input"]
            return await asyncio.gather(*(one(f) for f in files))

    before = httpx.get(f"{url}/health").json()
    results = asyncio.run(go())
    after = httpx.get(f"{url}/health").json()
    assert sorted(results) == sorted((200, f.name) for f in files)
    assert after["inputs"] - before["inputs"] == len(files) and after["batches"] - before["batches"] < len(files)


def _png(size) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", size).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunked_upload(size: int):
    """A multipart upload of one ``size``-byte file, sent chunked (a generator: httpx declares no Content-Length)."""
    yield b'--tk\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
    for _ in range(size // 2**20):
        yield b"x" * 2**20
    yield b"\r\n--tk--\r\n"


@pytest.mark.parametrize("make,status,says", [
    (lambda url: httpx.post(f"{url}/predict", files=[("files", ("notes.txt", b"hello", "text/plain"))]), 400,
     "notes.txt: not an image file"),
    (lambda url: httpx.post(f"{url}/predict", files=[("files", ("huge.png", _png((9000, 9000)), "image/png"))]), 413,
     "megapixels"),
    (lambda url: httpx.post(f"{url}/predict", content=b"x" * (21 * 2**20),
                            headers={"content-type": "application/octet-stream"}), 413, "at most 20 MiB"),
    (lambda url: httpx.post(f"{url}/predict", content=_chunked_upload(21 * 2**20),
                            headers={"content-type": "multipart/form-data; boundary=tk"}), 413, "at most 20 MiB"),
    (lambda url: httpx.post(f"{url}/predict", json={"texts": ["a text for an image model"]}), 422, "/docs"),
    (lambda url: httpx.post(f"{url}/predict"), 422, "does not fit the API"),
    (lambda url: httpx.post(f"{url}/predict", params={"top": 9}, files=[("files", ("a.png", _png((8, 8)), "image/png"))]),
     422, "top must be between 1 and 3"),
])
def test_bad_requests_get_a_4xx_with_a_message(image_server, make, status, says):
    _, url = image_server
    response = make(url)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"] and "Traceback" not in response.text


@pytest.mark.slow  # a server process on a text model, exported at start
def test_a_text_model_takes_json_texts(text_csv, tiny_encoder, tmp_path):
    TextClassifier(tiny_encoder, Features(), verbose=False).fit(text_csv).save(tmp_path / "model")
    proc, url = _start(tmp_path / "model")
    try:
        response = httpx.post(f"{url}/predict", json={"texts": ["sunny and warm", "a goal in extra time"]}, timeout=60)
        assert response.status_code == 200 and len(response.json()["predictions"]) == 2
        assert httpx.post(f"{url}/predict", json={"texts": []}).status_code == 422
        lone = httpx.post(f"{url}/predict", content=b'{"texts": ["\\ud800 great value"]}',  # a lone surrogate
                          headers={"content-type": "application/json"}, timeout=60)
        assert lone.status_code == 200 and lone.json()["predictions"][0]["input"] == "\ufffd great value"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow  # a second server process, exported at start
def test_by_default_the_server_runs_what_was_measured_faster_here(small_train, tiny_backbone, tmp_path):
    from transferkit.runtime import faster_runtime
    from transferkit.serve import MAX_BATCH

    ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train).save(tmp_path / "model")
    proc, url = _start(tmp_path / "model")
    try:
        info = httpx.get(f"{url}/model").json()
        assert info["runtime"] == faster_runtime("image", {"image-backbone"})
        assert info["limits"]["max_batch"] == MAX_BATCH == 8  # batching on for every runtime (docs' Speed page)
        files = sorted(small_train.rglob("*.png"))[:4]
        served = httpx.post(f"{url}/predict", files=[("files", (f.name, f.read_bytes())) for f in files],
                            timeout=60).json()["predictions"]
        # the graph of the export the server made: float32, or int8 on a CPU with integer dot products
        from transferkit.loading import export_folder
        from transferkit.onnx_runtime import GRAPH, INT8_GRAPH, OnnxPredictor

        assert info["graph"] in (GRAPH, INT8_GRAPH)
        expected = OnnxPredictor.load(export_folder(tmp_path / "model"), graph=info["graph"]).predict_proba(files)
        if info["graph"] == GRAPH:  # ... which answers as the PyTorch model does in float32
            model = ImageClassifier.load(tmp_path / "model", precision="fp32")
            assert expected == pytest.approx(model.predict_proba(files), abs=1e-4)
        assert [p["probability"] for p in served] == pytest.approx(list(expected.max(axis=1)), abs=1e-4)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_server_rejects_as_predict_rejects_when_asked(image_server, example_test):
    model, url = image_server
    files = sorted((example_test / "mammals").glob("*.png"))[:6] + sorted((example_test / "birds").glob("*.png"))[:6]
    upload = [("files", (f.name, f.read_bytes(), "image/png")) for f in files]
    response = httpx.post(f"{url}/predict", params={"reject": "0.2"}, files=upload, timeout=60)
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    cli = runner.invoke(app, ["predict", str(model), *map(str, files), "--json", "--reject", "0.2"])
    expected = [json.loads(line) for line in cli.stdout.strip().splitlines()]
    assert [(p["label"], p["known"]) for p in served] == [(e["label"], e["known"]) for e in expected]
    assert all(p["known_score"] == pytest.approx(e["known_score"], abs=1e-5) for p, e in zip(served, expected))
    refused = httpx.post(f"{url}/predict", params={"reject": "most"}, files=upload[:1], timeout=60)
    assert refused.status_code == 422 and "share of items" in refused.text
    plain = httpx.post(f"{url}/predict", files=upload[:1], timeout=60).json()["predictions"][0]
    assert "known" not in plain
