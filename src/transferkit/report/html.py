"""Self-contained HTML reports: every plot is drawn with matplotlib and embedded as a PNG data URI, every number is
also printed, so the file opens anywhere (no network, no scripts) and can be mailed or archived as it is."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0} table{border-collapse:collapse;margin:.5rem 0} td,th{padding:.25rem .6rem;
border-bottom:1px solid #eee;text-align:right} th{background:#f6f6f6} td:first-child,th:first-child{text-align:left}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.8rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem;font-size:.85rem;background:#fff}
.card img{max-width:100%;max-height:150px;display:block;margin:auto} .bad{color:#b00020}
.kpi{display:inline-block;margin-right:2rem} .kpi b{font-size:1.5rem;display:block}
.plots img{max-width:100%} .note{background:#f3f7ff;border-left:4px solid #4a7bd0;padding:.6rem 1rem}
.text{white-space:pre-wrap;max-height:9em;overflow:hidden}
"""


def figure_uri(fig) -> str:
    """A matplotlib figure as a PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def printable(value) -> str:
    """A name as it can be drawn and written: bytes of a file name that are not UTF-8 become U+FFFD."""
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def figure(*args, **kwargs):
    """A figure of its own, drawn without pyplot: the user's matplotlib backend and open figures are untouched."""
    from ..extras import require

    require("report")
    from matplotlib.figure import Figure

    fig = Figure(figsize=kwargs.pop("figsize", (5, 3.4)))
    return fig, fig.subplots(*args, **kwargs)


def page(title: str, subtitle: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"{GENERATOR}<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><p class=sub>{html.escape(subtitle)}</p>"
            f"{body}</body></html>")


def table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


GENERATOR = "<meta name=generator content=transferkit>"


def check_report_path(path: str | Path) -> Path:
    """A report goes to a new file, or over an earlier transferkit report; never over anything else (a model's
    weights, a user's file, a device). Checked before any work, as is the extra that draws its plots."""
    from ..errors import BadInputError
    from ..extras import require

    require("report")
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BadInputError(f"{path} exists and is not a regular file; write the report to a new .html file.")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            raise BadInputError(f"{path} cannot be read ({exc.strerror}); write the report elsewhere.") from None
        if GENERATOR.encode() not in head:
            raise BadInputError(f"{path} exists and is not a transferkit report; refusing to overwrite it. Write the "
                                "report to a new .html file.")
    if not path.parent.is_dir():
        raise BadInputError(f"The folder of {path} does not exist; create it or write the report elsewhere.")
    return path


def write_report(path: str | Path, document: str) -> Path:
    """Write atomically: a crash (or a full disk) never leaves half a report, and never replaces anything that is
    not an earlier report (:func:`check_report_path`)."""
    from ..atomic import write_atomic
    from ..errors import BadInputError

    path = check_report_path(path)
    try:
        write_atomic(path, document)
    except OSError as exc:
        raise BadInputError(f"Writing the report to {path} failed: {exc.strerror or exc}. Nothing was written; free "
                            "some space or choose another path.") from None
    return path


# -- evaluation -------------------------------------------------------------------------------------------------

def write_evaluation(path: str | Path, evaluation, model, model_name: str, data_name: str) -> Path:
    """The page of any evaluation ``evaluate`` returns (one class per item, several labels, or numbers), written."""
    several = not hasattr(evaluation, "accuracy")
    return write_report(path, shape_report(evaluation, model_name, data_name) if several else
                        evaluation_report(evaluation, model_name, data_name, {"reason": model.report.reason}))


def evaluation_report(evaluation, model_name: str, data_name: str, model_info: dict | None = None) -> str:
    """The HTML page of an :class:`~transferkit.evaluate.Evaluation`."""
    from dataclasses import replace

    e = evaluation
    e = replace(e, classes=[printable(c) for c in e.classes],
                per_class=[{**r, "class": printable(r["class"])} for r in e.per_class],
                confident_errors=[{**r, "true": printable(r["true"]), "predicted": printable(r["predicted"]),
                                   "item": printable(r["item"])} for r in e.confident_errors])
    info = model_info or {}
    kpis = "".join(f"<span class=kpi>{label}<b>{value}</b></span>" for label, value in (
        ("accuracy", f"{e.accuracy:.3f}"), ("macro-F1", f"{e.macro_f1:.3f}"), ("ECE", f"{e.ece:.3f}"),
        ("examples", f"{e.n_examples}"), ("classes", f"{len(e.classes)}")))
    body = [f"<div>{kpis}</div>"]
    for note in getattr(e, "notes", []):
        body.append(f"<p class=note>Note: {html.escape(note)}.</p>")
    if info.get("reason"):
        body.append(f"<p class=note>How the model was made: {html.escape(info['reason'])}</p>")
    body.append("<h2>Per class</h2>")
    body.append(table(["class", "precision", "recall", "F1", "support"],
                      [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
                       for r in e.per_class]))
    body.append(f"<div class=plots><img alt='precision and recall per class' src='{_per_class_plot(e)}'></div>")
    body.append("<h2>Confusion matrix</h2><p>Rows: true class; columns: predicted class; colour: share of the row.</p>")
    body.append(f"<div class=plots><img alt='confusion matrix' src='{_confusion_plot(e)}'></div>")
    body.append(table(["true \\ predicted", *e.classes], [[c, *row] for c, row in zip(e.classes, e.confusion_matrix)]))
    body.append("<h2>Calibration</h2><p>When the model says 80%, is it right 80% of the time? Bars: accuracy per "
                f"confidence bin; the diagonal is perfect calibration. Expected calibration error "
                f"<b>{e.ece:.3f}</b> (0 is perfect).</p>")
    body.append(f"<div class=plots><img alt='reliability diagram' src='{_reliability_plot(e)}'></div>")
    if e.label_free:
        body.append(f"<p>Read from the model's confidence without these labels, as <code>transferkit predict</code> "
                    f"reports it on new data: <b>{e.label_free['accuracy']:.3f}</b> against the "
                    f"<b>{e.accuracy:.3f}</b> measured (the fit estimated {e.label_free['at_fit']:.3f}).</p>")
    body.append(table(["confidence bin", "examples", "mean confidence", "accuracy"],
                      [[f"{b['lower']:.1f}-{b['upper']:.1f}", b["count"],
                        "" if b["confidence"] is None else f"{b['confidence']:.3f}",
                        "" if b["accuracy"] is None else f"{b['accuracy']:.3f}"] for b in e.calibration]))
    body.append("<h2>Most confidently wrong</h2>")
    if e.confident_errors:
        body.append("<div class=cards>" + "".join(_error_card(err, e.modality) for err in e.confident_errors) + "</div>")
    else:
        body.append("<p>No mistakes on this data.</p>")
    if e.skipped:
        body.append("<h2>Skipped</h2>" + table(["file", "why"], [list(s) for s in e.skipped[:50]]))
    subtitle = f"{model_name} on {data_name}: {e.n_examples} {'texts' if e.modality == 'text' else 'images'}"
    return page(f"Evaluation of {Path(model_name).name}", subtitle, "".join(body))


def shape_report(evaluation, model_name: str, data_name: str) -> str:
    """The HTML page of a ``evaluate.ShapeEvaluation``: several labels per item (per-label precision and recall) or
    numbers (predicted against true)."""
    e, m = evaluation, evaluation.metrics
    keys = (("r2", "R²"), ("mae", "mean absolute error"), ("rmse", "RMSE")) if e.kind == "number" else (
        ("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("mean_ap", "mean average precision"),
        ("subset_accuracy", "every label right"))
    kpis = "".join(f"<span class=kpi>{label} (95% {m[k + '_interval'][0]:.2f}-{m[k + '_interval'][1]:.2f})"
                   f"<b>{m[k]:.3f}</b></span>" for k, label in keys)
    body = [f"<div>{kpis}<span class=kpi>examples<b>{e.n_examples}</b></span></div>"]
    body += [f"<p class=note>Note: {html.escape(note)}.</p>" for note in e.notes]
    if e.kind == "number":
        truth, predicted = (np.asarray(v, dtype=float) for v in zip(*e.points)) if e.points else ([], [])
        fig, ax = figure(figsize=(4.2, 4.0))
        ax.scatter(truth, predicted, s=10, alpha=0.6)
        low, high = float(min(np.min(truth), np.min(predicted))), float(max(np.max(truth), np.max(predicted)))
        ax.plot([low, high], [low, high], color="grey", linewidth=1, label="predicted = true")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.legend(fontsize=8)
        body.append("<h2>Predicted against true</h2><p>Each dot is one item; on the diagonal the prediction is "
                    "exact.</p>")
        body.append(f"<div class=plots><img alt='predicted against true' src='{figure_uri(fig)}'></div>")
    else:
        rows = m["per_label"]
        names = [printable(r["label"]) for r in rows]
        x = np.arange(len(rows))
        fig, ax = figure(figsize=(max(4, 0.6 * len(rows) + 1.5), 2.8))
        ax.bar(x - 0.2, [r["precision"] for r in rows], 0.4, label="precision")
        ax.bar(x + 0.2, [r["recall"] for r in rows], 0.4, label="recall")
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        body.append("<h2>Per label</h2>")
        body.append(f"<div class=plots><img alt='precision and recall per label' src='{figure_uri(fig)}'></div>")
        body.append(table(["label", "precision", "recall", "F1", "support", "predicted"],
                          [[n, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"],
                            r["predicted"]] for n, r in zip(names, rows)]))
    if e.skipped:
        body.append("<h2>Skipped</h2>" + table(["file", "why"], [list(s) for s in e.skipped[:50]]))
    subtitle = f"{model_name} on {data_name}: {e.n_examples} {'texts' if e.modality == 'text' else 'images'}"
    return page(f"Evaluation of {Path(model_name).name}", subtitle, "".join(body))


def _confusion_plot(e) -> str:
    cm = np.asarray(e.confusion_matrix, dtype=float)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(e.classes)
    fig, ax = figure(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), e.classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), e.classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return figure_uri(fig)


def _per_class_plot(e) -> str:
    n = len(e.classes)
    x = np.arange(n)
    fig, ax = figure(figsize=(max(4, 0.6 * n + 1.5), 2.8))
    ax.bar(x - 0.2, [r["precision"] for r in e.per_class], 0.4, label="precision")
    ax.bar(x + 0.2, [r["recall"] for r in e.per_class], 0.4, label="recall")
    ax.set_xticks(x, e.classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return figure_uri(fig)


def _reliability_plot(e) -> str:
    bins = e.calibration
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    width = bins[0]["upper"] - bins[0]["lower"]
    fig, (ax, hist) = figure(2, 1, figsize=(4.2, 4.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centers, [b["accuracy"] or 0 for b in bins], width * 0.95, color="#4a7bd0", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    hist.bar(centers, [b["count"] for b in bins], width * 0.95, color="#999")
    hist.set_xlabel("confidence")
    hist.set_ylabel("examples")
    return figure_uri(fig)


def _error_card(err: dict, modality: str) -> str:
    caption = (f"<div>true <b>{html.escape(err['true'])}</b>, predicted <b class=bad>{html.escape(err['predicted'])}"
               f"</b> at {err['probability']:.2f}</div>")
    if modality == "text":
        text = err["item"] if len(err["item"]) <= 400 else err["item"][:400] + "..."
        return f"<div class=card><div class=text>{html.escape(text)}</div>{caption}</div>"
    return (f"<div class=card><img alt='{html.escape(Path(err['item']).name)}' src='{_thumbnail(err['item'])}'>"
            f"{caption}<div>{html.escape(Path(err['item']).name)}</div></div>")


def _thumbnail(path: str, side: int = 160) -> str:
    from ..data.images import ImageDecodeError, load_image

    try:
        image = load_image(path, max_side=side)
    except ImageDecodeError:
        return ""
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# -- comparison (learning curves) -------------------------------------------------------------------------------

def comparison_report(points, recommendation: list[str], data_name: str, model_name: str) -> str:
    """The HTML page of a learning-curve comparison: accuracy and time against labels per class, per strategy."""
    from ..compare import summarise

    summary = summarise(points)
    ks = sorted({p.k for p in points})
    body = ["<h2>Recommendation</h2>"]
    body.append("<div class=note>" + "".join(f"<p>{html.escape(line)}</p>" for line in recommendation) + "</div>")
    body.append("<h2>Accuracy against labels per class</h2>")
    body.append(f"<div class=plots><img alt='learning curves' src='{_curve_plot(summary, 'mean', 'test accuracy')}'>"
                f"<img alt='fit time' src='{_curve_plot(summary, 'seconds', 'fit time (s)')}'></div>")
    header = ["strategy", *[f"k={k}" for k in ks]]
    rows = []
    for strategy, per_k in summary.items():
        cells = []
        for k in ks:
            v = per_k.get(k)
            cells.append("" if v is None else f"{100 * v['mean']:.1f} ± {100 * v['sd']:.1f}% ({v['seconds']:.1f} s)")
        rows.append([strategy, *cells])
    body.append(table(header, rows))
    seeds = max(p.seed for p in points) + 1
    n_test = points[0].n_test if points else 0
    body.append(f"<p>Each cell: mean ± standard deviation of the test accuracy over {seeds} seed(s), and the mean fit "
                f"time. The test split ({n_test} examples) is the same for every k, seed and strategy.</p>")
    body.append("<h2>Every run</h2>")
    body.append(table(["strategy", "k", "seed", "accuracy", "seconds", "train", "test"],
                      [[p.strategy, p.k, p.seed, f"{p.accuracy:.4f}", f"{p.seconds:.2f}", p.n_train, p.n_test]
                       for p in points]))
    return page(f"Transfer or not? {'/'.join(Path(data_name).parts[-2:])}", f"{model_name}; strategies "
                f"{', '.join(summary)}; {len(ks)} sizes", "".join(body))


def _curve_plot(summary: dict, key: str, label: str) -> str:
    fig, ax = figure(figsize=(5, 3.4))
    for strategy, per_k in summary.items():
        ks = sorted(per_k)
        values = [per_k[k][key] * (100 if key == "mean" else 1) for k in ks]
        if key == "mean":
            sds = [per_k[k]["sd"] * 100 for k in ks]
            ax.errorbar(ks, values, yerr=sds, marker="o", capsize=3, label=strategy,
                        linestyle="--" if strategy == "scratch" else "-")
        else:
            ax.plot(ks, values, marker="o", label=strategy, linestyle="--" if strategy == "scratch" else "-")
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    all_ks = sorted({k for per_k in summary.values() for k in per_k})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(all_ks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    if key != "mean":
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("labeled examples per class")
    ax.set_ylabel(label + (" (%)" if key == "mean" else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_uri(fig)
