"""A local stand-in for the Hugging Face Hub's HTTP API, just what ``huggingface_hub`` calls to create a repository,
commit small files (the "regular" upload mode: base64 inside the commit) and download a snapshot. It runs on
127.0.0.1 in a thread, so ``transferkit push`` and ``hf://`` loading are tested through huggingface_hub's real
HTTP code. It records every request, and answers 401 to requests without a token where the Hub would."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[str] = []
        self.validated: list[str] = []
        self.app = self._app()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def _app(self) -> FastAPI:
        app = FastAPI()
        hub = self

        @app.middleware("http")
        async def record(request: Request, call_next):
            hub.requests.append(f"{request.method} {request.url.path}")
            return await call_next(request)

        def authorised(request: Request) -> bool:
            return request.headers.get("authorization", "").startswith("Bearer ")

        @app.post("/api/repos/create")
        async def create(request: Request):
            if not authorised(request):
                return JSONResponse({"error": "Invalid username or password."}, status_code=401)
            body = await request.json()
            repo = f"{body.get('organization') or 'me'}/{body['name']}" if "/" not in body["name"] else body["name"]
            hub.repos.setdefault(repo, {})
            hub.commits.setdefault(repo, "0" * 40)
            return {"url": f"{hub.url}/{repo}", "name": repo}

        @app.post("/api/validate-yaml")  # huggingface_hub checks a README's metadata before committing it
        async def validate_yaml(request: Request):
            body = await request.json()
            hub.validated.append(body.get("content", ""))
            return {"errors": [], "warnings": []}

        @app.post("/api/models/{owner}/{name}/preupload/{revision}")
        async def preupload(owner: str, name: str, revision: str, request: Request):
            body = await request.json()
            return {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                              for f in body["files"]]}

        @app.post("/api/models/{owner}/{name}/commit/{revision}")
        async def commit(owner: str, name: str, revision: str, request: Request):
            if not authorised(request):
                return JSONResponse({"error": "Unauthorized"}, status_code=401)
            repo = f"{owner}/{name}"
            files = hub.repos.setdefault(repo, {})
            for line in (await request.body()).decode().splitlines():
                entry = json.loads(line)
                if entry["key"] == "file":
                    files[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
            digest = hashlib.sha1(json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in files.items()))
                                  .encode()).hexdigest()
            hub.commits[repo] = digest
            return {"commitUrl": f"{hub.url}/{repo}/commit/{digest}", "commitOid": digest, "pullRequestUrl": None}

        def info(repo: str):
            if repo not in hub.repos:
                return JSONResponse({"error": "Repository not found"}, status_code=404,
                                    headers={"X-Error-Code": "RepoNotFound"})
            return {"id": repo, "modelId": repo, "sha": hub.commits[repo], "private": False,
                    "siblings": [{"rfilename": f} for f in sorted(hub.repos[repo])]}

        @app.get("/api/models/{owner}/{name}/revision/{revision}")
        async def revision(owner: str, name: str, revision: str):
            return info(f"{owner}/{name}")

        @app.get("/api/models/{owner}/{name}/tree/{revision}")
        async def tree(owner: str, name: str, revision: str):
            files = hub.repos.get(f"{owner}/{name}", {})
            return [{"type": "file", "path": p, "size": len(c), "oid": hashlib.sha1(c).hexdigest()}
                    for p, c in sorted(files.items())]

        @app.get("/api/models/{owner}/{name}")
        async def model(owner: str, name: str):
            return info(f"{owner}/{name}")

        @app.api_route("/{owner}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
        async def resolve(owner: str, name: str, revision: str, path: str, request: Request):
            repo = f"{owner}/{name}"
            content = hub.repos.get(repo, {}).get(path)
            if content is None:
                return Response(status_code=404, headers={"X-Error-Code": "EntryNotFound"})
            headers = {"ETag": f'"{hashlib.sha1(content).hexdigest()}"', "X-Repo-Commit": hub.commits[repo],
                       "Content-Length": str(len(content))}
            return Response(b"" if request.method == "HEAD" else content, headers=headers)

        return app
