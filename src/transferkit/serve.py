"""A prediction server on FastAPI + uvicorn: ``transferkit serve MODEL``.

    POST /predict      images as multipart uploads (``files``, several per request), or JSON ``{"texts": [...]}``;
                       ``?top=3``; ``?reject=auto`` (or a rate): ``unknown`` for an input of no trained class
                       (``openset``); answers one prediction per input, in order
    GET  /health       {"status": "ok"} once the model is loaded
    GET  /model        classes, modality, how inputs are prepared, the fit's metrics and reason
    GET  /monitor      the model's accuracy on the last inputs it answered (up to ``MONITOR_WINDOW``), read from its
                       confidence, and whether that is below the fit's estimate (the inputs drifted from the training
                       data; ``evaluate.label_free_estimate``), and ``unfamiliar``: how many of them score below the
                       open-set threshold, against the share the trained classes' items do (``openset.unfamiliar``)
    GET  /docs         the OpenAPI documentation (and /openapi.json)
    /v2/...            the Open Inference Protocol (KServe v2), the model named after its folder
                       (``inference_protocol``)

Requests are batched: inputs that arrive within ``batch_wait_ms`` of each other (up to ``max_batch``) run through
the model together, in a worker thread, so the server stays responsive. Limits: the request body (``max_request_mb``),
the number of inputs per request, and the pixels of an image; a request past them, an upload that is not an image,
or texts sent to an image model get a 4xx with a message that says what to change, never a 500 with a traceback.
The server binds to 127.0.0.1 unless told otherwise.
"""

# no "from __future__ import annotations": FastAPI reads the endpoints' annotations, which name local imports

import asyncio
import collections
import io
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import BadInputError

MAX_REQUEST_MB = 20.0
MAX_INPUTS = 256
MAX_PIXELS = 50_000_000
# inputs of concurrent requests run together: smaller batches wait less behind each other, at a little throughput
# (benchmarks/serve_load.py compares 32, 8 and 1)
MAX_BATCH = 8
BATCH_WAIT_MS = 5.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # addresses only this machine reaches
MONITOR_WINDOW = 1000  # the inputs /monitor reads the model's recent accuracy from


@dataclass
class Limits:
    max_request_mb: float = MAX_REQUEST_MB
    max_inputs: int = MAX_INPUTS
    max_pixels: int = MAX_PIXELS
    max_batch: int = MAX_BATCH
    batch_wait_ms: float = BATCH_WAIT_MS

    def __post_init__(self) -> None:
        if self.max_request_mb <= 0 or self.max_batch < 1:
            raise BadInputError("--max-request-mb must be positive and --max-batch at least 1.")


@dataclass
class _Job:
    items: list
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Collects the inputs of concurrent requests into batches and runs them through the model in a thread."""

    def __init__(self, predictor, limits: Limits) -> None:
        self.predictor = predictor
        self.limits = limits
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.batches = 0
        self.items = 0
        self.recent: collections.deque = collections.deque(maxlen=MONITOR_WINDOW)  # calibrated confidences
        self.recent_scores: collections.deque = collections.deque(maxlen=MONITOR_WINDOW)  # open-set scores

    def monitor(self) -> dict:
        """The model's accuracy on the last inputs it answered, read from its confidence (None under 20 inputs, or
        for a model that records no temperature), with what it was estimated at when it was fitted."""
        from .evaluate import LABEL_FREE_MIN_ITEMS, VAL_TEMPERATURE_MIN_ITEMS, label_free_estimate
        from .openset import unfamiliar

        report = self.predictor.report
        answer = {"window": MONITOR_WINDOW, "inputs": len(self.recent),
                  "estimate": label_free_estimate(np.array(self.recent), report.estimate)}
        if answer["estimate"] is None and report.temperature is None:
            answer["why_none"] = ("this model records no temperature to read its confidence with (a network validated "
                                  f"on fewer than {VAL_TEMPERATURE_MIN_ITEMS} items, or a model saved before "
                                  "transferkit recorded it)")
        elif answer["estimate"] is None:
            answer["why_none"] = f"{len(self.recent)} input(s) so far; the estimate starts at {LABEL_FREE_MIN_ITEMS}"
        answer["unfamiliar"] = unfamiliar(self.predictor.open_set, np.array(self.recent_scores), LABEL_FREE_MIN_ITEMS)
        return answer

    async def run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            size = len(jobs[0].items)
            deadline = time.perf_counter() + self.limits.batch_wait_ms / 1000
            while size < self.limits.max_batch:
                timeout = deadline - time.perf_counter()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), timeout)
                except TimeoutError:
                    break
                jobs.append(job)
                size += len(job.items)
            items = [item for job in jobs for item in job.items]
            try:
                proba, ok, skipped, scores = await asyncio.to_thread(self.predictor.predict_scored, items)
            except Exception as exc:  # the model failed on this batch: every request in it gets the reason
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(items)
            self._remember(proba)
            if scores is not None:
                self.recent_scores.extend(np.asarray(scores).tolist())
            rows = iter(zip(proba, scores if scores is not None else [None] * len(proba)))
            reasons = {id(item): why for item, why in skipped}
            start = 0
            for job in jobs:
                n = len(job.items)
                answer = [(*next(rows), None) if flag else (None, None, reasons.get(id(item), "unreadable"))
                          for item, flag in zip(job.items, ok[start: start + n])]
                start += n
                if not job.future.done():
                    job.future.set_result(answer)

    def _remember(self, proba) -> None:
        from .evaluate import calibrated_confidences

        confidences = calibrated_confidences(proba, self.predictor.report.temperature)
        if confidences is not None:
            self.recent.extend(confidences.tolist())

    async def predict(self, items: list):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(items, future))
        return await future


def create_app(predictor, limits: Limits | None = None, model_info: dict | None = None):
    """The ASGI application for a loaded predictor (a :class:`~transferkit.predictor.Predictor` or an
    :class:`~transferkit.onnx_runtime.OnnxPredictor`)."""
    from contextlib import asynccontextmanager

    from .extras import require

    require("serve")
    from fastapi import FastAPI, File, HTTPException, Query, UploadFile

    from . import __version__
    from .data.images import ImageDecodeError, load_image
    from .errors import BadInputError
    from .openset import UNKNOWN, rejection_rate
    from .predictor import NO_OPEN_SET

    limits = limits or Limits()
    batcher = Batcher(predictor, limits)
    classes = predictor.classes.tolist()

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()

    app = FastAPI(title="transferkit model", version=__version__, lifespan=lifespan,
                  description=f"A {predictor.modality} classifier with {len(classes)} classes, served by transferkit.")
    app.add_middleware(BodyLimit, max_bytes=int(limits.max_request_mb * 2**20),
                       message=f"The request is larger than this server takes (at most {limits.max_request_mb:g} MiB). "
                               "Send fewer or smaller inputs per request.")

    answer_errors_as_json(app, invalid="The request does not fit the API ({what}). See /docs.",
                          unexpected="The model could not answer this request ({kind}).")

    from .inference_protocol import add_routes

    add_routes(app, predictor, batcher, limits, model_name((model_info or {}).get("model")), __version__)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "batches": batcher.batches, "inputs": batcher.items}

    @app.get("/model")
    async def model() -> dict:
        report = predictor.report
        estimate = report.estimate
        metrics = {k: v for k, v in report.metrics.items()
                   if isinstance(v, (int, float, str)) and not k.startswith("val_correct")}
        return {"modality": predictor.modality, "classes": classes, "target": predictor.target or {"kind": "class"},
                "settings": dict(predictor.settings),
                "preparation": _preparation(predictor), "reason": report.reason,
                "estimate": estimate.to_dict() if estimate else None, "metrics": metrics,
                "limits": limits.__dict__, **(model_info or {})}

    @app.get("/monitor")
    async def monitor() -> dict:
        return batcher.monitor()

    def answer(names: list[str], results: list, top: int, rate: float | None) -> dict:
        out = []
        for name, (p, score, error) in zip(names, results):
            if p is None:
                out.append({"input": name, "error": error})
                continue
            row = {"input": name, **predictor.describe(p, top)}
            if rate is not None:
                known = bool(predictor.open_set.is_known(score, rate))
                row.update({"label": row["label"] if known else UNKNOWN, "known": known, "known_score": float(score)})
            out.append(row)
        return {"predictions": out}

    def check(top: int, reject: str | None) -> float | None:
        """The request's options checked; the rejection rate where it asks to reject."""
        if not 1 <= top <= max(len(classes), 1):
            raise HTTPException(422, f"top must be between 1 and {len(classes)} (the number of classes), got {top}.")
        if reject is None:
            return None
        try:
            rate = rejection_rate(reject)
        except BadInputError as exc:
            raise HTTPException(422, str(exc)) from None
        if predictor.open_set is None:
            raise HTTPException(422, NO_OPEN_SET)
        return rate

    reject_query = Query(None, description="auto, or the share of the trained classes' inputs that may be rejected "
                                           f"(e.g. 0.02): an input of no trained class gets the label {UNKNOWN!r}")

    if predictor.modality == "image":
        @app.post("/predict", summary="Classify uploaded images")
        async def predict_images(files: list[UploadFile] = File(..., description="one or more image files"),
                                 top: int = Query(1, description="how many classes to return per image"),
                                 reject: str | None = reject_query) -> dict:
            rate = check(top, reject)
            if len(files) > limits.max_inputs:
                raise HTTPException(413, f"{len(files)} images in one request; at most {limits.max_inputs}.")
            images, names = [], []
            for upload in files:
                data = await upload.read(int(limits.max_request_mb * 2**20) + 1)
                name = upload.filename or f"upload {len(names)}"
                if len(data) > limits.max_request_mb * 2**20:
                    raise HTTPException(413, f"{name} is larger than {limits.max_request_mb:g} MiB.")
                try:
                    # gray: an export prepares a grayscale upload as one channel; a model folder makes it RGB
                    images.append(load_image(io.BytesIO(data), max_pixels=limits.max_pixels, name=name, gray=True))
                except ImageDecodeError as exc:
                    status = 413 if "too large" in exc.reason else 400
                    raise HTTPException(status, f"{name}: {exc.reason}. Send a JPEG, PNG, WebP, BMP, GIF or TIFF "
                                                f"image of at most {limits.max_pixels / 1e6:.0f} megapixels.") from None
                names.append(name)
            return answer(names, await batcher.predict(images), top, rate)
    else:
        from pydantic import BaseModel, Field

        from .data.texts import plain_text

        class Texts(BaseModel):
            texts: list[str] = Field(..., min_length=1, description="the texts to classify")

        @app.post("/predict", summary="Classify texts")
        async def predict_texts(body: Texts, top: int = Query(1, description="how many classes per text"),
                                reject: str | None = reject_query) -> dict:
            rate = check(top, reject)
            if len(body.texts) > limits.max_inputs:
                raise HTTPException(413, f"{len(body.texts)} texts in one request; at most {limits.max_inputs}.")
            texts = [plain_text(t) for t in body.texts]  # a lone surrogate is valid JSON but no valid text
            return answer(texts, await batcher.predict(texts), top, rate)

    return app


def model_name(path) -> str:
    """The name the Open Inference Protocol serves a model under: its folder's name in letters, digits, ``-``, ``_``
    and ``.`` (``model`` when there is none)."""
    import re
    from pathlib import Path

    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(path)).name).strip("-.") if path else ""
    return name or "model"


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413 and ``message``, by its Content-Length or,
    for a chunked upload that declares none, as it streams. The limit is raised as a 413 ``HTTPException`` from the
    body's reader, which FastAPI's body parsing passes on (any other error there becomes a 400)."""

    def __init__(self, app, max_bytes: int, message: str) -> None:
        self.app, self.max_bytes, self.message = app, max_bytes, message

    async def __call__(self, scope, receive, send):
        from fastapi import HTTPException
        from fastapi.responses import JSONResponse

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self.message)
            return event

        await self.app(scope, limited, send)


def answer_errors_as_json(app, *, invalid: str, unexpected: str) -> None:
    """transferkit's own errors as 400, requests that do not fit the API as 422 (``invalid`` names ``{what}``), and
    anything else as 500 with ``unexpected`` (``{kind}``, ``{error}``): a message in JSON, never a traceback."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from .errors import TransferkitError

    @app.exception_handler(TransferkitError)
    async def refused(request: Request, exc: TransferkitError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def does_not_fit(request: Request, exc: RequestValidationError):
        what = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in exc.errors()[:3])
        return JSONResponse({"detail": invalid.format(what=what)}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        return JSONResponse({"detail": unexpected.format(kind=type(exc).__name__, error=exc)}, status_code=500)


def _preparation(predictor) -> list | dict:
    manifest = getattr(predictor, "manifest", None)
    if manifest is not None:
        return manifest.get("inputs", [])
    featurizer = predictor.featurizer
    members = getattr(featurizer, "members", None) or [featurizer]
    return [{"featurizer": m.name, **({"preprocessing": m.preprocessing.to_dict()} if hasattr(m, "preprocessing")
                                      else {"max_tokens": getattr(m, "max_tokens", None)})} for m in members]


def serve(predictor, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          model_info: dict | None = None, log_level: str = "warning") -> None:
    """Serve ``predictor`` over HTTP until stopped (``create_app``'s routes, run by uvicorn)."""
    from .extras import require

    require("serve")
    import uvicorn

    predictor.use_cache = False  # a server caches no features on disk
    uvicorn.run(create_app(predictor, limits, model_info), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=5)  # open keep-alive connections do not hold a shutdown
