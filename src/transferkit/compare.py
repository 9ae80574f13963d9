"""Learning curves: how accuracy grows with the number of labels per class, for each strategy, with seeds, and a
plain-language recommendation drawn from the measured curve (does transfer pay off here, and from how many labels
on does labeling more stop helping?).

A fixed, stratified test split is held out once; for every k and seed, k labeled examples per class are drawn from
the rest, each strategy is fit on them and scored on the same test split.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .data import stratified_split
from .errors import BadInputError

TRANSFER = ("features", "finetune", "auto")
PLATEAU_POINTS = 1.0  # "within a point of the best measured accuracy": more labels bring little


@dataclass
class CurvePoint:
    strategy: str
    k: int
    seed: int
    accuracy: float
    seconds: float
    n_train: int
    n_test: int

    def to_dict(self) -> dict:
        return asdict(self)


def sample_per_class(labels: Sequence[str], pool: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` indices per class from ``pool`` (all of a class when it has fewer), seeded."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    chosen = []
    for c in sorted(set(labels[pool].tolist())):
        idx = pool[labels[pool] == c]
        chosen.extend(rng.permutation(idx)[:k].tolist())
    return np.sort(np.asarray(chosen, dtype=int))


def learning_curve(items: Sequence, labels: Sequence[str], ks: Sequence[int], seeds: int,
                   strategies: Sequence[str], make: Callable[[str, int], object], test_fraction: float = 0.3,
                   test: tuple[Sequence, Sequence[str]] | None = None,
                   on_point: Callable[[CurvePoint], None] | None = None) -> list[CurvePoint]:
    """Fit ``make(strategy, seed)`` on k examples per class for every k, seed and strategy; score on a fixed test."""
    items, labels = list(items), [str(c) for c in labels]
    if test is None:
        pool, test_idx = stratified_split(labels, test_fraction, seed=12345)
        test_items, test_labels = [items[i] for i in test_idx], [labels[i] for i in test_idx]
    else:
        pool, (test_items, test_labels) = np.arange(len(items)), (list(test[0]), [str(c) for c in test[1]])
    smallest = min(np.bincount(np.unique(np.asarray(labels)[pool], return_inverse=True)[1]))
    usable = sorted({min(k, smallest) for k in ks if k >= 2})
    if not usable:
        raise BadInputError("compare needs at least 2 labeled examples per class in the training pool.")
    points = []
    for k in usable:
        for seed in range(seeds):
            train = sample_per_class(labels, pool, k, seed)
            train_items, train_labels = [items[i] for i in train], [labels[i] for i in train]
            for strategy in strategies:
                model = make(strategy, seed)
                start = time.perf_counter()
                model.fit(train_items, train_labels)
                seconds = time.perf_counter() - start
                accuracy = float(model.score(test_items, test_labels))
                point = CurvePoint(strategy, k, seed, accuracy, seconds, len(train), len(test_items))
                points.append(point)
                if on_point:
                    on_point(point)
    return points


def summarise(points: Sequence[CurvePoint]) -> dict[str, dict[int, dict]]:
    """strategy -> k -> mean / sd accuracy and mean seconds over seeds."""
    out: dict[str, dict[int, dict]] = {}
    for p in points:
        out.setdefault(p.strategy, {}).setdefault(p.k, {"acc": [], "sec": []})
        out[p.strategy][p.k]["acc"].append(p.accuracy)
        out[p.strategy][p.k]["sec"].append(p.seconds)
    for per_k in out.values():
        for v in per_k.values():
            acc, sec = v.pop("acc"), v.pop("sec")
            v |= {"mean": statistics.mean(acc), "sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                  "seconds": statistics.mean(sec), "seeds": len(acc)}
    return out


def recommend(points: Sequence[CurvePoint]) -> list[str]:
    """Plain sentences drawn from the measured curve: transfer vs scratch, where the curve flattens, what to use."""
    summary = summarise(points)
    ks = sorted({p.k for p in points})
    lines = []
    transfer = [s for s in TRANSFER if s in summary]
    best_transfer = max(transfer, key=lambda s: statistics.mean(v["mean"] for v in summary[s].values()), default=None)
    if best_transfer and "scratch" in summary:
        gaps = {k: 100 * (summary[best_transfer][k]["mean"] - summary["scratch"][k]["mean"])
                for k in ks if k in summary[best_transfer] and k in summary["scratch"]}
        if gaps:
            first, last = min(gaps), max(gaps)
            if all(g > 2 for g in gaps.values()):
                lines.append(f"Transfer pays off here at every measured size: {best_transfer} beats training from "
                             f"scratch by {gaps[first]:.0f} points with {first} labels per class and by "
                             f"{gaps[last]:.0f} with {last}.")
            elif all(g < -2 for g in gaps.values()):
                lines.append(f"Transfer does not pay off on this data: training from scratch beats {best_transfer} "
                             f"at every measured size (by {-gaps[last]:.0f} points with {last} labels per class). "
                             "The pretrained model's domain may be far from yours; try another model "
                             "(`transferkit rank`).")
            else:
                crossing = next((k for k in sorted(gaps) if gaps[k] <= 2), None)
                lines.append(f"Transfer helps most with few labels: {best_transfer} leads scratch by "
                             f"{gaps[first]:.0f} points with {first} labels per class; from {crossing} labels per "
                             f"class on the two are within 2 points.")
    if best_transfer:
        curve = summary[best_transfer]
        best = max(v["mean"] for v in curve.values())
        enough = min(k for k, v in curve.items() if v["mean"] >= best - PLATEAU_POINTS / 100)
        if enough < max(curve):
            lines.append(f"{best_transfer} reaches within {PLATEAU_POINTS:.0f} point of its best measured accuracy "
                         f"({100 * best:.1f}%) with {enough} labels per class: labeling more than that brought "
                         "little here.")
        else:
            lines.append(f"{best_transfer} was still improving at the largest size measured ({max(curve)} labels per "
                         f"class, {100 * curve[max(curve)]['mean']:.1f}%): more labels are likely to help.")
    ranked = sorted(((v["mean"], s) for s, per_k in summary.items() for k, v in per_k.items() if k == max(ks)),
                    reverse=True)
    if ranked:
        top_acc, top = ranked[0]
        cheaper = [s for a, s in ranked[1:] if a >= top_acc - 0.01 and
                   summary[s][max(ks)]["seconds"] < summary[top][max(ks)]["seconds"]]
        advice = f"With {max(ks)} labels per class use {top} ({100 * top_acc:.1f}%)"
        if cheaper:
            advice += (f", or {cheaper[0]}, within a point and faster "
                       f"({summary[cheaper[0]][max(ks)]['seconds']:.0f} s against "
                       f"{summary[top][max(ks)]['seconds']:.0f} s)")
        lines.append(advice + ".")
    return lines


def curve_for_data(data, strategies: Sequence[str], ks: Sequence[int], seeds: int, *, model: str | None = None,
                   test=None, epochs: int | None = None, on_point: Callable[[CurvePoint], None] | None = None,
                   on_note: Callable[[str], None] | None = None) -> list[CurvePoint]:
    """``learning_curve`` for labeled data as ``fit`` reads it (images or texts, detected), with the default model
    of its kind or ``model``; ``epochs`` sets a network's training for scratch and finetune (images). Copies of an
    item within the data are said through ``on_note``: a copy on both sides of the split inflates accuracy."""
    from .data import is_text_source
    from .data.hygiene import content_keys, duplicate_notes
    from .finetune.tuners import SCRATCH, NetworkTuner
    from .strategies import STRATEGIES, FineTune, Scratch, make_strategy
    from .zoo._registry import DEFAULTS

    text = is_text_source(data)
    unknown = [n for n in strategies if n not in STRATEGIES]
    if unknown:
        raise BadInputError(f"--strategies: unknown {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}.")
    if epochs is not None and text:
        raise BadInputError("--epochs applies to images.")
    if text:
        from . import TextClassifier as cls
    else:
        from . import ImageClassifier as cls  # type: ignore[assignment]
    reader = cls(verbose=False)
    source = reader._read(data, require_labels=True)
    held = reader._read(test, require_labels=True) if test else None

    def make(strategy: str, seed: int):
        chosen = {"finetune": FineTune(tuner=NetworkTuner(epochs=epochs)),
                  "scratch": Scratch(tuner=NetworkTuner(**{**SCRATCH, "epochs": epochs}))}.get(strategy) if epochs \
            else make_strategy(strategy)
        return cls(model or DEFAULTS["text" if text else "image"], chosen, seed=seed, verbose=False)

    keys = content_keys(source.items, make("features", 0)._featurizer().item_key)
    for note in duplicate_notes(source.items, source.labels, keys, "data"):
        if on_note:
            on_note(f"{note}: a copy in the training sample and in the test split inflates accuracy")
    return learning_curve(list(source.items), list(source.labels), ks, seeds, strategies, make,
                          test=(list(held.items), list(held.labels)) if held else None, on_point=on_point)
