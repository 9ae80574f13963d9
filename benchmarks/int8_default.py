"""#23's fast default without a pool, by int8: the default fit (``auto``: three backbones side by side) predicting
through the export ``predict`` caches, whose int8 graph (backbones calibrated once per machine on installed photos,
``quantize.int8_backbone_graph``) runs by itself on a CPU with integer dot products, against the four side by
side in float32 (the default #23 measured) fitted on the same labels.

Accuracy (``--tasks``): the few-shot suite's image tasks, k labels per class drawn with each seed (the suite's
samples), every model measured on the task's test set: the four in float32, the three in float32 and the three in
int8, paired by cell. Throughput (``--speed``): ``transferkit predict MODEL FOLDER --out p.csv`` over one task's test
images, whole processes timed by farm-bench, the three (int8, as ``predict`` runs it here) against the four (float32),
both exports made beforehand, as ``fit`` leaves them; the three in float32 against the four; and a cold ``predict`` of
one image, the three in int8 against the three in float32.

    python benchmarks/int8_default.py --tasks clipart,fashion,icons,mnist --k 5,10 --seeds 0-2
    python benchmarks/int8_default.py --speed fashion        # 1,000 test images (28-pixel grayscale)
    python benchmarks/int8_default.py --speed fashion --images "/usr/share/icons/oxygen/base/128x128/*/*.png"
                                                             # the same models over 1,000 colour icons
    python benchmarks/int8_default.py --table
    python benchmarks/int8_default.py --recipes BEFORE.jsonl [...] AFTER.jsonl   # two int8 recipes, same fits
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import suite_data
from codebase_metrics import cpu_slug, farm_bench, machine, machine_line, t_interval, write_results
from side_by_side import FOUR, fitted_with
from unlabeled import commit

HERE = Path(__file__).resolve().parent
CACHE = suite_data.WORK / "cache"


def results_file() -> Path:
    return HERE / "results" / f"int8-default-{cpu_slug()}.jsonl"


def exports(items: list, labels: list[str], work: Path) -> dict[str, tuple[Path, str]]:
    """The three's export as ``predict`` caches it (float32 and int8 graphs) and the four's float32 export: name ->
    (export folder, graph)."""
    from transferkit import zoo
    from transferkit.export import export_onnx
    from transferkit.loading import cached_export
    from transferkit.onnx_runtime import GRAPH, INT8_GRAPH
    from transferkit.predictor import Predictor

    fitted_with(zoo.SIDE_BY_SIDE, items, labels, cache_dir=str(CACHE)).save(work / "three")
    fitted_with(FOUR, items, labels, cache_dir=str(CACHE)).save(work / "four")
    three = cached_export(work / "three")
    export_onnx(Predictor.load(work / "four"), work / "four-onnx")
    return {"four, float32": (work / "four-onnx", GRAPH), "three, float32": (three, GRAPH),
            "three, int8": (three, INT8_GRAPH)}


def run_cell(task, k: int, seed: int) -> dict:
    from transferkit.onnx_runtime import OnnxPredictor

    items, labels = task.sample(k, seed)
    truth = np.array(task.test_labels)
    out: dict = {"task": task.name, "k": k, "seed": seed, "n_test": len(truth)}
    with tempfile.TemporaryDirectory() as tmp:
        answers = {}
        for name, (folder, graph) in exports(items, labels, Path(tmp)).items():
            model = OnnxPredictor.load(folder, graph=graph)
            proba, ok, _ = model.predict_items(task.test_items)
            answers[name] = model.classes[proba.argmax(1)]
            out[name] = float((answers[name] == truth[ok]).mean())
    out["int8 answers changed"] = float((answers["three, int8"] != answers["three, float32"]).mean())
    return out


def run(tasks: list[str], ks: list[int], seeds: list[int], results: Path) -> None:
    done = {(r["task"], r["k"], r["seed"]) for r in rows(results)}
    info = {**machine(), "commit": commit()}
    for name in tasks:
        task = suite_data.load_task(name)
        for k in ks:
            for seed in seeds:
                if (name, k, seed) in done:
                    continue
                row = {**run_cell(task, k, seed), "machine": info}
                with results.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps({key: v for key, v in row.items() if key != "machine"}), flush=True)


def rows(results: Path) -> list[dict]:
    return [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []


def table(results: Path) -> str:
    found = rows(results)
    cells = sorted({(r["task"], r["k"]) for r in found})
    lines = ["| task | k | seeds | test items | four, float32 | three, float32 | three, int8 | three int8 - four (95% CI) "
             "| answers int8 changed |", "|---|---|---|---|---|---|---|---|---|"]
    every = []
    for task, k in cells:
        mine = [r for r in found if (r["task"], r["k"]) == (task, k)]
        diff = [100 * (r["three, int8"] - r["four, float32"]) for r in mine]
        every += diff
        mean, half = t_interval(diff) if len(diff) > 1 else (diff[0], float("nan"))
        lines.append(f"| {task} | {k} | {len(mine)} | {mine[0]['n_test']} | "
                     + " | ".join(f"{100 * np.mean([r[m] for r in mine]):.1f}"
                                  for m in ("four, float32", "three, float32", "three, int8"))
                     + f" | {mean:+.1f} ({mean - half:+.1f} to {mean + half:+.1f}) | "
                     f"{100 * np.mean([r['int8 answers changed'] for r in mine]):.1f}% |")
    cell_means = [np.mean([100 * (r["three, int8"] - r["four, float32"]) for r in found
                           if (r["task"], r["k"]) == c]) for c in cells]
    lines.append(f"\nThree in int8 minus four in float32, averaged over the {len(cells)} cells: "
                 f"{np.mean(cell_means):+.2f} points ({len(every)} fits). Test accuracy %, mean over seeds.")
    if found:
        lines.append(f"{machine_line(found[0]['machine'])} Commit {found[0]['machine']['commit']}.")
    return "\n".join(lines)


def recipes_table(before: list[Path], after: Path) -> str:
    """Two int8 recipes on the fits both measured (the same task, k and seed give the same models): ``before``'s
    results files and ``after``'s; per cell, each one's int8 minus its three's float32, and the share of answers int8
    changed."""
    def keyed(paths: list[Path]) -> dict:
        return {(r["task"], r["k"], r["seed"]): r for path in paths for r in rows(path)}

    old, new = keyed(before), keyed([after])
    both = sorted(set(old) & set(new))
    lines = ["| task | k | seeds | three, float32 | int8 - float32, before | after | after - before (95% CI) | "
             "answers int8 changed, before | after |", "|---|---|---|---|---|---|---|---|---|"]
    cost: dict[str, list] = {"old": [], "new": []}
    for task, k in sorted({(t, k) for t, k, _ in both}):
        keys = [key for key in both if key[:2] == (task, k)]
        # the same labels: the same fits, but another machine's float32 rounding may move an item or two
        assert all(abs(old[key]["three, float32"] - new[key]["three, float32"]) <= 0.01 for key in keys), "other fits"
        drop = {name: np.array([100 * (found[key]["three, int8"] - found[key]["three, float32"]) for key in keys])
                for name, found in (("old", old), ("new", new))}
        for name in drop:
            cost[name].append(drop[name].mean())
        mean, half = t_interval(drop["new"] - drop["old"])
        lines.append(f"| {task} | {k} | {len(keys)} | {100 * np.mean([new[key]['three, float32'] for key in keys]):.1f} "
                     f"| {drop['old'].mean():+.1f} | {drop['new'].mean():+.1f} | {mean:+.1f} ({mean - half:+.1f} to "
                     f"{mean + half:+.1f}) | "
                     + " | ".join(f"{100 * np.mean([f[key]['int8 answers changed'] for key in keys]):.1f}%"
                                  for f in (old, new)) + " |")
    lines.append(f"\nint8 minus the three's float32, averaged over the {len(cost['old'])} cells: before "
                 f"{np.mean(cost['old']):+.2f} points, after {np.mean(cost['new']):+.2f} ({len(both)} fits). Before: "
                 f"{', '.join(p.name for p in before)}; after: {after.name}.")
    return "\n".join(lines)


def speed(task_name: str, runs: int, images: str | None = None) -> dict:
    """Whole ``predict --out`` processes over the task's test images (or the first 1,000 files, sorted, that the glob
    ``images`` matches): the three as ``predict`` runs them here, and in float32, each against the four in
    float32, all fitted on the task's labels."""
    import glob

    from transferkit.onnx_runtime import GRAPH

    task = suite_data.load_task(task_name)
    items, labels = task.sample(10, 0)
    inputs = sorted(glob.glob(images))[:1000] if images else task.test_items
    cli = str(Path(sys.executable).parent / "transferkit")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = work / "images"
        folder.mkdir()
        for i, item in enumerate(inputs):
            (folder / f"{i:05d}{Path(item).suffix}").symlink_to(Path(item).resolve())
        made = exports(items, labels, work)
        from transferkit.export import export_onnx
        from transferkit.predictor import Predictor

        three, floats = made["three, int8"][0], work / "three-float32"
        export_onnx(Predictor.load(work / "three"), floats)  # `transferkit export`: float32 only, for any machine
        assert made["four, float32"][1] == GRAPH and "quantized" in json.loads((three / "transferkit-export.json")
                                                                                .read_text())

        def predict(model: Path, name: str) -> list[str]:  # predict --out resumes a finished file: removed first
            out = work / f"{name}.csv"
            return ["bash", "-c", f"rm -f {out} && {cli} predict {model} {folder} --out {out}"]

        four = predict(made["four, float32"][0], "four")
        out = {"task": task_name, "n_images": len(inputs), **({"images": images} if images else {}),
               "machine": {**machine(), "commit": commit()},
               "three int8 vs four float32": farm_bench(predict(three, "int8"), four, runs),
               "three float32 vs four float32": farm_bench(predict(floats, "float32"), four, runs)}
        one = str(next(folder.iterdir()))  # a cold predict of one image: does the int8 graph cost its start?
        out["one image: three int8 vs three float32"] = farm_bench([cli, "predict", str(three), one],
                                                                   [cli, "predict", str(floats), one], 5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="clipart,fashion,icons,mnist")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--seeds", default="0-2", help="a range (0-2) or a list (0,3)")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--speed", metavar="TASK", help="time whole predict processes over this task's test images")
    parser.add_argument("--images", metavar="GLOB", help="with --speed: time these files (the first 1,000) instead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--recipes", nargs="+", type=Path, metavar="JSONL",
                        help="compare two int8 recipes on the fits both measured: the results files of the one "
                             "before, then the one after's")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = args.results or results_file()
    if args.recipes:
        found = rows(args.recipes[-1])
        info = found[0]["machine"] if found else None  # named after the later recipe's file
        stem = args.recipes[-1].stem.replace("int8-default", "int8-recipes").removesuffix(f"-{cpu_slug(info)}")
        write_results(stem, "## Two int8 recipes on the same fits (`benchmarks/int8_default.py --recipes`)"
                      f"\n\n{recipes_table(args.recipes[:-1], args.recipes[-1])}\n", info)
        return
    if args.speed:
        found = speed(args.speed, args.runs, args.images)
        out = HERE / "results" / f"{results.stem.replace('int8-default', 'int8-default-speed')}.json"
        out.write_text(json.dumps(found, indent=1) + "\n")
        print(json.dumps(found, indent=1))
        return
    if not args.table:
        a, _, b = args.seeds.partition("-")
        seeds = list(range(int(a), int(b) + 1)) if b else [int(s) for s in args.seeds.split(",")]
        run(args.tasks.split(","), [int(k) for k in args.k.split(",")], seeds, results)
    info = rows(results)[0]["machine"] if rows(results) else None
    write_results(results.stem.removesuffix(f"-{cpu_slug(info)}"), "## The default in int8 against the four in "
                  f"float32 (`benchmarks/int8_default.py`)\n\n{table(results)}\n", info)


if __name__ == "__main__":
    main()
