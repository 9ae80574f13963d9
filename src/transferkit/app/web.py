"""The app's HTTP side: FastAPI routes over a :class:`Project`, and one page (``page.html``) that calls them.

FastAPI (with uvicorn) rather than Gradio: it is already transferkit's server stack (``transferkit serve``), so the
app adds no dependency; its routes are plain HTTP that the tests call directly as well as through a browser; and the
safety rules (what an upload may be, where files go, who may connect) are written once, here, in view.
"""

# no "from __future__ import annotations": FastAPI reads the endpoints' annotations

import csv
import hmac
import io
import secrets
import shutil
import tempfile
from pathlib import Path

from ..serve import LOCAL_HOSTS, BodyLimit, answer_errors_as_json
from . import runs
from .project import MAX_UPLOAD_MB, SEPARATOR, Project, ProjectError, label_text, target_of

MAX_REQUEST_MB = 64  # a request larger than this is refused before it is read
PAGE = Path(__file__).with_name("page.html")


def create_app(project: Project, *, token: str | None = None, model: str | None = None):
    """The ASGI application of ``project``. With ``token``, every request must carry it (header ``X-Token``, cookie
    ``transferkit_token``, or ``?token=`` once, which sets the cookie)."""
    from contextlib import asynccontextmanager

    from ..extras import require

    require("app")
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from .. import __version__

    @asynccontextmanager
    async def lifespan(app):
        yield
        runs.stop_all(project)  # no training process outlives the app

    app = FastAPI(title="transferkit app", version=__version__, lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=MAX_REQUEST_MB * 2**20,
                       message=f"The upload is larger than {MAX_REQUEST_MB} MB, the most this app takes at once; images "
                               f"may be up to {MAX_UPLOAD_MB} MB each.")
    runs.reap(project)

    @app.middleware("http")
    async def check_token(request: Request, call_next):
        if token is None:
            return await call_next(request)
        given = (request.headers.get("x-token") or request.cookies.get("transferkit_token")
                 or request.query_params.get("token") or "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"detail": "This app needs its token: open the address it printed when it started "
                                           "(…/?token=…)."}, status_code=401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie("transferkit_token", token, httponly=True, samesite="strict")
        return response

    answer_errors_as_json(app, invalid="The request is not what this page sends ({what}).",
                          unexpected="Something went wrong ({kind}: {error}). Your data is unchanged.")

    _collect_routes(app, project)
    _training_routes(app, project, model)
    predictor = _latest_model(project)
    _trying_routes(app, predictor)
    _download_routes(app, project, predictor)
    return app


def _latest_model(project: Project):
    """A function returning the latest finished run's model, loaded once (a Predictor), or a message to train."""
    predictors: dict[str, object] = {}

    def predictor():
        from ..predictor import Predictor

        folder = project.latest_model()
        if folder is None:
            raise ProjectError("There is no model yet: train one first.")
        if str(folder) not in predictors:
            predictors.clear()
            predictors[str(folder)] = Predictor.load(folder)
        return predictors[str(folder)]

    return predictor


def _collect_routes(app, project: Project) -> None:
    """The page, the project's state, classes and examples."""
    from fastapi import File, Form, UploadFile
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from pydantic import BaseModel

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @app.get("/api/state")
    async def state() -> dict:
        runs.reap(project)
        all_runs = project.runs()
        counts = project.counts()
        return {"project": str(project.root), "modality": project.modality, "task": project.task,
                "pool_has_others": project.pool_has_others, "classes": project.classes(),
                "counts": counts, "runs": all_runs[:10], "has_model": project.latest_model() is not None,
                "strategies": list(runs.STRATEGIES), "limits": {"upload_mb": MAX_UPLOAD_MB,
                                                                "request_mb": MAX_REQUEST_MB}}

    class Modality(BaseModel):
        modality: str
        task: str | None = None  # class (default), labels or number

    @app.post("/api/modality")
    async def set_modality(body: Modality) -> dict:
        project.set_modality(body.modality, body.task)
        return {"modality": project.modality, "task": project.task}

    class Pool(BaseModel):
        has_others: bool  # the unlabeled pool may hold things of none of the classes

    @app.post("/api/pool")
    async def set_pool(body: Pool) -> dict:
        project.set_pool_has_others(body.has_others)
        return {"pool_has_others": project.pool_has_others}

    class ClassName(BaseModel):
        name: str

    @app.post("/api/classes")
    async def add_class(body: ClassName) -> dict:
        return {"name": project.add_class(body.name)}

    @app.delete("/api/classes/{name}")
    async def delete_class(name: str) -> dict:
        project.delete_class(name)
        return {"deleted": name}

    # -- examples ---------------------------------------------------------------------------------------------------
    @app.get("/api/items")
    async def items(split: str | None = None, label: str | None = None) -> list:
        return [_public(r) for r in project.items(split, label)]

    @app.post("/api/images")
    async def add_images(files: list[UploadFile] = File(...), label: str = Form(""), split: str = Form("train")):
        added, errors = [], []
        with project.batch():  # the tables the CLI reads are written once for the whole upload
            for upload in files:
                data = await upload.read(MAX_UPLOAD_MB * 2**20 + 1)
                try:
                    added.append(_public(project.add_image(data, upload.filename or "upload", label or None, split)))
                except ProjectError as exc:
                    errors.append(str(exc))
        status = 200 if added or not errors else 400
        return JSONResponse({"added": added, "errors": errors,
                             **({"detail": " ".join(errors)} if errors and not added else {})}, status_code=status)

    class Texts(BaseModel):
        texts: list[str]
        label: str | list[str] | float = ""  # a class, labels, or a number, as the project's task says
        split: str = "train"

    @app.post("/api/texts")
    async def add_texts(body: Texts) -> dict:
        return {"added": project.add_texts(body.texts, [body.label or None] * len(body.texts), body.split)}

    class Table(BaseModel):
        csv: str
        split: str = "train"

    @app.post("/api/csv")
    async def add_csv(body: Table) -> dict:
        return {"added": project.add_csv(body.csv.encode("utf-8"), body.split)}

    class Change(BaseModel):
        label: str | list[str] | float | None = None  # a class, labels, or a number, as the project's task says
        split: str | None = None

    @app.patch("/api/items/{item_id}")
    async def change(item_id: int, body: Change) -> dict:
        return _public(project.update(item_id, label=body.label, split=body.split))

    @app.delete("/api/items/{item_id}")
    async def delete(item_id: int) -> dict:
        project.delete(item_id)
        return {"deleted": item_id}

    @app.get("/api/items/{item_id}/image")
    async def image(item_id: int):
        return FileResponse(project.image_file(item_id), headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/duplicates")
    async def duplicates() -> list:
        return project.duplicates()

    @app.get("/api/history")
    async def history() -> list:
        return project.history()


def _training_routes(app, project: Project, model: str | None) -> None:
    """Start and cancel runs; what the last run suggests fixing or labeling next."""
    from fastapi import HTTPException
    from pydantic import BaseModel

    class Train(BaseModel):
        strategy: str = "auto"
        compare_scratch: bool = False

    @app.post("/api/train")
    async def train(body: Train) -> dict:
        return {"run": runs.start(project, body.strategy, model, body.compare_scratch)}

    @app.post("/api/runs/{run_id}/cancel")
    async def cancel(run_id: int) -> dict:
        runs.cancel(project, run_id)
        return project.run(run_id)

    @app.get("/api/suggestions")
    async def suggestions(kind: str = "wrong", limit: int = 12) -> list:
        if kind not in ("wrong", "unsure", "next"):
            raise HTTPException(422, "kind must be wrong, unsure or next.")
        return [_public(r) for r in project.suggestions(kind, min(max(limit, 1), 100))]


def _trying_routes(app, predictor) -> None:
    """Upload, webcam or typed text: the classes with probabilities, at once."""
    from fastapi import File, UploadFile
    from pydantic import BaseModel

    def answer(model_, items: list) -> dict:
        """The classes with probabilities, and ``known``: whether it looks like a trained class at all (the open-set
        score at ``reject="auto"``'s threshold; absent for a model without an open-set part)."""
        from ..openset import DEFAULT_RATE

        proba, ok, skipped, scores = model_.predict_scored(items)
        if not ok[0]:
            raise ProjectError(skipped[0][1] if skipped else f"The {model_.noun} could not be read.")
        out = model_.describe(proba[0], 5)
        if scores is not None:
            out["known"] = bool(model_.open_set.is_known(scores[0], DEFAULT_RATE))
        return out

    @app.post("/api/predict/image")
    async def predict_image(file: UploadFile = File(...)) -> dict:
        from ..data.images import ImageDecodeError, load_image
        from .project import MAX_PIXELS

        model_ = predictor()
        if model_.modality != "image":
            raise ProjectError(f"This project's model classifies {model_.modality}s; send one to "
                               f"/api/predict/{model_.modality}.")
        data = await file.read(MAX_UPLOAD_MB * 2**20 + 1)
        if len(data) > MAX_UPLOAD_MB * 2**20:
            raise ProjectError(f"The image is larger than {MAX_UPLOAD_MB} MB.")
        try:
            img = load_image(io.BytesIO(data), max_pixels=MAX_PIXELS, name="the image")
        except ImageDecodeError as exc:
            raise ProjectError(f"{exc.reason}. Try a PNG, JPEG or WebP image.") from None
        return answer(model_, [img])

    class Text(BaseModel):
        text: str

    @app.post("/api/predict/text")
    async def predict_text(body: Text) -> dict:
        model_ = predictor()
        if model_.modality != "text":
            raise ProjectError(f"This project's model classifies {model_.modality}s; send one to "
                               f"/api/predict/{model_.modality}.")
        if not body.text.strip():
            raise ProjectError("Type a text to classify.")
        return answer(model_, [body.text])


def _download_routes(app, project: Project, predictor) -> None:
    """The model folder, the HTML report, the ONNX export and a predictions CSV."""
    from fastapi.responses import FileResponse, Response

    def latest_run_folder() -> Path:
        folder = project.latest_model()
        if folder is None:
            raise ProjectError("There is no model yet: train one first.")
        return folder.parent

    @app.get("/api/download/model")
    async def download_model():
        folder = latest_run_folder() / "model"
        return Response(_zip(folder, "model"), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{_slug(project)}-model.zip"'})

    @app.get("/api/download/report")
    async def download_report():
        from ..evaluate import evaluate
        from ..report.html import write_evaluation

        run_folder = latest_run_folder()
        test_inputs, test_labels, _ = project.labeled("test")
        if not test_inputs:
            raise ProjectError("The report scores the model on the test examples: move or add some to test first.")
        report = run_folder / "report.html"
        model_ = predictor()
        result = evaluate(model_, test_inputs, test_labels)
        write_evaluation(report, result, model_, f"{project.root.name}, run {run_folder.name}",
                         f"{len(test_inputs)} test examples")
        return FileResponse(report, media_type="text/html", filename=f"{_slug(project)}-report.html")

    @app.get("/api/download/onnx")
    async def download_onnx():
        from ..export import export_onnx
        from ..onnx_runtime import is_export

        run_folder = latest_run_folder()
        target = run_folder / "onnx"
        if not is_export(target):
            export_onnx(predictor(), target, overwrite=True)
        return Response(_zip(target, "onnx"), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{_slug(project)}-onnx.zip"'})

    @app.get("/api/download/predictions")
    async def download_predictions():
        rows = project.items("pool") + project.items("test")
        if not rows:
            raise ProjectError("There is nothing to predict: add unlabeled or test examples first.")
        model_ = predictor()
        inputs = [str(project.root / r["file"]) if r["file"] else r["text"] for r in rows]
        proba, ok, skipped = model_.predict_items(inputs)
        classes = model_.classes.tolist()
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        kind = getattr(model_, "kind", "class")
        answer = {"class": ["label", "probability"], "labels": ["labels"], "number": ["value"]}[kind]
        scores = [] if kind == "number" else [f"p_{c}" for c in classes]
        writer.writerow(["name", "split", "given_label", *answer, *scores])
        values = iter(zip(proba, model_.answers(proba)))
        reasons = dict(skipped)
        for row, good, item in zip(rows, ok, inputs):
            given = label_text(row) if target_of(row) is not None else ""
            if good:
                p, said = next(values)
                if kind == "class":
                    said = [said, f"{p.max():.4f}"]
                else:
                    said = [SEPARATOR.join(said) if kind == "labels" else f"{said:.6g}"]
                writer.writerow([row["name"], row["split"], given, *said,
                                 *([] if kind == "number" else [f"{v:.4f}" for v in p])])
            else:
                writer.writerow([row["name"], row["split"], given, *[""] * (len(answer) + len(scores))])
                writer.writerow([f"# {row['name']}: {reasons.get(item, 'unreadable')}"])
        return Response(buffer.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{_slug(project)}-predictions.csv"'})



def _public(row: dict) -> dict:
    """An item as the page sees it: no paths of the server's."""
    keys = ("id", "name", "label", "labels", "value", "split", "text", "kind", "predicted", "confidence", "score",
            "item")
    out = {k: row[k] for k in keys if k in row}
    out["image"] = bool(row.get("file"))
    if "item" in row:
        out["id"] = row["item"]
    return out


def _slug(project: Project) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in project.root.name)[:40] or "project"


def _zip(folder: Path, name: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        archive = shutil.make_archive(str(Path(tmp) / name), "zip", root_dir=folder.parent, base_dir=folder.name)
        return Path(archive).read_bytes()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def address(host: str, port: int, token: str | None) -> tuple[str, str | None]:
    """The page's URL and the token it needs: on a host other than this machine's, a token always (a new random one
    unless given)."""
    if host not in LOCAL_HOSTS and token is None:
        token = new_token()
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}/" + (f"?token={token}" if token else ""), token


def run_app(project: Project, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
            model: str | None = None, open_browser: bool = False) -> None:
    """Serve the app for ``project`` until stopped; ``open_browser`` opens its page in the default browser first."""
    from ..extras import require

    require("app")
    import uvicorn

    if open_browser:
        import webbrowser

        webbrowser.open(address(host, port, token)[0])

    # a browser tab keeps its connection open: Ctrl-C or SIGTERM stops the app within seconds all the same
    uvicorn.run(create_app(project, token=token, model=model), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=5)
