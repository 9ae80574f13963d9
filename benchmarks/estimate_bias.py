"""How far the accuracy a frozen-features fit prints is from the test accuracy; the typical temperature, its prior's
sd and the learning-curve slope that make it (``heads.TYPICAL_TEMPERATURE``, ``evaluate.TEMPERATURE_PRIOR_SD``,
``evaluate.LEARNING_CURVE_SLOPE``).

    python benchmarks/estimate_bias.py                                   # every suite task, k = 2-20, seeds 0-9
    python benchmarks/estimate_bias.py --tasks clipart,spam --ks 2,5 --seeds 0-9
    python benchmarks/estimate_bias.py --table                           # the tables again from the rows file

For each task, k and seed: the representation ``auto`` keeps on that modality (images: the zoo's four backbones side
by side; texts: all-MiniLM-L6-v2), the default head, its cross-validation as a fit runs it (at most 5 folds, at most
the smallest class) and the test accuracy of the head on every label. The folds' held-out predictions are read three
ways: counted (right or wrong); at the temperature their labels alone fit (0.3.1); and at the temperature
fitted toward the head's typical one (what transferkit prints). The typical temperature (median by the head's power
transform), the prior's sd and the slope are fitted on the fit seeds (default 5-9, which the few-shot tables do not
use) and judged on the others: mean of (estimate - test) and of its absolute value, in points. One column fits the
typical temperature and the slope on the other tasks only (leave one task out). Two readings transferkit does not
ship show where the rest of the gap lies: the shipped estimate pulled toward the other tasks' mean test accuracy at
that k (a label-only estimate that borrows from other tasks), and the full head's mean confidence on the test items,
labels unseen, at the shipped temperature (what a pool of unlabeled items like the test set would add; ``predict``
reads it). Features come from the suite's cache (``benchmarks/work/cache``). Writes the rows to ``--out`` (JSON
lines; each keeps its folds' likelihood and mean confidence over a grid of temperatures) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402
from fewshot import machine  # noqa: E402

TASKS = "clipart,fashion,icons,mnist,bbc,questions,spam"


def representation(modality: str):
    from transferkit.featurizers import Concat, ImageBackbone, text_featurizer
    from transferkit.zoo import resolve

    if modality == "text":
        return text_featurizer(resolve("all-MiniLM-L6-v2", "text"))
    lite0 = ImageBackbone.from_spec(resolve("tf_efficientnet_lite0"))
    return Concat([lite0, *lite0.companions()])


def measure_suite(tasks: str, measure, ks: list[int], seeds: range) -> list[dict]:
    """``measure(task, featurizer, ks, seeds, cache)`` over the comma-separated ``tasks``, each modality with the
    representation ``auto`` keeps, features from the suite's cache."""
    cache, rows, featurizers = str(suite_data.WORK / "cache"), [], {}
    for name in tasks.split(","):
        task = suite_data.load_task(name)
        if task.modality not in featurizers:
            featurizers[task.modality] = representation(task.modality)
        rows += measure(task, featurizers[task.modality], ks, seeds, cache)
    return rows


def suite_arguments(description: str, ks: str, seeds: str, out: str) -> argparse.ArgumentParser:
    """The options every estimate benchmark takes: which tasks, k and seeds, the rows file, and --table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tasks", default=TASKS)
    parser.add_argument("--ks", default=ks)
    parser.add_argument("--seeds", default=seeds, help="first-last")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / out)
    parser.add_argument("--table", action="store_true", help="only print the tables from the rows in --out")
    return parser


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def probes(task, featurizer, ks: list[int], seeds: range, cache: str):
    """(k, seed, Probe) for every sample of ``task``: the default head on its k labels per class and its folds, as
    a fit runs them (a ``Probe``'s metrics are what a saved model records)."""
    from transferkit.features import extract
    from transferkit.heads import cross_val_proba
    from transferkit.strategies import Features, Probe

    head = Features()
    for k in (k for k in ks if k <= task.max_k()):
        for seed in seeds:
            items, labels = task.sample(k, seed)
            y = np.array([task.classes.index(c) for c in labels])
            x = extract(featurizer, list(items), cache_dir=cache, progress=False).features
            fit = lambda a, b, s=seed: head.fit_head(a, b, s, featurizer.blocks)  # noqa: E731
            oof, folds = cross_val_proba(fit, x, y, seed=seed)
            yield k, seed, Probe(featurizer, None, y, x, fit(x, y), oof, folds, [], {})
        print(f"{task.name} k={k}: {len(seeds)} seeds", flush=True)


# log temperatures on which each row keeps its folds' likelihood and mean confidence, so that a temperature prior can
# be refitted here without the features (leave one task out, the prior's sd)
LOG_T_GRID = np.linspace(np.log(0.05), np.log(20.0), 241)


def measure(task, featurizer, ks: list[int], seeds: range, cache: str) -> list[dict]:
    from transferkit.evaluate import fit_temperature, mean_confidence, temperature_nll
    from transferkit.features import extract

    test = extract(featurizer, list(task.test_items), cache_dir=cache, progress=False).features
    truth = np.array([task.classes.index(c) for c in task.test_labels])
    rows = []
    for k, seed, probe in probes(task, featurizer, ks, seeds, cache):
        on_test = probe.head.predict_proba(test)
        alone = fit_temperature(probe.oof, probe.y)
        rows.append({"task": task.name, "modality": task.modality, "k": k, "seed": seed, "folds": probe.folds,
                     "n": len(probe.y), "power": probe.head.power, "cv": probe.cv_accuracy,
                     "calibrated": mean_confidence(probe.oof, alone), "temperature": alone,
                     "typical": probe.head.typical_temperature, "shipped": probe.estimate["calibrated"],
                     "shipped_temperature": probe.estimate["temperature"],
                     "unlabeled": mean_confidence(on_test, probe.estimate["temperature"]),
                     "test": float((on_test.argmax(1) == truth).mean()),
                     "nll": [round(temperature_nll(probe.oof, probe.y, np.exp(t)), 4) for t in LOG_T_GRID],
                     "confidence": [round(mean_confidence(probe.oof, np.exp(t)), 5) for t in LOG_T_GRID]})
    return rows


def toward(row: dict, typical: float, sd: float) -> float:
    """The row's folds read at the temperature most probable under a log-normal prior (``typical``, ``sd``), on
    ``LOG_T_GRID``: what ``evaluate.fit_temperature`` finds, to the grid's 2.5%."""
    posterior = np.array(row["nll"]) + (LOG_T_GRID - np.log(typical)) ** 2 / (2 * sd**2)
    return float(row["confidence"][int(np.argmin(posterior))])


def typical_temperature(rows: list[dict]) -> dict[float, float]:
    """The median temperature the folds' labels alone fit, by the head's power transform."""
    return {power: float(np.exp(np.median([np.log(r["temperature"]) for r in rows if r["power"] == power])))
            for power in {r["power"] for r in rows}}


def corrected(row: dict, slope: float, read: str = "calibrated") -> float:
    from transferkit.evaluate import up_the_curve

    return up_the_curve(row[read], row["folds"], slope)


def fit_slope(rows: list[dict], read: str = "calibrated") -> float:
    grid = np.round(np.arange(0.0, 2.01, 0.05), 2)
    errors = [np.mean([(corrected(r, b, read) - r["test"]) ** 2 for r in rows]) for b in grid]
    return float(grid[int(np.argmin(errors))])


def leave_one_task_out(rows: list[dict], fit_seeds: set, sd: float) -> dict:
    """(estimate - test) of each judged row read toward a typical temperature and corrected with a slope, both
    fitted on the other tasks' fit seeds only: how the shipped estimate does on a task it was not fitted to."""
    gaps = {}
    for task in {r["task"] for r in rows}:
        others = [r for r in rows if r["task"] != task and r["seed"] in fit_seeds]
        typical = typical_temperature(others)
        read = {id(r): toward(r, typical[r["power"]], sd) for r in rows if r["power"] in typical}
        slope = fit_slope([{**r, "loto": read[id(r)]} for r in others], "loto")
        for r in rows:
            if r["task"] == task and r["seed"] not in fit_seeds and id(r) in read:
                gaps[(r["task"], r["k"], r["seed"])] = corrected({**r, "loto": read[id(r)]}, slope, "loto") - r["test"]
    return gaps


PRIOR_SDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def prior_sd_choice(rows: list[dict], fit_seeds: set, sds=PRIOR_SDS) -> dict:
    """Mean |estimate - test| on the fit seeds for each prior sd, each task's typical temperature taken from the
    other tasks' fit seeds (shipped slope): how ``evaluate.TEMPERATURE_PRIOR_SD`` was chosen."""
    from transferkit.evaluate import up_the_curve

    fitted = [r for r in rows if r["seed"] in fit_seeds]
    out = {}
    for sd in sds:
        gaps = []
        for task in {r["task"] for r in fitted}:
            typical = typical_temperature([r for r in fitted if r["task"] != task])
            gaps += [abs(up_the_curve(toward(r, typical[r["power"]], sd), r["folds"]) - r["test"])
                     for r in fitted if r["task"] == task and r["power"] in typical]
        out[sd] = float(np.mean(gaps) * 100)
    return out


def shrunk_to_other_tasks(rows: list[dict], fit_seeds: set, slope: float) -> dict:
    """Each judged row's corrected estimate pulled toward what the other tasks scored at the same k (empirical
    Bayes, leave one task out): weight tau^2 / (tau^2 + s^2), tau^2 the variance of the other tasks' mean test
    accuracies, s^2 the estimate's mean squared error on their fit seeds. A label-only estimate that borrows from
    other tasks; transferkit does not ship it (it prints the folds' reading)."""
    out = {}
    for task in {r["task"] for r in rows}:
        for k in {r["k"] for r in rows}:
            others = [r for r in rows if r["task"] != task and r["k"] == k and r["seed"] in fit_seeds]
            if not others:
                continue
            means = [np.mean([r["test"] for r in others if r["task"] == t]) for t in {r["task"] for r in others}]
            tau2 = float(np.var(means, ddof=1)) if len(means) > 1 else 0.0
            s2 = float(np.mean([(corrected(r, slope, "shipped") - r["test"]) ** 2 for r in others]))
            weight = tau2 / (tau2 + s2) if tau2 + s2 > 0 else 1.0
            prior = float(np.mean([r["test"] for r in others]))
            for r in rows:
                if r["task"] == task and r["k"] == k and r["seed"] not in fit_seeds:
                    out[(task, k, r["seed"])] = weight * corrected(r, slope, "shipped") + (1 - weight) * prior
    return out


def main() -> None:
    from transferkit.evaluate import LEARNING_CURVE_SLOPE, TEMPERATURE_PRIOR_SD
    from transferkit.heads import TYPICAL_TEMPERATURE

    parser = suite_arguments(__doc__.splitlines()[0], "2,5,10,20", "0-9", "estimate-bias.jsonl")
    parser.add_argument("--fit-seeds", default="5-9", help="the seeds the slope and prior are fitted on (first-last)")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    rows = read_rows(args.out) if args.table else measure_suite(args.tasks, measure, ks,
                                                                 suite_data.seed_range(args.seeds))
    fit_seeds = set(suite_data.seed_range(args.fit_seeds))
    fitted = [r for r in rows if r["seed"] in fit_seeds]
    slope, count_slope, alone_slope = fit_slope(fitted, "shipped"), fit_slope(fitted, "cv"), fit_slope(fitted)
    judged = [r for r in rows if r["seed"] not in fit_seeds]
    if not args.table:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    where = machine()
    print(f"\nMachine: {where['cpu']} ({', '.join(where['flags'])}), {where['threads']} threads")
    typical = typical_temperature(fitted)
    print(f"Typical temperature (median fitted to the folds' labels alone, seeds {args.fit_seeds}), by the head's "
          "power transform: " + ", ".join(f"{p}: {t:.2f} (shipped {TYPICAL_TEMPERATURE.get(p)})"
                                          for p, t in sorted(typical.items())))
    choice = prior_sd_choice(rows, fit_seeds)
    print(f"Prior sd (log temperature), mean |estimate - test| on seeds {args.fit_seeds}, typical temperature left "
          "one task out: " + ", ".join(f"{sd}: {gap:.2f}" for sd, gap in choice.items())
          + f" (shipped {TEMPERATURE_PRIOR_SD})")
    print(f"Slope fitted on seeds {args.fit_seeds} ({len(fitted)} samples): to the shipped reading {slope:.2f}, to "
          f"the reading calibrated by the labels alone {alone_slope:.2f}, to the 0/1 count {count_slope:.2f}; "
          f"transferkit ships {LEARNING_CURVE_SLOPE}. Judged on the other {len(judged)}. Each cell: mean of "
          "(estimate - test), mean of its absolute value, in points.\n")
    held_out = leave_one_task_out(rows, fit_seeds, TEMPERATURE_PRIOR_SD)
    shrunk = shrunk_to_other_tasks(rows, fit_seeds, LEARNING_CURVE_SLOPE)
    estimates = {
        "folds, counted": lambda r: r["cv"],
        "counted, corrected (slope fitted to the count)": lambda r: corrected(r, count_slope, "cv"),
        "calibrated by the labels alone, corrected (0.3.1)": lambda r: corrected(r, LEARNING_CURVE_SLOPE),
        "calibrated toward the typical temperature, corrected (shipped)":
            lambda r: corrected(r, LEARNING_CURVE_SLOPE, "shipped"),
        "shipped, typical temperature and slope from the other tasks": (
            lambda r: held_out[(r["task"], r["k"], r["seed"])] + r["test"]),
        "shipped, shrunk toward the other tasks (not shipped)": lambda r: shrunk[(r["task"], r["k"], r["seed"])],
        "confidence on the unlabeled test items (not shipped)": lambda r: r["unlabeled"],
    }
    print("| modality | k | samples | " + " | ".join(estimates) + " |")
    print("|---|---|---|" + "---|" * len(estimates))
    for modality in ("image", "text", "both"):
        for k in ["all", *ks]:
            cell = [r for r in judged if modality in (r["modality"], "both") and (k == "all" or r["k"] == k)]
            if not cell:
                continue
            parts = []
            for estimate in estimates.values():
                gaps = np.array([estimate(r) - r["test"] for r in cell]) * 100
                parts.append(f"{gaps.mean():+.1f}, {np.abs(gaps).mean():.1f}")
            print(f"| {modality} | {k} | {len(cell)} | " + " | ".join(parts) + " |")
    print("\nThe luck of the sample: guessing each judged row's test accuracy as its task's and k's mean test accuracy "
          "over all seeds (which no estimate can know) is off by, on average: "
          + "; ".join(f"k={k}: {oracle_gap(rows, judged, k):.1f} points" for k in ks))


def oracle_gap(rows: list[dict], judged: list[dict], k: int) -> float:
    cells: dict[tuple, list[float]] = {}
    for r in rows:
        cells.setdefault((r["task"], r["k"]), []).append(r["test"])
    return float(np.mean([abs(r["test"] - np.mean(cells[(r["task"], k)])) for r in judged if r["k"] == k]) * 100)


if __name__ == "__main__":
    main()
