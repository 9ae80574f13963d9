"""Training runs of the app, each in a child process: the app stays responsive, and cancel stops the process (the
model folder is written atomically, so a cancelled run leaves nothing half-written). The child reports its stage
and progress into the project's database, which the page polls.

After the fit, the run also computes what the cleaner and active learning show: out-of-fold outputs of every
training example (the head refitted on the other folds, on the model's features) for the most confidently wrong and
the least certain ones, and the model's uncertainty on the unlabeled pool for "label these next". Several labels:
"wrong" is the label given (or left out) most confidently against the model, "unsure" the label closest to its
threshold; numbers: "wrong" is the farthest from the number the model gives it (a regressor has no confidence, so
numbers have no "unsure" or "next").
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
from pathlib import Path

from .project import SEPARATOR, Project

STRATEGIES = ("auto", "features", "finetune", "scratch")
MIN_SHAPE_EXAMPLES = 5  # several labels or numbers: one per cross-validation fold at least


def start(project: Project, strategy: str = "auto", model: str | None = None, compare_scratch: bool = False) -> int:
    """Start a run in a child process and return its id (refused while another run is going)."""
    from .project import ProjectError

    if strategy not in STRATEGIES:
        raise ProjectError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}.")
    _, labels, _ = project.labeled("train")
    task = project.task
    if task != "class":
        what = "several labels per example" if task == "labels" else "numbers"
        if strategy == "scratch":
            raise ProjectError(f"For {what}, choose the strategy auto, features or finetune, not scratch.")
        if compare_scratch:
            raise ProjectError(f"Comparing with training from scratch is for one class per example, not {what}.")
        if len(labels) < MIN_SHAPE_EXAMPLES:
            raise ProjectError(f"Training needs at least {MIN_SHAPE_EXAMPLES} labeled examples in train (now: "
                               f"{len(labels)}).")
    else:
        counts = {c: labels.count(c) for c in set(labels)}
        if len(counts) < 2 or min(counts.values()) < 2:
            raise ProjectError("Training needs at least two classes with at least two examples each in train "
                               f"(now: {', '.join(f'{c}: {n}' for c, n in sorted(counts.items())) or 'none'}).")
    run_id = project.new_run(strategy)
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_child, args=(str(project.root), run_id, strategy, model, compare_scratch),
                              daemon=False, name=f"transferkit-run-{run_id}")  # fine-tuning starts data workers
    process.start()
    project.set_run(run_id, pid=process.pid)
    _children[run_id] = process
    return run_id


_children: dict[int, multiprocessing.process.BaseProcess] = {}


def cancel(project: Project, run_id: int) -> None:
    run = project.run(run_id)
    if run["status"] != "running":
        return
    process = _children.pop(run_id, None)
    if process is not None:
        process.terminate()
        process.join(timeout=10)
    elif run["pid"]:
        try:
            os.kill(run["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    project.set_run(run_id, status="cancelled", finished=time.time(), stage="cancelled")


def stop_all(project: Project) -> None:
    """The app is stopping: its runs stop too (they would be marked failed when it starts again anyway)."""
    for run_id in list(_children):
        cancel(project, run_id)


def reap(project: Project) -> None:
    """Runs whose process is gone without saying so (the app was stopped, the process killed) are marked failed."""
    for run in project.runs():
        if run["status"] != "running":
            continue
        process = _children.get(run["id"])
        alive = process.is_alive() if process is not None else _pid_alive(run["pid"])
        if not alive:
            _children.pop(run["id"], None)
            project.set_run(run["id"], status="failed", finished=time.time(), stage="stopped",
                            result={"error": "The training process stopped without finishing (the app was closed or "
                                             "the process killed). Train again."})


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _child(root: str, run_id: int, strategy: str, model: str | None, compare_scratch: bool) -> None:
    project = Project(root)
    try:
        result = _train(project, run_id, strategy, model, compare_scratch)
        project.set_run(run_id, status="done", finished=time.time(), stage="done", progress=1.0,
                        model=f"runs/{run_id}/model", result=result)
    except BaseException as exc:  # the run fails with its reason; the app itself carries on
        from ..errors import TransferkitError

        message = str(exc) if isinstance(exc, TransferkitError) else f"{type(exc).__name__}: {exc}"
        project.set_run(run_id, status="failed", finished=time.time(), stage="failed",
                        result={"error": message, "detail": traceback.format_exc(limit=3)[-2000:]})


def _train(project: Project, run_id: int, strategy: str, model: str | None, compare_scratch: bool) -> dict:
    import numpy as np

    from .. import ImageClassifier, TextClassifier
    from ..features import extract
    from ..heads import cross_val_proba
    from ..progress import observe

    last = [0.0]

    def report(description: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.3 or done >= total:
            last[0] = now
            project.set_run(run_id, stage=f"{description} ({done}/{total})",
                            progress=round(0.05 + 0.8 * done / max(total, 1), 3))

    modality, task = project.modality, project.task
    cls = ImageClassifier if modality == "image" else TextClassifier
    options = {"backbone" if modality == "image" else "encoder": model} if model else {}
    inputs, labels, ids = project.labeled("train")
    project.set_run(run_id, stage=f"reading {len(inputs)} examples", progress=0.02)
    clf = cls(strategy=strategy, verbose=False, task=task, **options)
    pool = [r for r in project.items("pool")]
    pool_inputs = [str(project.root / r["file"]) if r["file"] else r["text"] for r in pool]
    start = time.perf_counter()
    pooled = bool(pool_inputs) and task == "class"
    with observe(report):  # the pool is learned from where it helps (one class per example)
        clf.fit(inputs, labels, X_unlabeled=pool_inputs if pooled else None,
                unlabeled_has_others=pooled and project.pool_has_others)
    out = project.root / "runs" / str(run_id) / "model"
    clf.save(out, overwrite=True)
    result: dict = {"reason": clf.reason_, "strategy": clf.strategy_, "seconds": round(time.perf_counter() - start, 1),
                    "n_train": len(inputs), "classes": clf.classes_.tolist()}
    from ..evaluate import accuracy_estimate, estimate_note, label_free_lines, sample_size_note

    reported = clf.report_.estimate
    notes = []  # how far each number can be trusted, when it rests on few examples
    result["task"] = task
    if reported:
        result.update(accuracy=reported.value, interval=list(reported.interval), n=reported.n, measured=reported.key,
                      name=reported.name)
        if task == "class":
            notes.append(estimate_note(reported, clf.noun))
    if task != "class":
        project.set_run(run_id, stage="finding suspicious labels", progress=0.88)
        return _finish_shape(project, run_id, clf, result, (inputs, labels, ids), pool, pool_inputs)

    project.set_run(run_id, stage="finding suspicious labels", progress=0.88)
    extraction = extract(clf.featurizer_, inputs, use_cache=True)
    classes = clf.classes_.tolist()
    y = np.array([classes.index(label) for label in np.asarray(labels, dtype=object)[extraction.ok]])
    kept = [i for i, ok in zip(ids, extraction.ok) if ok]
    head = clf.head_
    proba, _ = cross_val_proba(head.refit, extraction.features, y)
    suggestions = []
    for item, p, truth in zip(kept, proba, y):
        guess = int(p.argmax())
        if guess != truth:  # confidently wrong: the model's confidence in another class
            suggestions.append((item, "wrong", classes[guess], float(p[guess]), float(p[guess])))
        top2 = np.sort(p)[-2:]
        suggestions.append((item, "unsure", classes[guess], float(p[guess]), float(1 - (top2[1] - top2[0]))))

    if pool:
        project.set_run(run_id, stage=f"ranking {len(pool)} unlabeled examples", progress=0.93)
        p_pool = clf.predict_proba(pool_inputs)
        result["pool"] = clf.predictor().label_free(p_pool)  # the accuracy on them, read from the model's confidence
        notes += label_free_lines(result["pool"], f"unlabeled {clf.noun}")
        for row, p in zip(pool, p_pool):
            top2 = np.sort(p)[-2:]
            suggestions.append((row["id"], "next", classes[int(p.argmax())], float(p.max()),
                                float(1 - (top2[1] - top2[0]))))
    project.save_suggestions(run_id, suggestions)

    test_inputs, test_labels, _ = project.labeled("test")
    if test_inputs:
        project.set_run(run_id, stage=f"testing on {len(test_inputs)} examples", progress=0.96)
        correct = np.asarray(clf.predict(test_inputs), dtype=object) == np.asarray(test_labels, dtype=object)
        estimate = accuracy_estimate(correct)
        result["test"] = {"accuracy": float(correct.mean()), "interval": estimate["interval"], "n": len(test_inputs)}
        notes.append(sample_size_note(len(test_inputs), estimate["interval"], "test examples"))
    result["notes"] = [note for note in notes if note]
    if compare_scratch:
        project.set_run(run_id, stage="training from scratch, to compare", progress=0.97)
        scratch = cls(strategy="scratch", verbose=False, **options).fit(inputs, labels)
        measured = scratch.report_.estimate
        result["scratch"] = {"accuracy": measured.value if measured else None,
                             "measured": measured.name if measured else None, "n": measured.n if measured else None}
        if test_inputs:
            correct = np.asarray(scratch.predict(test_inputs), dtype=object) == np.asarray(test_labels, dtype=object)
            result["scratch"]["test_accuracy"] = float(correct.mean())
    return result


def _finish_shape(project: Project, run_id: int, clf, result: dict, train: tuple, pool: list,
                  pool_inputs: list) -> dict:
    """Several labels or numbers: the suggestions from out-of-fold outputs, the pool's uncertain examples (several
    labels), and the scores on the test examples."""
    import numpy as np

    from ..evaluate import evaluate
    from ..features import extract
    from ..shapes import folds_of, out_of_fold

    inputs, labels, ids = train
    predictor = clf.predictor()
    names = predictor.classes.tolist()
    extraction = extract(clf.featurizer_, inputs, use_cache=True)
    kept = [i for i, ok in zip(ids, extraction.ok) if ok]
    given = [lab for lab, ok in zip(labels, extraction.ok) if ok]
    if predictor.kind == "labels":
        target = np.array([[name in set(lab) for name in names] for lab in given], dtype=int)
    else:
        target = np.array(given, dtype=np.float64)
    outputs = out_of_fold(clf.head_.refit, extraction.features, target, folds_of(len(kept), clf.seed))
    answers = predictor.answers(outputs)
    suggestions = []
    if predictor.kind == "labels":
        thresholds = predictor.thresholds
        for item, row, truth, answer in zip(kept, outputs, target, answers):
            against = np.abs(truth - row)  # how confidently each label given (or left out) is contradicted
            shown = SEPARATOR.join(answer) or "no label"
            if set(answer) != {n for n, t in zip(names, truth) if t}:
                suggestions.append((item, "wrong", shown, float(against.max()), float(against.max())))
            suggestions.append((item, "unsure", shown, None, float(1 - np.abs(row - thresholds).min())))
        if pool:
            project.set_run(run_id, stage=f"ranking {len(pool)} unlabeled examples", progress=0.93)
            p_pool = clf.predict_proba(pool_inputs)
            for row, p, answer in zip(pool, p_pool, predictor.answers(p_pool)):
                suggestions.append((row["id"], "next", SEPARATOR.join(answer) or "no label", None,
                                    float(1 - np.abs(p - thresholds).min())))
    else:
        spread = float(target.std()) or 1.0
        for item, row, truth in zip(kept, outputs[:, 0], target):
            suggestions.append((item, "wrong", f"{row:.4g}", None, float(abs(row - truth) / spread)))
    project.save_suggestions(run_id, suggestions)

    test_inputs, test_labels, _ = project.labeled("test")
    if test_inputs:
        project.set_run(run_id, stage=f"testing on {len(test_inputs)} examples", progress=0.96)
        measured = evaluate(clf, test_inputs, test_labels).metrics
        key = "micro_f1" if predictor.kind == "labels" else "r2"
        result["test"] = {"accuracy": measured[key], "interval": [v if np.isfinite(v) else None  # too few to say
                                                                  for v in measured[f"{key}_interval"]],
                          "n": len(test_inputs), "name": "micro-F1" if key == "micro_f1" else "R²"}
    result["notes"] = []
    return result


def model_dir(project: Project, run_id: int) -> Path:
    return project.root / "runs" / str(run_id) / "model"
