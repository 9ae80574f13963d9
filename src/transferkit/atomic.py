"""Writing files so that nothing is lost: a file is written beside its destination and renamed over it, so a reader
(or a crash, or a full disk) sees the whole new file or the old one, never half of either; what is written gets the
user's usual permissions (their umask), as any other program's files do. Folders are staged the same way by
``bundle.save_atomically``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def umask() -> int:
    """This process's umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: bytes | str | Callable[[BinaryIO], object], *, private: bool = False) -> Path:
    """Write ``data`` (bytes, text as UTF-8, or a function that writes to a binary file) to ``path`` atomically;
    the parent folder is made if missing. An error leaves ``path`` as it was and no temporary file behind.
    ``private`` keeps the file owner-only (the feature cache: a file per item, no umask to read for each)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8", "replace") if isinstance(data, str) else data)
        if not private:
            os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
