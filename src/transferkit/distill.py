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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .heads import LinearHead


@dataclass(frozen=True)
class Distilled:
    """The student's head (None when the teacher is kept), the measurements and one sentence saying why."""

    head: LinearHead | None
    info: dict
    sentence: str


def fit_student(fit_head, x: np.ndarray, y: np.ndarray, pool: np.ndarray, pool_labels: np.ndarray):
    """The student's head: ``fit_head(rows, labels)`` on the labeled rows and the pool's rows with the teacher's
    labels."""
    return fit_head(np.vstack([x, pool]), np.concatenate([y, pool_labels]))


def distill(teacher, student_fit_head, *, x_teacher: np.ndarray, x_student: np.ndarray, y: np.ndarray,
            pool_teacher: np.ndarray, pool_student: np.ndarray, adapt, seed: int = 0, folds: int = 5,
            typical_temperature: float | None = None, progress: bool = False) -> Distilled:
    """A student head on ``x_student`` / ``pool_student`` (the student's features of the labeled and unlabeled items)
    from ``teacher`` (the final teacher head on ``x_teacher`` / ``pool_teacher``), with fold evidence (module
    docstring). ``adapt(head, rows, labels)`` turns a fold's head into that fold's teacher as the final teacher was
    made; ``student_fit_head(rows, labels)`` fits the student's head settings."""
    from sklearn.model_selection import StratifiedKFold

    from .evaluate import accuracy_estimate, fit_temperature, significantly_better
    from .progress import progress_bar

    k = int(max(2, min(folds, np.bincount(y).min())))
    n_classes = int(y.max()) + 1
    splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    with progress_bar("Distilling one network (folds, then the final student)", total=k + 1,
                      enabled=progress) as advance:
        correct = _folds(teacher, student_fit_head, splits, x_teacher, x_student, y, pool_teacher, pool_student,
                         adapt, seed, advance)
        teacher_right, student_right, agree, student_proba = correct
        worse = significantly_better(teacher_right, student_right)
        head = None
        if not worse:
            pool_labels = teacher.predict_proba(pool_teacher).argmax(1)
            head = fit_student(student_fit_head, x_student, y, pool_student, pool_labels)
        advance(1)
    estimate = accuracy_estimate(student_right)
    info = {"kept": not worse, "n_unlabeled": int(len(pool_student)), "folds": k,
            "student_estimate": estimate["accuracy"], "student_interval": estimate["interval"],
            "student_n": estimate["n"], "teacher_fold_accuracy": float(teacher_right.mean()),
            "agreement": float(agree.mean()),
            "student_temperature": fit_temperature(student_proba, y, typical_temperature)}
    measured = (f"{student_right.mean():.3f} against the teacher's {teacher_right.mean():.3f} on {len(y)} held-out "
                f"labels ({k} folds)")
    if head is None:
        return Distilled(None, info, f"the one-network student was significantly less accurate ({measured}), so the "
                                     "teacher is kept")
    info["pseudo_label_counts"] = np.bincount(pool_labels, minlength=n_classes).tolist()
    return Distilled(head, info, f"a one-network student learned the teacher's labels of the {len(pool_student)} "
                                 f"unlabeled items ({measured}: not significantly worse) and is the saved model")


def _folds(teacher, student_fit_head, splits, x_teacher, x_student, y, pool_teacher, pool_student, adapt, seed,
           advance):
    """Per held-out label: whether the fold's teacher and the fold's student get it right, whether they agree, and
    the student's probabilities."""
    n_classes = int(y.max()) + 1
    teacher_right, student_right, agree = np.zeros(len(y), bool), np.zeros(len(y), bool), np.zeros(len(y), bool)
    student_proba = np.zeros((len(y), n_classes))
    for train, test in splits:
        fold_teacher = adapt(teacher.refit(x_teacher[train], y[train], seed), x_teacher[train], y[train])
        teacher_says = fold_teacher.predict_proba(x_teacher[test]).argmax(1)
        teacher_right[test] = teacher_says == y[test]
        labels = fold_teacher.predict_proba(pool_teacher).argmax(1)
        fold_student = fit_student(student_fit_head, x_student[train], y[train], pool_student, labels)
        student_proba[test] = fold_student.predict_proba(x_student[test])
        student_right[test] = student_proba[test].argmax(1) == y[test]
        agree[test] = student_proba[test].argmax(1) == teacher_says
        advance(1)
    return teacher_right, student_right, agree, student_proba
