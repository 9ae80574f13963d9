"""What int8 costs and buys on a real export (#26 item 2): the default model of the bundled clip-art example (``fit``
with ``auto``: the zoo's four backbones side by side), exported to ONNX with ``--quantize int8`` (static QDQ for
images, calibrated on the check data), and the same float32 graph quantised dynamically (what ``--quantize`` wrote
before), each run by ONNX Runtime on the 120 held-out test images: accuracy, agreement with float32, images/s.

    python benchmarks/int8_accuracy.py       # writes results/int8-<cpu>-<flags>.json
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from codebase_metrics import machine
from unlabeled import commit

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from transferkit.onnx_runtime import OnnxPredictor, session_options

    cli = str(Path(sys.executable).parent / "transferkit")
    train, test_dir = ROOT / "examples" / "clipart" / "train", ROOT / "examples" / "clipart" / "test"
    test = sorted(test_dir.rglob("*.png"))
    truth = np.array([p.parent.name for p in test])
    with tempfile.TemporaryDirectory() as tmp:
        model, export = Path(tmp) / "model", Path(tmp) / "onnx"
        subprocess.run([cli, "fit", str(train), "--out", str(model)], check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run([cli, "export", str(model), "--out", str(export), "--quantize", "int8", "--check-data",
                        str(test_dir)], check=True, capture_output=True)
        export_seconds = time.perf_counter() - start
        quantize_dynamic(str(export / "model.onnx"), str(Path(tmp) / "dynamic.onnx"), weight_type=QuantType.QInt8)
        runtime = OnnxPredictor.load(export)
        graphs = {"fp32": export / "model.onnx", "int8 static (export --quantize int8)": export / "model.int8.onnx",
                  "int8 dynamic": Path(tmp) / "dynamic.onnx"}
        rows, reference = [], None
        for name, graph in graphs.items():
            runtime.session = ort.InferenceSession(str(graph), session_options(), providers=["CPUExecutionProvider"])
            start = time.perf_counter()
            proba, _, _ = runtime.predict_items(test)
            seconds = time.perf_counter() - start
            reference = proba if reference is None else reference
            rows.append({"graph": name, "accuracy": float((runtime.classes[proba.argmax(1)] == truth).mean()),
                         "agreement_with_fp32": float((proba.argmax(1) == reference.argmax(1)).mean()),
                         "images_per_s": len(test) / seconds, "mib": graph.stat().st_size / 2**20})
    m = {**machine(), "commit": commit()}
    slug = "-".join(re.findall(r"[a-z0-9]+", m["cpu"].lower())[:2]) + "-" + ("-".join(m["flags"]) or "plain")
    out = ROOT / "benchmarks" / "results" / f"int8-{slug}.json"
    out.write_text(json.dumps({"machine": m, "n_test": len(test), "export_seconds": export_seconds, "rows": rows},
                              indent=1) + "\n")
    print(f"{m['cpu']} ({', '.join(m['flags'])}); {len(test)} test images; export with int8 took {export_seconds:.0f} s")
    print("| graph | accuracy | agreement with fp32 | images/s | MiB |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['graph']} | {r['accuracy']:.3f} | {r['agreement_with_fp32']:.3f} | {r['images_per_s']:.1f} | "
              f"{r['mib']:.1f} |")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
