"""The Open Inference Protocol (KServe v2) on the prediction server, so that clients nobody here wrote (tritonclient,
KServe's) can call a transferkit model:

    GET  /v2                           the server: name, version, extensions
    GET  /v2/health/live, /v2/health/ready
    GET  /v2/models/{name}             the model: its input (``INPUT``, BYTES: encoded images or UTF-8 texts) and
                                       outputs (``PROBABILITIES`` FP32 and ``LABEL`` BYTES; several labels per item:
                                       ``LABELS``, the labels joined by ``|``; numbers: ``VALUE`` FP32)
    GET  /v2/models/{name}/ready
    POST /v2/models/{name}/infer       ``{"inputs": [{"name": "INPUT", "datatype": "BYTES", "shape": [n], "data":
                                       [...]}]}``, or with the binary tensor extension (``Inference-Header-Content-
                                       Length``: a JSON header, then each element as a 4-byte little-endian length and
                                       its bytes), which images need

The requests run through the server's batcher, so they are batched with the other routes' requests. The protocol has
no per-item errors: an input that cannot be read fails the request with a 400 that names it. Responses are JSON.
"""

# no "from __future__ import annotations": FastAPI reads the endpoints' annotations

import io
import json
import struct

import numpy as np

PROTOCOL_VERSION = "2"
INPUT = "INPUT"


def bytes_elements(raw: bytes) -> list[bytes]:
    """A BYTES tensor in the binary extension's layout: each element a 4-byte little-endian length, then its bytes."""
    out, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise ValueError("a BYTES element's length is cut short")
        (size,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + size > len(raw):
            raise ValueError("a BYTES element is shorter than its length says")
        out.append(raw[at: at + size])
        at += size
    return out


def outputs_of(predictor) -> list[dict]:
    """The model's output tensors as the protocol's metadata lists them."""
    n = max(len(predictor.classes), 1)
    if predictor.kind == "number":
        return [{"name": "VALUE", "datatype": "FP32", "shape": [-1, 1]}]
    if predictor.kind == "labels":
        return [{"name": "PROBABILITIES", "datatype": "FP32", "shape": [-1, n]},
                {"name": "LABELS", "datatype": "BYTES", "shape": [-1]}]
    return [{"name": "PROBABILITIES", "datatype": "FP32", "shape": [-1, n]},
            {"name": "LABEL", "datatype": "BYTES", "shape": [-1]}]


def response_tensors(predictor, rows: np.ndarray) -> list[dict]:
    """The output tensors for the predicted rows (``predict_items``' rows, in input order)."""
    answers = [predictor.describe(row) for row in rows]
    n = len(answers)
    if predictor.kind == "number":
        return [{"name": "VALUE", "datatype": "FP32", "shape": [n, 1], "data": [a["value"] for a in answers]}]
    probabilities = {"name": "PROBABILITIES", "datatype": "FP32", "shape": [n, rows.shape[1] if n else 0],
                     "data": np.asarray(rows, dtype=np.float64).ravel().tolist()}
    if predictor.kind == "labels":
        return [probabilities, {"name": "LABELS", "datatype": "BYTES", "shape": [n],
                                "data": ["|".join(map(str, a["labels"])) for a in answers]}]
    return [probabilities, {"name": "LABEL", "datatype": "BYTES", "shape": [n], "data": [str(a["label"]) for a in answers]}]


def add_routes(app, predictor, batcher, limits, name: str, version: str) -> None:
    """The protocol's routes on ``app``, answering for the model ``name``."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    from .data.images import ImageDecodeError, load_image
    from .data.texts import plain_text

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def check_name(model: str) -> JSONResponse | None:
        if model != name:
            return error(404, f"no model named {model!r}; this server serves {name!r} (GET /v2/models/{name}).")
        return None

    @app.get("/v2", summary="Open Inference Protocol: the server")
    async def server_metadata() -> dict:
        return {"name": "transferkit", "version": version, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live", summary="Open Inference Protocol: live")
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready", summary="Open Inference Protocol: ready")
    async def ready() -> dict:
        return {"ready": True}

    @app.get("/v2/models/{model}", summary="Open Inference Protocol: the model's inputs and outputs")
    async def model_metadata(model: str):
        return check_name(model) or {
            "name": name, "versions": ["1"], "platform": f"transferkit-{predictor.modality}",
            "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}], "outputs": outputs_of(predictor),
            "parameters": {"modality": predictor.modality, "classes": [str(c) for c in predictor.classes],
                           "target": (predictor.target or {}).get("kind", "class")}}

    @app.get("/v2/models/{model}/ready", summary="Open Inference Protocol: the model is ready")
    async def model_ready(model: str):
        return check_name(model) or {"name": name, "ready": True}

    @app.post("/v2/models/{model}/infer", summary="Open Inference Protocol: predict")
    async def infer(model: str, request: Request):
        wrong = check_name(model)
        if wrong:
            return wrong
        body = await request.body()
        header = request.headers.get("inference-header-content-length")
        try:
            size = int(header) if header is not None else len(body)
            document = json.loads(body[:size])
            if not isinstance(document, dict):
                raise ValueError("the request is not a JSON object")
            tensors = document.get("inputs")
            if not isinstance(tensors, list) or len(tensors) != 1 or not isinstance(tensors[0], dict):
                raise ValueError(f"give exactly one input tensor, {INPUT!r}")
            tensor = tensors[0]
            if tensor.get("name") != INPUT or tensor.get("datatype") != "BYTES":
                raise ValueError(f"the input must be named {INPUT!r} with datatype BYTES")
            binary = (tensor.get("parameters") or {}).get("binary_data_size")
            if binary is not None:
                elements = bytes_elements(body[size: size + int(binary)])
            else:
                data = tensor.get("data")
                if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
                    raise ValueError("'data' must be a list of strings (or use the binary tensor extension)")
                if predictor.modality == "image":
                    raise ValueError("images are bytes: send them with the binary tensor extension "
                                     "(tritonclient: InferInput.set_data_from_numpy(..., binary_data=True))")
                elements = [d.encode("utf-8") for d in data]
        except (ValueError, UnicodeDecodeError, struct.error) as exc:
            return error(400, f"The request does not fit the Open Inference Protocol: {exc}.")
        if not elements:
            return error(400, "The input holds no elements.")
        if len(elements) > limits.max_inputs:
            return error(413, f"{len(elements)} inputs in one request; at most {limits.max_inputs}.")
        items = []
        for i, element in enumerate(elements):
            if predictor.modality == "text":
                items.append(plain_text(element.decode("utf-8", errors="replace")))
                continue
            try:
                items.append(load_image(io.BytesIO(element), max_pixels=limits.max_pixels, name=f"input {i}",
                                        gray=True))
            except ImageDecodeError as exc:
                return error(400, f"input {i}: {exc.reason}. Send encoded JPEG, PNG, WebP, BMP, GIF or TIFF images.")
        results = await batcher.predict(items)
        failed = [(i, why) for i, (row, _, why) in enumerate(results) if row is None]
        if failed:
            return error(400, f"input {failed[0][0]} could not be read: {failed[0][1]}.")
        rows = np.stack([row for row, _, _ in results])
        return {"model_name": name, "model_version": "1", "id": document.get("id", ""),
                "outputs": response_tensors(predictor, rows)}
