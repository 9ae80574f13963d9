"""What the commands print, for a person at a terminal (rich text and tables on standard output, notes and warnings
on standard error) or for a script (``json_line``). Each function renders one result type the library returns; the
numbers and sentences come from the results themselves (``FitReport``, ``Evaluation``, an export's manifest).
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

out = Console()
err = Console(stderr=True)


def json_line(value) -> None:
    """One JSON object on a line of standard output (numpy numbers as numbers, anything else unknown as text)."""
    print(json.dumps(value, default=_plain))


def _plain(value):
    import numpy as np

    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return str(value)


def note(text: str) -> None:
    err.print(f"[yellow]Note: {text}.[/]", highlight=False, soft_wrap=True)


def fit(clf, out_dir: Path, as_json: bool) -> None:
    """A saved fit: what it predicts, its estimate with interval and sample size, its time, and what to run next."""
    from .evaluate import estimate_note
    from .loading import export_folder
    from .onnx_runtime import is_export

    report = clf.report_
    cached = export_folder(out_dir)
    exported = cached if is_export(cached) else None
    if as_json:
        json_line({"model": str(out_dir), "classes": clf.classes_.tolist(), "target": clf.target_,
                   "onnx_export": str(exported) if exported else None, **report.summary()})
        return
    rate = report.items_per_second
    speed = f", {rate:.0f} {clf.noun}s/s" if rate else ""
    shape = {"class": f"{len(clf.classes_)} classes", "labels": f"{len(clf.classes_)} labels per item at most",
             "number": "a number per item"}[clf.target_["kind"]]
    out.print(f"Saved [bold]{out_dir}[/]: {shape}, {estimate_line(report)}, {report.fit_seconds:.1f} s{speed}.")
    if text := estimate_note(report.estimate, clf.noun):
        note(text)
    if (open_set := report.open_set) and (open_set.get("n_other") or open_set.get("n_pool")):
        from .openset import chosen_line

        out.print(escape(chosen_line(open_set, clf.noun)), highlight=False)
    if exported:
        out.print("Exported to ONNX (cached; `transferkit cache` shows it): a predict of a few inputs starts "
                  "without PyTorch.", highlight=False)
    what = "TEXT..." if clf.noun == "text" else "IMAGE..."
    out.print(f"Next: transferkit evaluate {out_dir} TEST_DATA   or   transferkit predict {out_dir} {what}")


def estimate_line(report) -> str:
    """The accuracy a fit reports, with how it was measured, its sample size and interval."""
    r = report.estimate
    if r is None:
        return "no accuracy estimate (too few labels to hold any out)"
    low, high = r.interval
    return f"{r.name} [bold]{r.value:.3f}[/] (95% {low:.2f}-{high:.2f}; {report.estimate_detail()})"


def evaluated(result, model, model_dir: Path, data: Path, report: Path | None = None) -> None:
    """Any evaluation ``evaluate`` returns, and where its report went."""
    if report is not None:
        err.print(f"Report written to {report}", highlight=False)
    if hasattr(result, "accuracy"):
        evaluation(result, model, model_dir, data)
    else:
        shape_evaluation(result, model_dir, data)


def evaluation(result, model, model_dir: Path, data: Path) -> None:
    """``evaluate``'s account of a classifier of one class per item: the headline, notes and two tables."""
    from .report.html import printable

    low, high = result.interval
    out.print(f"[bold]{model_dir}[/] on {data}: {result.n_examples} examples, accuracy [bold]{result.accuracy:.3f}[/] "
              f"(95% {low:.2f}-{high:.2f}), macro-F1 {result.macro_f1:.3f}, expected calibration error {result.ece:.3f}")
    if result.label_free:
        out.print(f"Read from the model's confidence without these labels, as `predict` reports it: "
                  f"{result.label_free['accuracy']:.3f} (the fit estimated {result.label_free['at_fit']:.3f}).")
    if result.open_set:
        from .openset import open_set_line

        out.print(escape(open_set_line(result.open_set, model.noun)))
    for text in result.notes:
        note(text)
    table = Table("class", "precision", "recall", "F1", "support", title="Per class")
    for row in result.per_class:
        table.add_row(printable(row["class"]), *(f"{row[k]:.3f}" for k in ("precision", "recall", "f1")),
                      str(row["support"]))
    out.print(table)
    cm = Table("true \\ predicted", *[printable(c)[:10] for c in result.classes], title="Confusion matrix")
    for i, (c, row) in enumerate(zip(result.classes, result.confusion_matrix)):
        cm.add_row(printable(c), *[f"[bold]{v}[/]" if j == i else (str(v) if v else "·") for j, v in enumerate(row)])
    out.print(cm)
    skipped(result.skipped)


def shape_evaluation(result, model_dir: Path, data: Path) -> None:
    """``evaluate``'s account of a model of several labels per item or of numbers."""
    from .report.html import printable

    m = result.metrics

    def shown(key: str, name: str) -> str:
        low, high = m[f"{key}_interval"]
        return f"{name} [bold]{m[key]:.3f}[/] (95% {low:.2f}-{high:.2f})"

    head = f"[bold]{model_dir}[/] on {data}: {result.n_examples} examples, "
    if result.kind == "number":
        out.print(head + f"{shown('r2', 'R²')}, {shown('mae', 'mean absolute error')}, {shown('rmse', 'RMSE')}")
    else:
        out.print(head + f"{shown('micro_f1', 'micro-F1')}, {shown('macro_f1', 'macro-F1')}, "
                  f"{shown('mean_ap', 'mean average precision')}, {shown('subset_accuracy', 'every label right')}")
        table = Table("label", "precision", "recall", "F1", "support", "predicted", title="Per label")
        for row in m["per_label"]:
            table.add_row(printable(row["label"]), *(f"{row[k]:.3f}" for k in ("precision", "recall", "f1")),
                          str(row["support"]), str(row["predicted"]))
        out.print(table)
    for text in result.notes:
        note(text)
    skipped(result.skipped)


def predictions(model, answered, key: str, top: int, as_json: bool) -> None:
    """One row (or JSON line) per input (``jobs.Answered``): the class and its probability, the labels, or the
    number; then what the model's confidence says of them all and the inputs that could not be read (as JSON, a line
    with the error of each)."""
    kind = model.kind
    columns = {"class": ("label", "probability", *(["top"] if top > 1 else [])), "labels": ("labels", "probabilities"),
               "number": ("value",)}[kind]
    table = Table(key, *columns)
    for name, best in zip(answered.names, answered.answers):
        if as_json:
            json_line({key: name, **best})
            continue
        shown = name if len(name) <= 80 else name[:77] + "..."
        if kind == "number":
            table.add_row(shown, f"{best['value']:.4g}")
        elif kind == "labels":
            chances = sorted(best["probabilities"].items(), key=lambda kv: -kv[1])[:5]
            table.add_row(shown, ", ".join(map(str, best["labels"])) or "(none)",
                          ", ".join(f"{c} {v:.2f}" for c, v in chances))
        else:
            rest = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in best["top"][1:])
            table.add_row(shown, str(best["label"]), f"{best['probability']:.3f}", *([rest] if top > 1 else []))
    if as_json:
        for path, why in answered.skipped:
            json_line({key: str(path), "error": why})
        return
    out.print(table)
    label_free(answered.label_free, model.noun)
    unfamiliar(answered.unfamiliar, model.noun)
    skipped(answered.skipped)


def bulk(counts: dict, out_file: Path, unknown_label: str, noun: str, rejecting: bool = False) -> None:
    """What ``predict --out`` wrote, and what the model's confidence says of it."""
    out.print(f"Wrote {counts['written']} prediction(s) to [bold]{out_file}[/]"
              + (f" ({counts['already_there']} already there from an earlier run)" if counts["already_there"] else "")
              + (f"; {counts['rejected']} of them belong to no trained class ({unknown_label!r})"
                 if counts.get("rejected") else "")
              + (f"; {counts['unreadable']} input(s) could not be read (see the error column)"
                 if counts["unreadable"] else "") + ".")
    label_free(counts.get("estimate"), noun)
    if not rejecting:
        unfamiliar(counts.get("unfamiliar"), noun)


def unfamiliar(reading: dict | None, noun: str) -> None:
    """The warning that many inputs look unlike every trained class (``openset.unfamiliar``), if there is one."""
    from .openset import unfamiliar_line

    if warning := unfamiliar_line(reading, noun):
        err.print(f"[yellow]{escape(warning)}[/]")


def label_free(estimate: dict | None, noun: str) -> None:
    """The model's accuracy on what it just predicted, read from its confidence; a warning when it is below the
    fit's interval (``evaluate.label_free_lines``)."""
    from .evaluate import label_free_lines

    for line in label_free_lines(estimate, noun):
        if line.startswith("Warning"):
            err.print(f"[yellow]{escape(line)}[/]")
        else:
            out.print(escape(line))


def skipped(items) -> None:
    if items:
        err.print(f"[yellow]Skipped {len(items)} unreadable file(s):[/]")
        for path, why in items[:20]:
            err.print(f"  {path}: {why}", highlight=False)


def serving(model, model_dir, host: str, port: int) -> None:
    """Where a server listens, and a warning when that is beyond this machine."""
    from .serve import LOCAL_HOSTS

    if host not in LOCAL_HOSTS:
        err.print(f"[yellow]Listening on {host}: anyone who can reach this machine can use the model.[/]")
    err.print(f"Serving {model_dir} ({model.modality}, {len(model.classes)} classes) on http://{host}:{port} "
              f"(docs: http://{host}:{port}/docs). Ctrl-C stops it.", highlight=False)


def app_address(project_root: Path, url: str, host: str) -> None:
    """Where the app's page is, and a warning when it listens beyond this machine."""
    from .serve import LOCAL_HOSTS

    out.print(f"transferkit app: project [bold]{project_root}[/]\nOpen {url}  (Ctrl-C to stop)", highlight=False,
              soft_wrap=True)
    if host not in LOCAL_HOSTS:
        err.print(f"[yellow]Listening on {host}: anyone who can reach this machine and has the token can use it.[/]")


def export(manifest: dict, out_dir: Path) -> None:
    """An export's check against the model, and what int8 costs where it was measured."""
    c = manifest["check"]
    made = ("copied from the cache, where it was checked when it was written" if manifest.get("copied_from")
            else f"{manifest['export_seconds']:.0f} s")
    out.print(f"Wrote [bold]{out_dir}[/] ({made}): ONNX Runtime matches the model on "
              f"{c['inputs']} inputs (largest probability difference {c['max_abs_difference']:.1e}, tolerance "
              f"{c['tolerance']:g}; the same class for all).")
    if c.get("skipped"):
        listed = "; ".join(f"{s['item']} ({s['reason']})" for s in c["skipped"][:10])
        more = f" and {len(c['skipped']) - 10} more" if len(c["skipped"]) > 10 else ""
        err.print(f"[yellow]{len(c['skipped'])} input(s) of --check-data could not be read and were not checked:[/] "
                  f"{listed}{more}", highlight=False)
    if q := manifest.get("quantized"):
        size = f"{q['bytes_int8'] / 2**20:.1f} MiB against {q['bytes_fp32'] / 2**20:.1f} MiB"
        if "accuracy_change" in q:
            from .onnx_runtime import GRAPH, INT8_MAX_COST, onnx_graph

            moved = 1 - q["argmax_agreement"]
            runs = (f"it runs by itself on a CPU with VNNI or AMX (at most {INT8_MAX_COST:.1%} may differ)"
                    if onnx_graph(manifest, int8=True) != GRAPH else
                    f"more than {INT8_MAX_COST:.1%}, so float32 runs by itself; `--runtime int8` runs it anyway")
            out.print(f"int8: {size}; accuracy {q['accuracy_int8']:.3f} against {q['accuracy_fp32']:.3f} in float32 on "
                      f"{q['n']} labeled examples ({100 * q['accuracy_change']:+.1f} points); {moved:.1%} of its "
                      f"answers differ from float32's: {runs}.")
        else:
            out.print(f"int8: {size}; {q['note']}.")


def pretrained(clf, name: str, folder: Path, as_json: bool) -> None:
    """A backbone ``pretrain`` added to the local zoo."""
    from .zoo import local_zoo_dir

    r = clf.report_
    if as_json:
        return json_line({"name": name, "folder": str(folder), "classes": clf.classes_.tolist(),
                          "val_accuracy": r.val_accuracy, "epochs_run": r.epochs_run, "fit_seconds": r.fit_seconds,
                          "n_train": r.n_train, "n_val": r.n_val})
    out.print(f"Registered [bold]{name}[/] in {local_zoo_dir()} (validation accuracy on the source task "
              f"{r.val_accuracy:.3f}). Reuse it: transferkit fit DATA --model {name}")


def curve_point(point) -> None:
    """One fit of a learning curve, as it finishes."""
    err.print(f"k={point.k:<4} seed={point.seed} {point.strategy:<9} accuracy {point.accuracy:.3f}  "
              f"{point.seconds:.1f} s", highlight=False)


def comparison(points, advice: list[str], report: Path, as_json: bool) -> None:
    """A learning curve's recommendation and where its report went."""
    if as_json:
        return json_line({"report": str(report), "recommendation": advice, "runs": [p.to_dict() for p in points]})
    for line in advice:
        out.print(line)
    out.print(f"Report: [bold]{report}[/]")


def ranking(rows, data: Path) -> None:
    table = Table("#", "model", "LogME", "kNN accuracy (CV)", "dim", "seconds",
                  title=f"Which pretrained model suits {data}?",
                  caption="Higher LogME = features explain the labels better (You et al., 2021). Fit the first with "
                          "--model NAME.")
    for i, r in enumerate(rows, 1):
        table.add_row(str(i), f"[bold]{r.model}[/]" if i == 1 else r.model, f"{r.logme:.3f}", f"{r.knn_accuracy:.3f}",
                      str(r.feature_dim), f"{r.seconds:.1f}" + (" (cached)" if r.cached else ""))
    out.print(table)


def zoo(specs, as_json: bool) -> None:
    """The model zoo: image backbones and text encoders, the defaults marked."""
    from .zoo import DEFAULTS

    if as_json:
        json_line([{"name": s.name, "modality": s.modality, "aliases": list(s.aliases), "kind": s.kind,
                    "source": s.source, "package": s.package, "feature_dim": s.dim, "license": s.license,
                    "max_tokens": s.max_tokens, "default": s.name == DEFAULTS[s.modality],
                    "preprocessing": s.preprocessing.to_dict() if s.preprocessing else None} for s in specs])
        return

    def name(s) -> str:
        return f"[bold]{s.name}[/]*" if s.name == DEFAULTS[s.modality] else s.name

    if images := [s for s in specs if s.modality == "image"]:
        table = Table(Column("name", no_wrap=True), "aliases", "input", "normalise", "dim", "weights",
                      title="Image backbones (offline)",
                      caption="* the default. Any timm name also works online: --model resnet50.a1_in1k")
        for s in images:
            pre = s.preprocessing
            table.add_row(name(s), ", ".join(s.aliases), f"{pre.input_size} {pre.interpolation}",
                          "0.5/0.5" if pre.mean == (0.5, 0.5, 0.5) else "ImageNet", str(s.dim or ""),
                          "local" if s.source == "local" else "offline" if s.offline else s.source)
        out.print(table)
    if texts := [s for s in specs if s.modality == "text"]:
        table = Table(Column("name", no_wrap=True), "aliases", "window", "dim", "weights", "about",
                      title="Text encoders (offline)",
                      caption="* the default. Online: any sentence-transformers name; offline: a model folder or a "
                              "word-vector file (GloVe, word2vec, fastText)")
        for e in texts:
            table.add_row(name(e), ", ".join(e.aliases), f"{e.max_tokens} tokens", str(e.dim), "offline", e.description)
        out.print(table)


def cache(info: dict, cleared: bool = False) -> None:
    """The cache folder's parts (``cache.summary``), or what clearing them freed (``cache.clear``)."""
    from rich.table import Table

    table = Table(title=f"{'Cleared from' if cleared else 'Cache:'} {info['folder']}")
    for column in ("part", "what", "entries", "files", "size"):
        table.add_column(column, justify="right" if column in ("entries", "files", "size") else "left")
    what = {"features": "featurizers with features of items", "graphs": "image backbones' ONNX graphs",
            "exports": "models' ONNX exports"}
    for name, part in info["parts"].items():
        table.add_row(name, what[name], str(part["entries"]), str(part["files"]), _size(part["bytes"]))
    out.print(table)
    if cleared:
        out.print(f"Freed {_size(info['bytes'])}; transferkit makes again what it needs.", highlight=False)
    else:
        out.print(f"{_size(info['bytes'])} in all. `transferkit cache --clear PART` (features, graphs, exports or all) "
                  "frees a part; transferkit makes again what it needs.", highlight=False)


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
