"""Build the bundled Open Clip Art example (and larger benchmark sets) from Debian's openclipart-png package.

    apt-get install openclipart-png
    python examples/clipart/build.py                      # the bundled subset: 6 classes, 20 train + 20 test each
    python examples/clipart/build.py --out /tmp/clipart-large --train 0 --classes all   # every usable image

Images are decoded with transferkit's robust loader (transparency onto white), downsized so the long side is at
most 160 px, and written as PNG. Selection is seeded and sorted, so the output is reproducible. An image whose PNG
is byte-identical to one already taken (Open Clip Art holds some drawings twice) is left out, so no test image is
a copy of a training image.
Open Clip Art is public domain (see LICENSE.md beside this script).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import shutil
from pathlib import Path

from transferkit.data.images import ImageDecodeError, load_image

SOURCE = Path("/usr/share/openclipart/png")
BUNDLED = {
    "mammals": "animals/mammals",
    "birds": "animals/birds",
    "bugs": "animals/bugs",
    "fruit": "food/fruit",
    "desserts": "food/desserts",
    "beverages": "food/beverages",
}
# For the larger benchmark set: sub-categories that hold one kind of thing and at least 30 images.
LARGE = BUNDLED | {
    "vehicles": "transportation/vehicles",
    "flowers": "plants/flowers",
    "music": "recreation/music",
    "homes": "buildings/homes",
    "weapons": "tools/weapons",
    "boats": "transportation/boating",
    "computers": "computer/hardware",
    "flags": "signs_and_symbols/flags",
}


def build(out: Path, classes: dict[str, str], train: int, test: int, max_side: int, seed: int) -> dict[str, tuple[int, int]]:
    if not SOURCE.is_dir():
        raise SystemExit(f"{SOURCE} not found: install Debian's openclipart-png (apt-get install openclipart-png).")
    shutil.rmtree(out, ignore_errors=True)
    counts = {}
    seen: set[str] = set()
    for label, sub in classes.items():
        files = sorted(p for p in (SOURCE / sub).rglob("*.png"))
        random.Random(f"{seed}:{label}").shuffle(files)
        kept = 0
        n_test = 0
        limit = (train + test) if train else len(files)
        for path in files:
            if kept >= limit:
                break
            try:
                img = load_image(path, max_side=max_side)
            except ImageDecodeError as exc:
                print(f"skip {exc}")
                continue
            buffer = io.BytesIO()
            img.save(buffer, format="PNG", optimize=True)
            digest = hashlib.sha256(buffer.getvalue()).hexdigest()
            if digest in seen:
                print(f"skip {path}: the same image as one already taken")
                continue
            seen.add(digest)
            split = "train" if (train and kept < train) else "test"
            if split == "test":
                n_test += 1
            target = out / split / label / f"{path.stem[:60]}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(buffer.getvalue())
            kept += 1
        counts[label] = (kept - n_test, n_test)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--train", type=int, default=20, help="images per class for train/ (0: all into test/)")
    parser.add_argument("--test", type=int, default=20, help="images per class for test/")
    parser.add_argument("--classes", choices=("bundled", "all"), default="bundled")
    parser.add_argument("--max-side", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out
    if out.resolve() == Path(__file__).parent.resolve():
        for split in ("train", "test"):
            shutil.rmtree(out / split, ignore_errors=True)
        counts = {}
        tmp = out / ".build"
        counts = build(tmp, BUNDLED, args.train, args.test, args.max_side, args.seed)
        for split in ("train", "test"):
            shutil.move(str(tmp / split), str(out / split))
        shutil.rmtree(tmp)
    else:
        counts = build(out, BUNDLED if args.classes == "bundled" else LARGE, args.train, args.test, args.max_side, args.seed)
    for label, (n_train, n_test) in counts.items():
        print(f"{label:12s} train {n_train:4d}  test {n_test:4d}")


if __name__ == "__main__":
    main()
