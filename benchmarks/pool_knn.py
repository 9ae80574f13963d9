"""Whether a nearest-neighbour part over the labels and the unlabeled pool lifts the model ``auto`` ships with a pool
(#23's in-domain gap): an exploration on frozen features, on seeds the suite does not use (5-9), before anything is
built into ``auto``.

For each cell of ``benchmarks/unlabeled.py`` given, k labels per class and seed, test accuracy of:

- ``default``: the default head on the labels (the side-by-side backbones for images);
- ``teacher``: that head after ``unlabeled.learn_from_pool`` (what ``auto`` keeps with a pool, before distilling);
- ``teacher + spread``: the teacher averaged with scikit-learn's ``LabelSpreading`` (kNN graph, 10 neighbours,
  alpha 0.8) over the labels and the pool, in the teacher's normalised space (for reference);
- ``student without the vote``: the one-backbone student ``distill`` makes, its linear head alone (images only; the
  teacher where distill keeps the teacher);
- ``student``: the student as ``distill`` ships it, voting with its nearest labeled and unlabeled items
  (``LinearHead.neighbours``; the pool's rows carry ``unlabeled.spread_labels``).

A first run (seeds 5-9, an unweighted 10-neighbour vote) measured the vote at +0.4 to +0.9 points over the student
without it in each of the six image cells; the vote now weighs each neighbour by its lead over the eleventh.

    python benchmarks/pool_knn.py oxygen spam:easy --k 5,10 --seeds 5-9
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pool_methods

NEIGHBOURS = 10


def spread(zx, y, zp, n_classes):
    from sklearn.semi_supervised import LabelSpreading

    model = LabelSpreading(kernel="knn", n_neighbors=NEIGHBOURS, alpha=0.8, max_iter=100)
    model.fit(np.vstack([zx, zp]), np.r_[y, -np.ones(len(zp), int)])
    dist = model.label_distributions_
    out = np.zeros((len(dist), n_classes))
    out[:, model.classes_[model.classes_ >= 0]] = dist
    return model, out


def accuracies(x, y, pool, test, y_test, blocks, student_cols) -> dict[str, float]:
    from transferkit.distill import distill
    from transferkit.heads import fit_head
    from transferkit.unlabeled import adapt, learn_from_pool

    n_classes = int(y.max()) + 1
    seed = 0

    def right(proba) -> float:
        return float((proba.argmax(1) == y_test).mean())

    def fit(rows, labels, b=blocks):
        return fit_head(rows, labels, power="auto", blocks=b, seed=seed)

    head = fit(x, y)
    use = learn_from_pool(head, x, y, pool, seed=seed)
    teacher, info = use.head, use.info
    out = {"default": right(head.predict_proba(test)), "teacher": right(teacher.predict_proba(test))}
    labels_view = replace(teacher, mean=head.mean) if info["centred"] else teacher  # labels centred on their own mean
    zx, zp, zt = labels_view.normalise(x), teacher.normalise(pool), teacher.normalise(test)
    model, dist = spread(zx, y, zp, n_classes)
    p_teacher_test = teacher.predict_proba(test)
    out["teacher + spread"] = right((model.predict_proba(zt) + p_teacher_test) / 2)
    if student_cols is None:
        return out
    xs, ps, ts = (a[:, student_cols] for a in (x, pool, test))
    result = distill(teacher, lambda r, lab: fit(r, lab, ()), x_teacher=x, x_student=xs, y=y, pool_teacher=pool,
                     pool_student=ps, adapt=lambda h, a, b: adapt(h, a, b, pool, centred=info["centred"],
                                                                    self_training=info["self_training"], seed=seed),
                     centred=info["centred"], seed=seed)
    if result.head is None:  # the teacher is kept
        return {**out, "student without the vote": out["teacher"], "student": out["teacher"]}
    alone = replace(result.head, neighbours=None, neighbour_proba=None)
    return {**out, "student without the vote": right(alone.predict_proba(ts)),
            "student": right(result.head.predict_proba(ts))}


def main() -> None:
    def measure(cell, x, y, pool, test, y_test, blocks):
        student_cols = slice(0, blocks[0]) if cell["modality"] == "image" else None
        return accuracies(x, y, pool, test, y_test, blocks, student_cols)

    pool_methods.paired_table(*pool_methods.arguments(__doc__), measure,
                              ("default", "teacher", "teacher + spread", "student without the vote", "student"),
                              "A nearest-neighbour vote over labels and pool (`benchmarks/pool_knn.py`)", "pool-knn")


if __name__ == "__main__":
    main()
