"""Beyond one process: bulk prediction and feature extraction on Ray Data (``map_batches`` with an actor pool).

Each actor loads the model (or featurizer) once and predicts the batches Ray Data hands it; the driver receives the
results as they are ready and appends them to the output with the same resumable writer as one process
(``transferkit.bulk``): rows already written are skipped, a killed worker's batch is run again by Ray (actors are
restarted, their tasks retried), and nothing is written twice. Ray schedules; transferkit only says what to run.

On a cluster: start Ray on every machine (``ray start --head`` on one, ``ray start --address HEAD:6379`` on the
others), put the model folder and the data where every machine reads them at the same path (a shared file system),
and pass ``--ray-address auto`` (or the head's address). Without an address, a local cluster is started for the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def _ray():
    """Ray, or a clear error saying how to install it."""
    from .extras import require

    require("ray")
    import ray
    import ray.data  # noqa: F401

    return ray


def _init(address: str | None, workers: int) -> None:
    ray = _ray()

    ray.data.DataContext.get_current().enable_progress_bars = False  # transferkit shows its own progress
    if ray.is_initialized():
        return
    _check_address_space()
    options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        _check_reachable(address)
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=max(workers, 1), **options)


CONNECT_TIMEOUT_S = 10.0
MIN_ADDRESS_SPACE = 16 << 30  # Ray maps its shared-memory object store and its workers' heaps into this


def _check_address_space() -> None:
    """Refuse, with the fix, a process whose address space is capped (``ulimit -v``) below what Ray maps: Ray then
    aborts in native code with a stack dump instead of an error."""
    import resource

    from .errors import BadInputError

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and soft < MIN_ADDRESS_SPACE:
        raise BadInputError(f"--engine ray needs at least {MIN_ADDRESS_SPACE >> 30} GiB of address space to map its "
                            f"object store, and this process is limited to {soft / 2**30:.1f} GiB (ulimit -v). Raise "
                            "the limit (ulimit -v unlimited) or predict with the default local engine.")


def _check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse an address nothing answers at within ``timeout``: Ray itself retries an unreachable cluster for minutes.
    ``auto`` is Ray's own look-up of a cluster started on this machine and is left to it."""
    import socket

    from .errors import BadInputError

    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInputError(f"--ray-address {address!r}: give HOST:PORT of the cluster's head (e.g. 10.0.0.5:6379), "
                            "ray://HOST:PORT, or auto.")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise BadInputError(f"No Ray cluster answers at {address} ({exc.strerror or exc}, waited up to {timeout:g} s). "
                            "Start one with `ray start --head` there, pass its address, or leave out --ray-address to "
                            "start a local one for this run.") from None


class _PredictActor:
    """One loaded model per actor (a Predictor, or an ONNX export's OnnxPredictor)."""

    def __init__(self, model: str, runtime: str, top: int, marker: str | None = None, reject: float | None = None,
                 unknown: str = "unknown") -> None:
        from .bulk import columns
        from .loading import load_predictor

        self.predictor = load_predictor(model, runtime=runtime)  # a model folder on onnx: its export in the cache
        if self.predictor.runtime == "torch":
            self.predictor.use_cache = False
        self.key = "text" if self.predictor.modality == "text" else "file"
        self.classes = self.predictor.classes.tolist()
        self.top = min(top, len(self.classes))
        self.reject, self.unknown = reject, unknown
        self.predictor.check_reject(reject)
        self.kind = self.predictor.kind  # one class, several labels, or a number (``bulk.columns``)
        self.columns = columns(self.classes, self.key, self.top, rejecting=reject is not None, kind=self.kind)
        if marker:  # tests: say where this actor runs (so one can be killed mid-run) and on what
            ran_on = f"{self.predictor.runtime} {getattr(self.predictor, 'graph', '')}".strip()
            Path(marker, f"{os.getpid()}.pid").write_text(ran_on)

    def __call__(self, batch: dict) -> dict:
        from .bulk import rows_for, shape_rows

        items = [str(i) for i in batch["item"]]
        proba, known, scores, ok, skipped = self.predictor.predict_open(items, self.reject)
        readable = [i for i, k in zip(items, ok) if k]
        rows = (shape_rows(readable, proba, self.predictor, self.key) if self.kind != "class" else
                rows_for(readable, proba, self.classes, self.key, self.top, known, scores, self.unknown))
        rows += [{self.key: str(i), "error": why} for i, why in skipped]
        return {c: np.array([_cell(r.get(c)) for r in rows], dtype=object) for c in self.columns}


def _cell(value):
    return "" if value is None else value


def predict_with_ray(model: str | Path, items: Sequence, out: str | Path, *, workers: int = 2, top: int = 1,
                     batch_size: int = 64, runtime: str = "torch", address: str | None = None,
                     progress: bool = True, marker: str | None = None,
                     on_rows: Callable[[int], None] | None = None, reject: float | None = None,
                     unknown: str = "unknown") -> dict:
    """Predict ``items`` into ``out`` (.csv or .jsonl) with ``workers`` Ray actors; resumes what ``out`` holds.
    Returns the counts and the model's accuracy on the items predicted now, as ``bulk.predict_to_file`` does;
    ``reject``, ``unknown`` as there. ``runtime``: as ``loading.load_predictor`` takes it (onnx: a model folder's
    export, made once here in the cache, which the workers load); auto is resolved here, once."""
    ray = _ray()

    from .bulk import _resume, _write
    from .errors import BadInputError
    from .evaluate import calibrated_confidences, label_free_over_batches
    from .progress import progress_bar

    out = Path(out)
    if out.suffix.lower() not in (".csv", ".jsonl"):
        raise BadInputError(f"--out {out}: with Ray, write predictions to a .csv or .jsonl file.")
    if workers < 1:
        raise BadInputError(f"--workers must be at least 1, got {workers}.")
    probe = _PredictActor(str(model), runtime, top, reject=reject)  # the columns; a clear error before Ray starts
    if runtime == "auto":
        runtime = probe.predictor.runtime
    cols = probe.columns
    done = _resume(out, probe.key, cols)
    todo = [str(i) for i in items if str(i) not in done]
    counts = {"written": 0, "already_there": len(items) - len(todo), "unreadable": 0, "estimate": None}
    if not todo:
        return counts
    report, confidences = probe.predictor.report, []  # the accuracy on these items, read from the rows' p_
    _init(address, workers)
    dataset = ray.data.from_items([{"item": i} for i in todo], override_num_blocks=_blocks(len(todo), batch_size, workers))
    mapped = dataset.map_batches(_PredictActor, fn_constructor_kwargs={"model": str(model), "runtime": runtime,
                                                                       "top": top, "marker": marker, "reject": reject,
                                                                       "unknown": unknown},
                                 batch_size=batch_size, concurrency=workers, num_cpus=1, batch_format="numpy")
    fmt = "csv" if out.suffix.lower() == ".csv" else "jsonl"
    with open(out, "a", encoding="utf-8", newline="") as fh, progress_bar(
            "Predicting (Ray)", total=len(todo), enabled=progress) as advance:
        if fmt == "csv" and fh.tell() == 0:
            _write(fh, fmt, cols, [], header=True)
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            rows = [{c: _plain(batch[c][i]) for c in cols} for i in range(len(batch[probe.key]))]
            rows = [{k: v for k, v in r.items() if v != "" or k in (probe.key, "error")} for r in rows]
            _write(fh, fmt, cols, rows)
            counts["written"] += len(rows)
            counts["unreadable"] += sum(bool(r.get("error")) for r in rows)
            if reject is not None:
                counts["rejected"] = counts.get("rejected", 0) + sum(r.get("known") is False for r in rows)
            if probe.kind == "class":
                proba = [[float(r[f"p_{c}"]) for c in probe.classes] for r in rows if not r.get("error")]
                confidences.append(calibrated_confidences(np.array(proba).reshape(-1, len(probe.classes)),
                                                          report.temperature))
            advance(len(rows))
            if on_rows:
                on_rows(counts["written"])
    counts["estimate"] = label_free_over_batches(confidences, report.estimate)
    return counts


def _blocks(n: int, batch_size: int, workers: int) -> int:
    """Enough blocks for every worker to get some, about one batch each, never more than there are items."""
    return max(1, min(n, max(workers, -(-n // batch_size))))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


class _ExtractActor:
    """One featurizer per actor, rebuilt from what it saves (config and tensors)."""

    def __init__(self, saved, precision: str) -> None:
        import ray

        from .featurizers import load_featurizer

        config, tensors = ray.get(saved) if isinstance(saved, ray.ObjectRef) else saved
        self.featurizer = load_featurizer(config, tensors, precision=precision)  # the driver's path: its cache key

    def __call__(self, batch: dict) -> dict:
        from .features import extract

        items = [str(i) for i in batch["item"]]
        extraction = extract(self.featurizer, items, use_cache=False)
        rows = iter(extraction.features)
        features = [next(rows) if ok else None for ok in extraction.ok]
        return {"item": np.array(items, dtype=object), "features": np.array(features, dtype=object)}


def warm_cache_with_ray(featurizer, items: Sequence, *, workers: int = 2, batch_size: int = 64,
                        cache_dir: str | None = None, address: str | None = None) -> int:
    """Extract the features of ``items`` with Ray actors and write them into the local feature cache, so the fit
    that follows reads them instead of running the network. Returns how many were extracted."""
    ray = _ray()

    from .features import FeatureCache

    members = getattr(featurizer, "members", None) or [featurizer]
    extracted = 0
    for member in members:
        if not member.cacheable:
            continue
        cache = FeatureCache(member.digest(), cache_dir)
        todo = []
        for item in items:
            try:
                key = member.item_key(item)
            except Exception:  # unreadable: the fit reports it
                continue
            if cache.read(key) is None:
                todo.append((str(item), key))
        if not todo:
            continue
        _init(address, workers)
        keys = dict(todo)
        saved = ray.put(member.save())
        dataset = ray.data.from_items([{"item": i} for i, _ in todo], override_num_blocks=_blocks(len(todo), batch_size, workers))
        precision = getattr(member, "resolved_precision", "fp32")
        mapped = dataset.map_batches(_ExtractActor, fn_constructor_args=(saved, precision), batch_size=batch_size,
                                     concurrency=workers, num_cpus=1, batch_format="numpy")
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            for item, row in zip(batch["item"], batch["features"]):
                if row is not None:
                    cache.write(keys[str(item)], np.asarray(row, dtype=np.float32))
                    extracted += 1
    return extracted
