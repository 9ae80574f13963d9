"""Reading a user's files safely: only regular files of bounded size (a FIFO would hang, ``/dev/zero`` would never
end), text in UTF-8 with a clear message for other encodings, and errors that name the file and the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import BadInputError

MAX_TABLE_BYTES = 2 << 30  # a CSV / JSONL / text file larger than this is not a labeled dataset to hold in memory
MAX_ITEM_BYTES = 256 << 20  # one image or text file


def check_regular_file(path: str | os.PathLike, what: str = "file", limit: int = MAX_TABLE_BYTES) -> int:
    """The size of ``path`` when it is a regular file of at most ``limit`` bytes; a clear error otherwise."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BadInputError(f"{path} does not exist. Check the path.") from None
    except OSError as exc:
        raise BadInputError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise BadInputError(f"{path} is a folder, where a {what} was expected.")
    if not stat.S_ISREG(info.st_mode):
        raise BadInputError(f"{path} is not a regular file (a pipe, socket or device); transferkit reads only regular "
                            f"files. Copy the data into a {what}.")
    if info.st_size > limit:
        raise BadInputError(f"{path} is {info.st_size / 2**20:.0f} MiB, over the {limit / 2**20:.0f} MiB a {what} may "
                            "have here. Split it, or check that it is the file you meant.")
    return info.st_size


def read_bytes(path: str | os.PathLike, what: str = "file", limit: int = MAX_TABLE_BYTES) -> bytes:
    check_regular_file(path, what, limit)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path} cannot be read: {exc.strerror or exc}.") from None


class ItemError(Exception):
    """One item (an image file, an in-memory image) cannot be read or decoded; ``reason`` says why in a few words.
    Extraction skips it and reports it; it is not an error a user catches."""

    def __init__(self, item, reason: str) -> None:
        super().__init__(f"{item}: {reason}")
        self.item = item
        self.reason = reason


_OTHER_ENCODINGS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                    (b"\xfe\xff", "UTF-16"))


def check_text_encoding(path: Path, raw: bytes) -> None:
    """UTF-16 / UTF-32 files (what some spreadsheet programs save as "Unicode text") and binary files are refused with
    the fix, instead of being read as garbled text."""
    for bom, name in _OTHER_ENCODINGS:
        if raw.startswith(bom):
            raise BadInputError(f"{path} is encoded as {name}. Save it as UTF-8 (e.g. \"CSV UTF-8\" in a spreadsheet "
                                "program, or: iconv -f UTF-16 -t UTF-8).")
    if b"\x00" in raw[:65536]:
        raise BadInputError(f"{path} holds NUL bytes: it is not a text file (or is UTF-16 without a byte-order "
                            "mark). Save it as UTF-8 text.")
