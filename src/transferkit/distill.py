"""One fast network from auto's side-by-side teacher: knowledge distillation on the unlabeled items.

For images, ``auto``'s best frozen representation is usually the zoo's backbones side by side (``Concat``): a teacher
that predicts at the cost of all of them. Given unlabeled items, the default backbone alone (the student) learns what
the teacher says about them: a head on the student's own features, fitted to the labeled items and to the teacher's
most probable class for every unlabeled item (distillation at a temperature near zero: Hinton, Vinyals & Dean 2015;
a student trained on its teacher's labels of an unlabeled pool: Xie et al. 2020, Noisy Student). The teacher is the
head ``unlabeled.learn_from_pool`` adapted to the pool, so under a shift it labels the pool as items of the pool's
source. The student predicts, exports and serves at one backbone's cost.

It is kept unless, fold by fold, it is right significantly less often than the teacher on held-out labels (McNemar's
exact test, ``evaluate.significantly_better``): each fold's teacher is fitted on the other folds and adapted as the
final one was, it labels the unlabeled items, and the fold's student learns from those; neither sees the held-out
labels. The student's estimate is that held-out accuracy.

The student also votes with its nearest neighbours (``LinearHead.neighbours``): in its own feature space, the labeled
items (their labels) and the unlabeled ones (the teacher's probabilities averaged with label spreading's in the
teacher's space, ``unlabeled.spread_labels``). Its probabilities are the mean of the linear head's and the vote's.
Each fold's student votes the same way, so the held-out accuracy is the saved model's. The vote is kept unless the
student without it is significantly more often right on the held-out labels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .heads import NEIGHBOURS

if TYPE_CHECKING:
    from .heads import LinearHead


@dataclass(frozen=True)
class Distilled:
    """The student's head (None when the teacher is kept), the measurements and one sentence saying why."""

    head: LinearHead | None
    info: dict
    sentence: str


def fit_student(fit_head, x: np.ndarray, y: np.ndarray, pool: np.ndarray, teacher_proba: np.ndarray,
                spread_proba: np.ndarray):
    """The student's head: ``fit_head(rows, labels)`` on the labeled rows and the pool's rows with the teacher's most
    probable class (``teacher_proba``), voting with those rows: the labels' own classes, the pool's
    ``spread_proba`` (``unlabeled.spread_labels``)."""
    head = fit_head(np.vstack([x, pool]), np.concatenate([y, teacher_proba.argmax(1)]))
    onehot = np.eye(spread_proba.shape[1])[y]
    return head.with_neighbours(np.vstack([x, pool]), np.vstack([onehot, spread_proba]))


def distill(teacher, student_fit_head, *, x_teacher: np.ndarray, x_student: np.ndarray, y: np.ndarray,
            pool_teacher: np.ndarray, pool_student: np.ndarray, adapt, centred: bool = False, clusters: bool = False,
            seed: int = 0, folds: int = 5, typical_temperature: float | None = None,
            progress: bool = False) -> Distilled:
    """A student head on ``x_student`` / ``pool_student`` (the student's features of the labeled and unlabeled items)
    from ``teacher`` (the final teacher head on ``x_teacher`` / ``pool_teacher``), with fold evidence (module
    docstring). ``adapt(head, rows, labels)`` turns a fold's head into that fold's teacher as the final teacher was
    made; ``centred``: whether it centres the pool on its own mean (``unlabeled.adapt``); ``clusters``: whether the
    pool's labels are drawn to its own clusters (``unlabeled.spread_labels``);
    ``student_fit_head(rows, labels)`` fits the student's head settings."""
    from sklearn.model_selection import StratifiedKFold

    from .evaluate import accuracy_estimate, fit_temperature, significantly_better
    from .progress import progress_bar
    from .unlabeled import spread_labels

    k = int(max(2, min(folds, np.bincount(y).min())))
    n_classes = int(y.max()) + 1
    splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    with progress_bar("Distilling one network (folds, then the final student)", total=k + 1,
                      enabled=progress) as advance:
        fold = _folds(teacher, student_fit_head, splits, x_teacher, x_student, y, pool_teacher, pool_student, adapt,
                      centred, clusters, seed, advance)
        # the vote is kept unless the student without it is significantly better on the held-out labels: it was
        # better in every image cell of transferkit's unlabeled suite (benchmarks/pool_knn.py, results/)
        vote = not significantly_better(fold.right[False], fold.right[True])
        student_right, student_proba = fold.right[vote], fold.proba[vote]
        worse = significantly_better(fold.teacher_right, student_right)
        head = None
        if not worse:
            teacher_proba = teacher.predict_proba(pool_teacher)
            spread = spread_labels(teacher, x_teacher, y, pool_teacher, centred=centred, clusters=clusters)
            head = fit_student(student_fit_head, x_student, y, pool_student, teacher_proba, spread)
            head = head if vote else replace(head, neighbours=None, neighbour_proba=None)
        advance(1)
    estimate = accuracy_estimate(student_right)
    teacher_right = fold.teacher_right
    info = {"kept": not worse, "n_unlabeled": int(len(pool_student)), "folds": k,
            "student_estimate": estimate["accuracy"], "student_interval": estimate["interval"],
            "student_n": estimate["n"], "teacher_fold_accuracy": float(teacher_right.mean()),
            "agreement": float((student_proba.argmax(1) == fold.teacher_says).mean()),
            "student_temperature": fit_temperature(student_proba, y, typical_temperature),
            "vote": {"kept": vote, "fold_accuracy_with": float(fold.right[True].mean()),
                     "fold_accuracy_without": float(fold.right[False].mean())}}
    measured = (f"{student_right.mean():.3f} against the teacher's {teacher_right.mean():.3f} on {len(y)} held-out "
                f"labels ({k} folds)")
    if head is None:
        return Distilled(None, info, f"the one-network student was significantly less accurate ({measured}), so the "
                                     "teacher is kept")
    info["pseudo_label_counts"] = np.bincount(teacher_proba.argmax(1), minlength=n_classes).tolist()
    info["neighbours"] = int(len(head.neighbours)) if head.neighbours is not None else 0
    how = (f"votes with its {NEIGHBOURS} nearest of the {info['neighbours']} labeled and unlabeled items" if vote else
           f"does not vote with its nearest items (without the vote {fold.right[False].mean():.3f}, with it "
           f"{fold.right[True].mean():.3f}: significantly better without)")
    return Distilled(head, info, f"a one-network student learned the teacher's labels of the {len(pool_student)} "
                                 f"unlabeled items, {how} ({measured}: not significantly worse) and is the saved model")


@dataclass(frozen=True)
class FoldEvidence:
    """Per held-out label: what the fold's teacher says and whether it is right; the fold's student's probabilities
    and whether it is right, with its nearest-neighbour vote (``True``) and without (``False``)."""

    teacher_says: np.ndarray
    teacher_right: np.ndarray
    proba: dict[bool, np.ndarray]
    right: dict[bool, np.ndarray]


def _folds(teacher, student_fit_head, splits, x_teacher, x_student, y, pool_teacher, pool_student, adapt, centred,
           clusters, seed, advance) -> FoldEvidence:
    """Each fold's teacher and student (with and without the vote) on the fold's held-out labels."""
    from .unlabeled import spread_labels

    n_classes = int(y.max()) + 1
    says = np.zeros(len(y), int)
    proba = {v: np.zeros((len(y), n_classes)) for v in (True, False)}
    for train, test in splits:
        fold_teacher = adapt(teacher.refit(x_teacher[train], y[train], seed), x_teacher[train], y[train])
        says[test] = fold_teacher.predict_proba(x_teacher[test]).argmax(1)
        spread = spread_labels(fold_teacher, x_teacher[train], y[train], pool_teacher, centred=centred,
                               clusters=clusters)
        voting = fit_student(student_fit_head, x_student[train], y[train], pool_student,
                             fold_teacher.predict_proba(pool_teacher), spread)
        for vote, head in ((True, voting), (False, replace(voting, neighbours=None, neighbour_proba=None))):
            proba[vote][test] = head.predict_proba(x_student[test])
        advance(1)
    return FoldEvidence(says, says == y, proba, {v: p.argmax(1) == y for v, p in proba.items()})
