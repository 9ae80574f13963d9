"""The Hugging Face hub: files from its local cache first, downloads when it can be reached, and a fast, clear
failure when it cannot (a probe of a few seconds instead of minutes of retries)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import WeightsUnavailableError

PROBE_SECONDS = 3.0
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def reachable() -> tuple[bool, str]:
    """Whether the hub answers (within a few seconds), and why not."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False, "HF_HUB_OFFLINE is set"
    url = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    outcome: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
            outcome.append("")
        except OSError as exc:
            outcome.append(str(exc) or type(exc).__name__)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS + 0.5)
    if not outcome:
        return False, f"no answer from {host} within {PROBE_SECONDS:.0f} s"
    return outcome[0] == "", outcome[0] and f"{host}: {outcome[0]}"


def weights_file(repo_id: str, name: str, advice: str) -> Path:
    """A local path to a hub repository's weights: from the cache, else downloaded (fails fast offline)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError

    for filename in WEIGHT_FILES:
        cached = try_to_load_from_cache(repo_id, filename)
        if isinstance(cached, str):
            return Path(cached)
    ok, why = reachable()
    if not ok:
        raise WeightsUnavailableError(f"No pretrained weights for {name!r} here: they come from the Hugging Face hub "
                                      f"({repo_id}), which cannot be reached ({why}). {advice}")
    last_error: Exception | None = None
    for filename in WEIGHT_FILES:
        try:
            return Path(hf_hub_download(repo_id, filename))
        except EntryNotFoundError as exc:
            last_error = exc
        except OSError as exc:  # connection and HTTP errors subclass OSError
            raise WeightsUnavailableError(f"Downloading {repo_id} from the hub failed: {exc}. {advice}") from exc
    raise WeightsUnavailableError(f"The hub repository {repo_id} has no weight file ({last_error}). {advice}")


def snapshot(repo_id: str, advice: str) -> Path:
    """A local folder with a whole hub repository (a text encoder): the cache first, else a download."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not in the cache: huggingface_hub raises several types here
        pass
    ok, why = reachable()
    if not ok:
        raise WeightsUnavailableError(f"{repo_id!r} comes from the Hugging Face hub, which cannot be reached ({why}). "
                                      f"{advice}")
    try:
        return Path(snapshot_download(repo_id))
    except Exception as exc:  # HTTP errors, missing repositories: report them with the advice
        raise WeightsUnavailableError(f"Downloading {repo_id!r} from the hub failed: {exc}. {advice}") from exc
