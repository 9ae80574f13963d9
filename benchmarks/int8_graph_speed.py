"""The default model's whole int8 graph against its float32 graph, ONNX Runtime images/s at batch 64 (#26: at least
1.8x on a CPU with VNNI), with each backbone's first convolution kept float32 (what ``export --quantize int8``
writes) and, for comparison, quantised too. Inputs are prepared once (decoding and resizing are measured apart in
throughput.py); the graphs run in turn, 5 times each, and the median counts.

    python benchmarks/int8_graph_speed.py     # fits the bundled example's default model; writes
                                              # results/int8-graph-speed-<cpu>-<flags>.json
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
BATCH = 64
REPEATS = 5


def main() -> None:
    import onnxruntime as ort

    from transferkit import export, quantize
    from transferkit.data.images import load_image
    from transferkit.onnx_runtime import prepare_image
    from transferkit.predictor import Predictor
    from transferkit.runtime import session_options

    items = sorted((ROOT / "examples" / "clipart" / "train").rglob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cli = str(Path(sys.executable).parent / "transferkit")
        subprocess.run([cli, "fit", str(ROOT / "examples" / "clipart" / "train"), "--out", str(work / "model")],
                       check=True, capture_output=True)
        predictor = Predictor.load(work / "model", precision="fp32")
        export.export_onnx(predictor, work / "onnx", check_items=items[:40])
        manifest = json.loads((work / "onnx" / "transferkit-export.json").read_text())
        members = getattr(predictor.featurizer, "members", [predictor.featurizer])
        graphs, cosines = {"float32": work / "onnx" / "model.onnx"}, {}
        first_convolutions = quantize._first_convolutions
        for name, keep in (("int8, first convolutions float32 (the export)", True),
                           ("int8, first convolutions int8", False)):
            quantize._first_convolutions = first_convolutions if keep else (lambda readers, tensor: set())
            out = work / f"int8-{keep}.onnx"
            info = export._quantize_static(work / "onnx" / "model.onnx", out, manifest, items[:32], members)
            graphs[name], cosines[name] = out, info
        quantize._first_convolutions = first_convolutions
        images = [load_image(p) for p in items[:BATCH]]
        feed = {s["name"]: np.stack([prepare_image(im, s["preprocessing"]) for im in images])
                for s in manifest["inputs"]}
        sessions = {k: ort.InferenceSession(str(v), session_options(), providers=["CPUExecutionProvider"])
                    for k, v in graphs.items()}
        for session in sessions.values():
            session.run(None, feed)  # warm
        seconds: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(REPEATS):
            for k, session in sessions.items():
                start = time.perf_counter()
                session.run(None, feed)
                seconds[k].append(time.perf_counter() - start)
    rows = [{"graph": k, "images_per_s": BATCH / float(np.median(v)),
             "vs_float32": float(np.median(seconds["float32"]) / np.median(v)),
             **({"feature_cosine": cosines[k]["feature_cosine"], "equalized_streams": cosines[k]["equalized_streams"]}
                if k in cosines else {})} for k, v in seconds.items()]
    m = {**machine(), "commit": commit()}
    out_file = ROOT / "benchmarks" / "results" / f"int8-graph-speed-{flags_slug(m)}.json"
    out_file.write_text(json.dumps({"machine": m, "model": "bundled example, default fit (auto)", "batch": BATCH,
                                    "repeats": REPEATS, "rows": rows}, indent=1) + "\n")
    print(f"{m['cpu']} ({', '.join(m['flags'])}), {m['threads']} threads; batch {BATCH}, median of {REPEATS}")
    print("| graph | images/s | vs float32 |\n|---|---|---|")
    for r in rows:
        print(f"| {r['graph']} | {r['images_per_s']:.1f} | {r['vs_float32']:.2f}x |")
    print(f"saved {out_file}")


if __name__ == "__main__":
    main()
