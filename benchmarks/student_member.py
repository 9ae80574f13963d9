"""Which backbone the one-network student should be (#23): an exploration on frozen features, on seeds the suite's
tables do not use (5-9), before ``auto`` changes its student.

For each cell of ``benchmarks/unlabeled.py`` given, k labels per class and seed: the test accuracy of the default head
on the four side-by-side backbones (no pool), and of the student ``distill`` makes from the teacher that
``unlabeled.learn_from_pool`` keeps, with each of the four backbones as the student (its linear head and its vote over
the labeled and unlabeled items, as ``auto`` ships it; the teacher where distill keeps the teacher).

    python benchmarks/student_member.py oxygen oxygen->tango tango->oxygen clipart fashion --k 5,10 --seeds 5-9

The run at f711d4a (``results/student-member-amd-epyc.md``) keeps EfficientNet-Lite0, the default backbone, as the
student. Averaged over the ten cells, student minus default: Lite0 +2.3, Lite1 +2.5, Lite2 +2.1, MobileNetV2 +2.4.
MobileNetV2, the cheapest, led on the icon cells (an earlier run on them alone suggested it) but lost 2.1 and 2.8
points on drawings (``clipart``); Lite1 costs 1.3 times Lite0 for 0.2 points on average. In-domain, every student
is up to 1.5 points below the four backbones side by side without the pool (clipart and fashion at k = 10).
"""

from __future__ import annotations

import numpy as np
import pool_methods

MEMBERS = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenet_v2")


def accuracies(cell, x, y, pool, test, y_test, blocks) -> dict[str, float]:
    """``pool_methods.paired_table``'s measure (``cell`` unused: every cell is an image cell)."""
    from transferkit.distill import distill
    from transferkit.heads import block_bounds, fit_head
    from transferkit.unlabeled import adapt, learn_from_pool

    seed = 0

    def right(proba) -> float:
        return float((proba.argmax(1) == y_test).mean())

    head = fit_head(x, y, power="auto", blocks=blocks, seed=seed)  # the default: Features() on the four side by side
    use = learn_from_pool(head, x, y, pool, seed=seed)
    teacher, info = use.head, use.info
    out = {"default": right(head.predict_proba(test))}
    kept_teacher = right(teacher.predict_proba(test))
    for name, (start, stop) in zip(MEMBERS, block_bounds(blocks, x.shape[1])):
        xs, ps, ts = (a[:, start:stop] for a in (x, pool, test))
        result = distill(teacher, lambda r, lab: fit_head(r, lab, power="auto", unit_rows=True, seed=seed),
                         x_teacher=x, x_student=xs,
                         y=y, pool_teacher=pool, pool_student=ps,
                         adapt=lambda h, a, b: adapt(h, a, b, pool, centred=info["centred"],
                                                     self_training=info["self_training"], seed=seed),
                         centred=info["centred"], seed=seed)
        out[name] = kept_teacher if result.head is None else right(result.head.predict_proba(ts))
    return out


def main() -> None:
    pool_methods.paired_table(*pool_methods.arguments(__doc__), accuracies, ("default", *MEMBERS),
                              "Each side-by-side backbone as the student (`benchmarks/student_member.py`)",
                              "student-member", MEMBERS)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
