"""What int8 costs and buys on a real export (#26 item 2): the default model of the bundled clip-art example (``fit``
with ``auto``: the zoo's four backbones side by side), exported to ONNX with ``--quantize int8`` (static QDQ for
images, calibrated on the check data), and the same float32 graph quantised dynamically (what ``--quantize`` wrote
before), each run by ONNX Runtime on the 120 held-out test images: accuracy, agreement with float32, images/s.

    python benchmarks/int8_accuracy.py       # writes results/int8-<cpu>-<flags>.json
    python benchmarks/int8_accuracy.py --task fashion --k 20   # a few-shot suite task: results/int8-fashion-k20-...

With ``--task``, the model is fitted on k images per class of the task's pool, the export is checked (and calibrated)
on the next 10 per class, and the graphs are measured on the task's test set (Fashion-MNIST: 1,000 images), which
resolves differences a tenth the size the bundled example's 120 images can. ``--four`` adds the four backbones side by
side (``auto`` before f81c4cc, when it began to put three) in float32, fitted on the same labels and measured in the
same run: #23 asks the default without a pool for 2.5 times their throughput within half a point
(``results/int8-<task>-k<k>-against-four-...``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from codebase_metrics import flags_slug, machine
from unlabeled import commit

ROOT = Path(__file__).resolve().parents[1]


def labeled_folder(root: Path, pool: dict[str, list], start: int, stop: int) -> Path:
    """``root``/<class>/ holding links to items ``start:stop`` of each class's pool."""
    for cls, items in pool.items():
        (root / cls).mkdir(parents=True)
        for item in items[start:stop]:
            (root / cls / Path(item).name).symlink_to(Path(item).resolve())
    return root


def four_export(cli: str, train: Path, tmp: Path) -> Path:
    """The float32 graph of ``auto``'s fit on ``train`` with the four backbones side by side."""
    from side_by_side import FOUR, fitted_with

    fitted_with(FOUR, str(train)).save(tmp / "model-four")
    subprocess.run([cli, "export", str(tmp / "model-four"), "--out", str(tmp / "onnx-four")], check=True,
                   capture_output=True)
    return tmp / "onnx-four" / "model.onnx"


def main() -> None:
    import argparse

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from transferkit.onnx_runtime import OnnxPredictor
    from transferkit.runtime import session_options

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", help="a few-shot suite task (benchmarks/suite_data.py) instead of the bundled example")
    parser.add_argument("--k", type=int, default=20, help="labels per class with --task")
    parser.add_argument("--four", action="store_true", help="also the four backbones side by side (auto before "
                        "f81c4cc) in float32, fitted on the same labels: the baseline of #23's throughput target")
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "transferkit")
    with tempfile.TemporaryDirectory() as tmp:
        if args.task:
            import suite_data

            task = suite_data.load_task(args.task)
            train = labeled_folder(Path(tmp) / "train", task.pool, 0, args.k)
            test_dir = labeled_folder(Path(tmp) / "check", task.pool, args.k, args.k + 10)
            test, truth = [Path(p) for p in task.test_items], np.array(task.test_labels)
        else:
            train, test_dir = ROOT / "examples" / "clipart" / "train", ROOT / "examples" / "clipart" / "test"
            test = sorted(test_dir.rglob("*.png"))
            truth = np.array([p.parent.name for p in test])
        model, export = Path(tmp) / "model", Path(tmp) / "onnx"
        subprocess.run([cli, "fit", str(train), "--out", str(model)], check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run([cli, "export", str(model), "--out", str(export), "--quantize", "int8", "--check-data",
                        str(test_dir)], check=True, capture_output=True)
        export_seconds = time.perf_counter() - start
        quantized = json.loads((export / "transferkit-export.json").read_text())["quantized"]
        runtime = OnnxPredictor.load(export)
        graphs = {"fp32": export / "model.onnx", "int8 static (export --quantize int8)": export / "model.int8.onnx"}
        if not args.task:  # dynamic int8 runs at a tenth of float32's speed: the bundled example shows it
            quantize_dynamic(str(export / "model.onnx"), str(Path(tmp) / "dynamic.onnx"), weight_type=QuantType.QInt8)
            graphs["int8 dynamic"] = Path(tmp) / "dynamic.onnx"
        runtimes = {name: runtime for name in graphs}
        if args.four:
            graphs["fp32, four side by side"] = four_export(cli, train, Path(tmp))
            runtimes["fp32, four side by side"] = OnnxPredictor.load(graphs["fp32, four side by side"].parent)
        rows, reference = [], None
        for name, graph in graphs.items():
            runtime = runtimes[name]
            runtime.session = ort.InferenceSession(str(graph), session_options(), providers=["CPUExecutionProvider"])
            start = time.perf_counter()
            proba, _, _ = runtime.predict_items(test)
            seconds = time.perf_counter() - start
            reference = proba if reference is None else reference
            rows.append({"graph": name, "accuracy": float((runtime.classes[proba.argmax(1)] == truth).mean()),
                         "agreement_with_fp32": float((proba.argmax(1) == reference.argmax(1)).mean()),
                         "images_per_s": len(test) / seconds, "mib": graph.stat().st_size / 2**20})
    m = {**machine(), "commit": commit()}
    slug = flags_slug(m)
    stem = (f"int8-{args.task}-k{args.k}" if args.task else "int8") + ("-against-four" if args.four else "")
    out = ROOT / "benchmarks" / "results" / f"{stem}-{slug}.json"
    out.write_text(json.dumps({"machine": m, "task": args.task or "bundled example", "k": args.k if args.task else None,
                               "n_test": len(test), "export_seconds": export_seconds, "quantized": quantized,
                               "rows": rows},
                              indent=1) + "\n")
    print(f"{m['cpu']} ({', '.join(m['flags'])}); {len(test)} test images; export with int8 took {export_seconds:.0f} s")
    print(f"int8 features' cosine to float32: {quantized.get('feature_cosine')}; "
          f"residual streams equalised: {quantized.get('equalized_streams')}")
    print("| graph | accuracy | agreement with fp32 | images/s | MiB |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['graph']} | {r['accuracy']:.3f} | {r['agreement_with_fp32']:.3f} | {r['images_per_s']:.1f} | "
              f"{r['mib']:.1f} |")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
