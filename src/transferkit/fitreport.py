"""What a fit reports, as one type that every surface renders: the CLI's line and ``--json``, the model card, the
app, the server's ``/model``, an export's manifest, ``predict``'s reading of the accuracy on unlabeled items.

The strategies record what they measured as a flat mapping (``metrics``: accuracies, intervals, sample sizes,
temperatures, timings), saved as it is in a model folder's ``report.json``. This module is the one place that reads
its keys: everything else asks a :class:`FitReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The accuracies a fit can record, most telling first: (value key, interval key, sample-size key, name, how it was
# measured). The first one present is the number a fit reports (``FitReport.estimate``).
MEASURES = (("student_estimate", "student_interval", "student_n", "estimated accuracy",
             "held-out accuracy of the one-network student (each fold's teacher labeled the unlabeled items from the "
             "other folds)"),
            ("accuracy_estimate", "estimate_interval", "probe_cv_n", "estimated accuracy",
             "estimated accuracy of the tuned model"),
            ("cv_estimate", "cv_estimate_interval", "cv_n", "estimated accuracy",
             "estimated accuracy (cross-validation read from its calibrated probabilities, corrected for its "
             "smaller training folds)"),
            ("val_accuracy", "val_interval", "n_val", "validation accuracy", "accuracy on a held-out validation split"),
            ("cv_accuracy", "cv_interval", "cv_n", "cross-validated accuracy", "cross-validated accuracy"),
            # several labels per item, and numbers (``shapes``): what they are judged by; a tuned network on the
            # items it never trained on first
            ("val_micro_f1", "val_micro_f1_interval", "n_val", "validation micro-F1",
             "micro-F1 on a held-out validation split the tuned network never trained on"),
            ("val_r2", "val_r2_interval", "n_val", "validation R²",
             "R² on a held-out validation split the tuned network never trained on"),
            ("micro_f1", "micro_f1_interval", "cv_n", "cross-validated micro-F1",
             "micro-F1 over every item's labels, each fold judged at thresholds chosen on the other folds"),
            ("r2", "r2_interval", "cv_n", "cross-validated R²", "R² of the numbers predicted for held-out folds"))
# fitted to a student's folds, to the folds, or to a trained network's split
TEMPERATURES = ("student_temperature", "cv_temperature", "val_temperature")


@dataclass(frozen=True)
class Accuracy:
    """One accuracy a fit measured: the value, its 95% interval, the sample size behind it, a short name and how it
    was measured. ``key`` names the measure (``cv_estimate``, ``val_accuracy``, ...)."""

    value: float
    interval: tuple[float, float]
    n: int | None
    name: str
    how: str
    key: str
    folds: int | None = None  # cross-validation: how many folds

    def to_dict(self) -> dict:
        return {"accuracy": self.value, "interval": list(self.interval), "n": self.n, "name": self.name,
                "how": self.how, "measure": self.key, **({"folds": self.folds} if self.folds else {})}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FitReport:
    """A fit's account of itself. ``metrics`` holds every measurement as recorded (``report.json``); the properties
    are what the surfaces show."""

    strategy: str | None = None
    reason: str = ""
    metrics: dict = field(default_factory=dict)
    skipped: tuple = ()  # (item, why) of inputs that could not be read
    notes: tuple = ()  # what the data reader noticed (duplicates, decoding)
    train_digests: tuple = ()  # content digests of the training items (a copy of one among test items is noted)

    @classmethod
    def from_dict(cls, report: dict | None) -> FitReport:
        """From a model folder's ``report.json`` (or an export's ``model`` entry); missing parts are empty."""
        report = report or {}
        metrics = report.get("metrics")
        return cls(report.get("strategy"), str(report.get("reason") or ""),
                   dict(metrics) if isinstance(metrics, dict) else {},
                   tuple(tuple(s) for s in report.get("skipped") or [] if isinstance(s, (list, tuple)) and len(s) == 2),
                   tuple(str(n) for n in report.get("notes") or []),
                   tuple(d for d in report.get("train_digests") or [] if isinstance(d, str)))

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "reason": self.reason, "metrics": self.metrics,
                "skipped": [[str(p), why] for p, why in self.skipped], "notes": list(self.notes),
                "train_digests": list(self.train_digests)}

    # -- what a fit measured -----------------------------------------------------------------------------------------
    @property
    def measured(self) -> list[Accuracy]:
        """Every accuracy the fit recorded, most telling first."""
        m = self.metrics
        out = []
        for key, interval, n, name, how in MEASURES:
            if _number(m.get(key)):
                span = m.get(interval) if isinstance(m.get(interval), (list, tuple)) and len(m[interval]) == 2 else None
                out.append(Accuracy(float(m[key]), tuple(span) if span else (0.0, 1.0), m.get(n), name, how, key,
                                    m.get("cv_folds") if key == "cv_accuracy" else None))
        return out

    def measure(self, key: str) -> Accuracy | None:
        """One accuracy the fit measured, by its measure's name (``cv_accuracy``, ``val_accuracy``, ...)."""
        return next((a for a in self.measured if a.key == key), None)

    @property
    def val_correct(self) -> list[bool]:
        """Which items of the validation split the tuned model got right (what ``auto`` compares)."""
        return [bool(v) for v in self.metrics.get("val_correct") or []]

    @property
    def estimate(self) -> Accuracy | None:
        """The accuracy the fit reports: the most telling one it measured (models saved before ``cv_estimate``
        existed report their cross-validated accuracy); None when too few labels were held out for any."""
        measured = self.measured
        return measured[0] if measured else None

    @property
    def temperature(self) -> float | None:
        """The temperature the model's confidence is read with on unlabeled items (``evaluate.label_free_estimate``),
        if the fit recorded one."""
        for key in TEMPERATURES:
            if _number(self.metrics.get(key)):
                return float(self.metrics[key])
        return None

    def estimate_detail(self) -> str:
        """How the reported estimate was measured, with its sample sizes, in a few words."""
        r, m = self.estimate, self.metrics
        if r is None:
            return "too few labels to hold any out"
        folds = m.get("cv_folds")
        if r.key == "student_estimate":
            student = m.get("student") if isinstance(m.get("student"), dict) else {}
            return (f"{student.get('folds')}-fold cross-validation: each fold's student learned the other folds' "
                    f"teacher's labels of the unlabeled items, and was tested on labels it never saw ({r.n} in all)")
        if r.key == "accuracy_estimate":
            return f"frozen features cross-validated over {r.n} labels, plus tuning's gain on {m.get('n_val')} held out"
        if r.key == "cv_estimate":
            calibrated = m.get("cv_calibrated")
            return (f"{folds}-fold cross-validation over {r.n} labels measured {m.get('cv_accuracy', float('nan')):.3f}"
                    + (f" ({calibrated:.3f} from its calibrated probabilities)" if _number(calibrated) else "")
                    + f", each fold trained on {(folds or 2) - 1}/{folds} of them")
        if r.key == "val_accuracy":
            return f"{r.n} held out"
        return f"{folds}-fold cross-validation over {r.n} labels"

    def essentials(self) -> dict:
        """The measurements the estimate and the temperature are read from: what an export carries."""
        keys = {key for row in MEASURES for key in row[:3]} | set(TEMPERATURES) | {"cv_folds"}
        return {k: v for k, v in self.metrics.items() if k in keys}

    # -- counts and timings ------------------------------------------------------------------------------------------
    def _get(self, key: str, kind=float):
        value = self.metrics.get(key)
        return kind(value) if _number(value) else None

    def _part(self, key: str, kind: type = dict):
        """A recorded part of the fit (``kind``: dict or str), None where it is missing or not of that kind."""
        value = self.metrics.get(key)
        return value if isinstance(value, kind) else None

    @property
    def fit_seconds(self) -> float | None:
        return self._get("fit_seconds")

    @property
    def items_per_second(self) -> float | None:
        """How fast the featurizer extracted features during the fit."""
        return self._get("features_per_second")

    @property
    def n_train(self) -> int | None:
        return self._get("n_train", int)

    @property
    def n_val(self) -> int | None:
        return self._get("n_val", int)

    @property
    def val_accuracy(self) -> float | None:
        return self._get("val_accuracy")

    @property
    def epochs_run(self) -> int | None:
        return self._get("epochs_run", int)

    def n_items(self, noun: str) -> int | None:
        """Labeled ``noun``s (image, text) the fit read."""
        return self._get(f"n_{noun}s", int) or self.n_train

    @property
    def class_counts(self) -> dict[str, int]:
        counts = self.metrics.get("class_counts")
        return {str(c): int(k) for c, k in counts.items()} if isinstance(counts, dict) else {}

    @property
    def auto_choice(self) -> str | None:
        """What ``auto`` chose (features, finetune, scratch), for its fits."""
        return self._part("auto_choice", str)

    @property
    def unlabeled(self) -> dict | None:
        """What the fit did with unlabeled items (how many; whether it centred on them, drew their labels to their own
        clusters or self-trained on them), if any."""
        return self._part("unlabeled")

    @property
    def teacher(self) -> str | None:
        """What taught the one-network student (the side-by-side backbones' description), if one was distilled."""
        return self._part("teacher", str)

    @property
    def open_set(self) -> dict | None:
        """What the fit measured of telling items of no trained class (``OpenSet.describe``), if it did."""
        return self._part("open_set")

    @property
    def student(self) -> dict | None:
        """The one-network student's measurements (``distill``), if the fit distilled one; ``distilled: False`` when
        the pool left the teacher unchanged and none was made."""
        return self._part("student")

    @property
    def tuner(self) -> dict | None:
        """The options a tuned or trained network used."""
        return self._part("tuner")

    def summary(self) -> dict[str, Any]:
        """What ``fit --json`` prints besides the model's path and classes: the typed fields, then every
        measurement as recorded (flat, as in report.json)."""
        estimate = self.estimate
        return {"strategy": self.strategy, "reason": self.reason, "skipped": [[str(p), w] for p, w in self.skipped],
                "estimate": estimate.to_dict() if estimate else None, "temperature": self.temperature,
                **self.metrics}
