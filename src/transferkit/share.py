"""Share a model folder on the Hugging Face Hub, and load one by its hub name (``hf://OWNER/NAME``).

Everything goes through ``huggingface_hub``: ``HfApi.create_repo`` and ``upload_folder`` to push,
``snapshot_download`` (its local cache first) to load. A model folder holds JSON and safetensors only, so loading one
from the Hub runs no code of its author's. Offline, both fail within seconds with a message that says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import BadInputError, WeightsUnavailableError

PREFIX = "hf://"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
SHARED_FILES = ["transferkit.json", "report.json", "README.md", "manifest.json", "*/config.json", "*/model.safetensors",
                "model.safetensors"]  # what a model folder is made of (format 2 components, format 1's weights)


def hub_name(value: str | Path) -> str | None:
    """The repository id of ``hf://OWNER/NAME`` (also as a ``Path`` has normalised it, ``hf:/OWNER/NAME``), else None."""
    text = str(value)
    for prefix in (PREFIX, "hf:/"):
        if text.startswith(prefix):
            repo = text[len(prefix):].strip("/")
            if not REPO_ID.match(repo):
                raise BadInputError(f"{text!r} is not a hub name: write hf://OWNER/NAME, e.g. hf://alice/birds.")
            return repo
    return None


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def local_model_path(value: str | Path, *, token: str | None = None) -> Path:
    """A local folder for ``value``: the path itself, or a hub model's files from the cache (downloaded if needed)."""
    repo = hub_name(value)
    if repo is None:
        return Path(value)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, allow_patterns=SHARED_FILES, local_files_only=True, endpoint=endpoint()))
    except Exception:  # not in the cache (huggingface_hub raises several types here)
        pass
    _check_reachable(f"Loading {PREFIX}{repo}")
    try:
        return Path(snapshot_download(repo, allow_patterns=SHARED_FILES, token=token, endpoint=endpoint()))
    except Exception as exc:  # HTTP errors, missing or private repositories
        raise WeightsUnavailableError(f"Loading {PREFIX}{repo} from the hub failed: {_why(exc)}") from None


def push(model_dir: str | Path, repo: str, *, token: str | None = None, private: bool = False,
         message: str | None = None) -> str:
    """Upload a model folder (its model card included) to the hub repository ``repo``, creating it if needed.
    Returns the URL of the commit."""
    from huggingface_hub import HfApi

    from .bundle import read_document

    repo = hub_name(repo) or repo
    if not REPO_ID.match(repo):
        raise BadInputError(f"--repo {repo!r} is not a hub repository name: write OWNER/NAME, e.g. alice/birds.")
    model_dir = Path(model_dir)
    read_document(model_dir)  # a transferkit model folder, or a clear error
    _check_reachable(f"Pushing to {repo}")
    api = HfApi(endpoint=endpoint(), token=token, library_name="transferkit")
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo, folder_path=model_dir, allow_patterns=SHARED_FILES,
                                 commit_message=message or "Upload a transferkit model")
    except Exception as exc:  # HTTP errors: no token, no right to the namespace, ...
        raise BadInputError(f"Pushing {model_dir} to {repo} failed: {_why(exc)}") from None
    return str(getattr(info, "commit_url", "") or f"{endpoint()}/{repo}")


def _check_reachable(doing: str) -> None:
    from .zoo._hub import reachable

    ok, why = reachable()
    if not ok:
        raise WeightsUnavailableError(f"{doing}: the Hugging Face hub cannot be reached ({why}). Connect to the "
                                      "network (and unset HF_HUB_OFFLINE), or use a model folder on disk.")


def _why(exc: Exception) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if status == 401:
        return f"{first}. Log in with `hf auth login`, or pass --token (or set HF_TOKEN)."
    if status == 403:
        return f"{first}. Your token may not write to that namespace: check the name, or the token's rights."
    if status == 404:
        return f"{first}. Check the name, and for a private repository log in or pass --token."
    return first
