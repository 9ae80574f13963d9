"""Training runs of the app, each in a child process: the app stays responsive, and cancel stops the process (the
model folder is written atomically, so a cancelled run leaves nothing half-written). The child reports its stage
and progress into the project's database, which the page polls.

After the fit, the run also computes what the cleaner and active learning show: out-of-fold probabilities of every
training example (the head refitted on the other folds, on the model's features) for the most confidently wrong and
the least certain ones, and the model's uncertainty on the unlabeled pool for "label these next".
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
from pathlib import Path

from .project import Project

STRATEGIES = ("auto", "features", "finetune", "scratch")


def start(project: Project, strategy: str = "auto", model: str | None = None, compare_scratch: bool = False) -> int:
    """Start a run in a child process and return its id (refused while another run is going)."""
    from .project import ProjectError

    if strategy not in STRATEGIES:
        raise ProjectError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}.")
    _, labels, _ = project.labeled("train")
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

    modality = project.modality
    cls = ImageClassifier if modality == "image" else TextClassifier
    options = {"backbone" if modality == "image" else "encoder": model} if model else {}
    inputs, labels, ids = project.labeled("train")
    project.set_run(run_id, stage=f"reading {len(inputs)} examples", progress=0.02)
    clf = cls(strategy=strategy, verbose=False, **options)
    pool = [r for r in project.items("pool")]
    pool_inputs = [str(project.root / r["file"]) if r["file"] else r["text"] for r in pool]
    start = time.perf_counter()
    with observe(report):
        clf.fit(inputs, labels, X_unlabeled=pool_inputs or None)  # the pool is learned from where it helps
    out = project.root / "runs" / str(run_id) / "model"
    clf.save(out, overwrite=True)
    result: dict = {"reason": clf.reason_, "strategy": clf.strategy_, "seconds": round(time.perf_counter() - start, 1),
                    "n_train": len(inputs), "classes": clf.classes_.tolist()}
    from ..evaluate import accuracy_estimate, estimate_note, label_free_lines, sample_size_note

    reported = clf.report_.estimate
    notes = []  # how far each number can be trusted, when it rests on few examples
    if reported:
        result.update(accuracy=reported.value, interval=list(reported.interval), n=reported.n, measured=reported.key,
                      name=reported.name)
        notes.append(estimate_note(reported, clf.noun))

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


def model_dir(project: Project, run_id: int) -> Path:
    return project.root / "runs" / str(run_id) / "model"
