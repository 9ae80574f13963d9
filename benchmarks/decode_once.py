"""What reading each image once saves the side-by-side backbones (auto's ensemble), measured in one run.

``apart``: each of the four members extracts the folder's images on its own (each decodes every image: what
extraction did before images were decoded once per ensemble). ``together``: the ``Concat`` of the same members
extracts them (each image decoded once, then each member resizes and normalises it). Both start from an empty
feature cache; the rounds alternate, and each side's best is kept. The features are checked equal.

    python benchmarks/decode_once.py FOLDER [--rounds 2]    # writes results/decode-once-<cpu>.md

Full-size pictures show the saving (Open Clip Art's PNGs under /usr/share/openclipart/png, up to about 1,100 px);
the bundled example's small PNGs decode in almost no time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from codebase_metrics import machine, write_results


def timed(run) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        features = run(cache)
        return time.perf_counter() - start, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from transferkit import ImageClassifier
    from transferkit.features import extract
    from transferkit.featurizers import Concat

    first = ImageClassifier(verbose=False)._featurizer()
    both = Concat([first, *first.companions()])
    items = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    sizes = [__import__("PIL.Image").Image.open(p).size for p in items]
    best = {"apart": float("inf"), "together": float("inf")}
    for _ in range(args.rounds):
        seconds, apart = timed(lambda c: both.combine([extract(m, items, cache_dir=c).features for m in both.members]))
        best["apart"] = min(best["apart"], seconds)
        seconds, together = timed(lambda c: extract(both, items, cache_dir=c).features)
        best["together"] = min(best["together"], seconds)
        assert np.allclose(apart, together, atol=1e-5)
    m = machine()
    long_side = np.median([max(s) for s in sizes])
    text = (f"## Decoding each image once for the side-by-side backbones\n\n"
            f"{len(items)} images of `{args.folder}` (median long side {long_side:.0f} px), the four members of auto's "
            f"ensemble ({both.name}), empty feature cache, best of {args.rounds} alternating rounds. "
            f"Machine: {m['cpu']}, flags {', '.join(m['flags']) or 'none of note'}, {m['threads']} threads.\n\n"
            "| extraction | seconds | images/s |\n|---|---|---|\n"
            f"| each member decodes every image (before) | {best['apart']:.1f} | {len(items) / best['apart']:.1f} |\n"
            f"| one decode per image for all members | {best['together']:.1f} | "
            f"{len(items) / best['together']:.1f} |\n\n"
            f"Ratio: {best['apart'] / best['together']:.2f}x. Command: "
            f"`OMP_NUM_THREADS=2 python benchmarks/decode_once.py {args.folder}`.\n")
    write_results("decode-once", text, m)


if __name__ == "__main__":
    main()
