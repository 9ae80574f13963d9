"""How well a model reads its own accuracy on unlabeled items (``evaluate.label_free_estimate``, what ``transferkit
predict`` prints), on the suite's test sets as they are and shifted, against the estimate the fit printed.

    python benchmarks/shift.py                                   # every suite task, k = 5, 10, 20, seeds 0-4
    python benchmarks/shift.py --tasks clipart,spam --ks 10 --seeds 0-2
    python benchmarks/shift.py --table                           # only the table, from the rows in --out
    python benchmarks/shift.py --fitted --tasks fashion,mnist --ks 50 --out benchmarks/results/shift-fitted.jsonl

``--fitted``: whole ``auto`` fits instead (``ImageClassifier``/``TextClassifier``, saved and loaded as a user's
model is), predicting through the loaded model; at 50 labels per image class ``auto`` fine-tunes the network, whose
temperature comes from its held-out split (``val_temperature``), and on texts it tunes the encoder, whose
temperature comes from its split's held-out texts, drawn toward the text head's typical one.

For each task, k and seed: the frozen-features model ``auto`` keeps at that size (images: the zoo's four backbones
side by side; texts: all-MiniLM-L6-v2), its head on every label and its cross-validation as a fit runs them (the
same ``Probe``: its metrics are what a saved model records). Then its probabilities on the fixed test set, as it is
and shifted, the way data drifts after a model ships:

- images: ``blur`` (Gaussian, radius 2 px), ``noise`` (Gaussian, sd 60 of 255), ``rotate`` (a quarter turn, as
  photos whose orientation tag was dropped);
- texts: ``typos`` (a letter dropped from every third word), ``short`` (the first 8 words only).

Each row holds the test accuracy, the fit's printed estimate and interval, and the label-free estimate with its
flag (``below_fit``: under the fit's 95% interval by more than the luck of the items, so ``predict`` warns). On the
unshifted test set each row also holds how often a warning comes from the luck of a small batch: the share of
``SUBSETS`` random samples of 20, 50 and 100 test items that warn, that would warn without the allowance for luck
(the estimate alone under the interval), and whose own accuracy is under the interval. Shifted images are written
once under ``benchmarks/work/shift`` and their features cached with the suite's. Writes JSON lines to ``--out`` and
prints two markdown tables: per modality, shift and k, the mean test accuracy, the mean |estimate - test| in points
of the fit's estimate and of the label-free one, and how often ``predict`` warned; and the small-batch shares.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402
from estimate_bias import measure_suite, probes, read_rows, suite_arguments  # noqa: E402
from fewshot import machine  # noqa: E402

SUBSET_SIZES, SUBSETS = (20, 50, 100), 200
SHIFTS = {"image": ("blur", "noise", "rotate"), "text": ("typos", "short")}


def shift_image(kind: str, path: Path, index: int):
    from PIL import Image, ImageFilter

    image = Image.open(path).convert("RGB")
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(2))
    if kind == "noise":
        pixels = np.asarray(image, dtype=float)
        noise = np.random.default_rng(index).normal(0, 60, pixels.shape)
        return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    if kind == "rotate":
        return image.rotate(90, expand=True)
    raise ValueError(kind)


def shift_text(kind: str, text: str, index: int) -> str:
    words = text.split()
    if kind == "short":
        return " ".join(words[:8])
    if kind == "typos":
        rng = random.Random(index)
        out = []
        for i, word in enumerate(words):
            if i % 3 == 0 and len(word) > 1:
                cut = rng.randrange(len(word))
                word = word[:cut] + word[cut + 1:]
            out.append(word)
        return " ".join(out)
    raise ValueError(kind)


def shifted_items(task, kind: str) -> list:
    if task.modality == "text":
        return [shift_text(kind, t, i) for i, t in enumerate(task.test_items)]
    folder = suite_data.WORK / "shift" / task.name / kind
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, path in enumerate(task.test_items):
        target = folder / f"{i}.png"
        if not target.exists():
            shift_image(kind, Path(path), i).save(target)
        paths.append(target)
    return paths


def measure(task, featurizer, ks: list[int], seeds: range, cache: str) -> list[dict]:
    from transferkit.evaluate import calibrated_confidences, label_free_estimate
    from transferkit.features import extract
    from transferkit.fitreport import FitReport

    truth = np.array([task.classes.index(c) for c in task.test_labels])
    sets = {"none": list(task.test_items), **{kind: shifted_items(task, kind) for kind in SHIFTS[task.modality]}}
    features = {name: extract(featurizer, items, cache_dir=cache, progress=False).features
                for name, items in sets.items()}
    rows = []
    for k, seed, probe in probes(task, featurizer, ks, seeds, cache):
        report = FitReport(metrics=probe.metrics())
        printed = report.estimate
        for name, test in features.items():
            proba = probe.head.predict_proba(test)
            estimate = label_free_estimate(calibrated_confidences(proba, report.temperature), printed)
            rows.append({"task": task.name, "modality": task.modality, "k": k, "seed": seed, "shift": name,
                         "n_test": int(len(truth)), "test": float((proba.argmax(1) == truth).mean()),
                         "printed": printed.value, "printed_interval": list(printed.interval),
                         "label_free": estimate["accuracy"], "below_fit": estimate["below_fit"]})
            if name == "none":
                rows[-1]["small_batches"] = small_batches(proba, truth, report, seed)
    return rows


def measure_fitted(task, ks: list[int], seeds: range) -> list[dict]:
    """Like ``measure``, for the model a whole ``auto`` fit saves, predicting through the loaded model."""
    import tempfile

    from transferkit import ImageClassifier, TextClassifier
    from transferkit.predictor import Predictor

    cache = str(suite_data.WORK / "cache")
    truth = np.array(task.test_labels, dtype=object)
    sets = {"none": list(task.test_items), **{kind: shifted_items(task, kind) for kind in SHIFTS[task.modality]}}
    rows = []
    for k in (k for k in ks if k <= task.max_k()):
        for seed in seeds:
            items, labels = task.sample(k, seed)
            cls = ImageClassifier if task.modality == "image" else TextClassifier
            with tempfile.TemporaryDirectory() as folder:
                cls(seed=seed, cache_dir=cache, verbose=False).fit(list(items), list(labels)).save(f"{folder}/m")
                model = Predictor.load(f"{folder}/m", cache_dir=cache)
            printed = model.report.estimate
            for name, test in sets.items():
                proba = model.predict_proba(test)
                estimate = model.label_free(proba) or {}
                rows.append({"task": task.name, "modality": task.modality, "k": k, "seed": seed, "shift": name,
                             "model": "auto", "choice": model.report.auto_choice,
                             "n_test": int(len(truth)), "test": float((model.classes[proba.argmax(1)] == truth).mean()),
                             "printed": printed.value, "printed_interval": list(printed.interval),
                             "label_free": estimate.get("accuracy"), "below_fit": estimate.get("below_fit")})
            print(f"{task.name} k={k} seed {seed}: {rows[-1]['choice']}", flush=True)
    return rows


def small_batches(proba, truth, report, seed: int) -> dict:
    """For each size in SUBSET_SIZES, over SUBSETS random samples of the test items: the share on which predict
    warns, would warn without the allowance for luck, and whose accuracy is under the fit's interval."""
    from transferkit.evaluate import calibrated_confidences, label_free_estimate

    confidences, correct = calibrated_confidences(proba, report.temperature), proba.argmax(1) == truth
    rng, out = np.random.default_rng(seed), {}
    for n in (n for n in SUBSET_SIZES if n <= len(truth)):
        warned = plain = below = 0
        for _ in range(SUBSETS):
            pick = rng.choice(len(truth), n, replace=False)
            estimate = label_free_estimate(confidences[pick], report.estimate)
            low = estimate["interval_at_fit"][0]
            warned, plain, below = (warned + estimate["below_fit"], plain + (estimate["accuracy"] < low),
                                    below + (correct[pick].mean() < low))
        out[str(n)] = [warned / SUBSETS, plain / SUBSETS, below / SUBSETS]
    return out


def table(rows: list[dict], ks: list[int]) -> list[str]:
    out = ["| model | shift | k | fits | test accuracy | fit's estimate, mean \\|error\\| | label-free estimate, "
           "mean \\|error\\| | predict warned | test accuracy below the fit's interval |",
           "|---|---|---|---|---|---|---|---|---|"]
    kinds = sorted({_kind(r) for r in rows})  # the modality, and for whole fits what auto chose
    for kind in kinds:
        for shift in ("none", *SHIFTS[kind.split()[0]]):
            for k in ["all", *ks]:
                cell = [r for r in rows if _kind(r) == kind and r["shift"] == shift and (k == "all" or r["k"] == k)]
                if not cell or (k == "all" and len(ks) == 1):
                    continue
                test = np.array([r["test"] for r in cell])
                printed = np.abs(np.array([r["printed"] for r in cell]) - test).mean() * 100
                read = [(r["label_free"], r["test"]) for r in cell if r["label_free"] is not None]
                free = f"{np.mean([abs(a - b) for a, b in read]) * 100:.1f}" if read else "none printed"
                warned = sum(bool(r["below_fit"]) for r in cell)
                truly = sum(r["test"] < r["printed_interval"][0] for r in cell)
                out.append(f"| {kind} | {shift} | {k} | {len(cell)} | {test.mean():.3f} | {printed:.1f} | "
                           f"{free} | {warned} of {len(cell)} | {truly} of {len(cell)} |")
    if not any("small_batches" in r for r in rows):
        return out
    out += ["", f"Small batches of unshifted items ({SUBSETS} random samples per fit): share that predict warns on, "
            "that the estimate alone (no allowance for luck) would warn on, and whose accuracy is under the fit's "
            "interval", "", "| modality | items | fits | warned | estimate alone under the interval | accuracy under "
            "the interval |", "|---|---|---|---|---|---|"]
    for modality in ("image", "text"):
        for n in map(str, SUBSET_SIZES):
            shares = np.array([r["small_batches"][n] for r in rows if r["modality"] == modality
                               and n in r.get("small_batches", {})])
            if len(shares):
                out.append(f"| {modality} | {n} | {len(shares)} | " + " | ".join(f"{100 * v:.1f}%" for v in
                                                                                shares.mean(axis=0)) + " |")
    return out


def _kind(row: dict) -> str:
    return row["modality"] + (f" ({row['choice']})" if row.get("choice") else "")


def main() -> None:
    parser = suite_arguments(__doc__.splitlines()[0], "5,10,20", "0-4", "shift.jsonl")
    parser.add_argument("--fitted", action="store_true", help="whole auto fits, predicting through the saved model")
    args = parser.parse_args()
    ks, seeds = [int(k) for k in args.ks.split(",")], suite_data.seed_range(args.seeds)
    if args.table:
        rows = read_rows(args.out)
    else:
        rows = ([row for name in args.tasks.split(",") for row in measure_fitted(suite_data.load_task(name), ks, seeds)]
                if args.fitted else measure_suite(args.tasks, measure, ks, seeds))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    where = machine()
    print(f"\nMachine: {where['cpu']} ({', '.join(where['flags'])}), {where['threads']} threads; "
          f"{len(rows)} rows from {args.out.name}\n")
    print("\n".join(table(rows, ks)))


if __name__ == "__main__":
    main()
