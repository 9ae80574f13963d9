"""Speed on the machine at hand: the extraction paths, `features` against the plain probe, and start-up.

    python benchmarks/speed.py            # about 5 minutes on 2 cores; writes benchmarks/results/speed-<cpu>.json

1. Extraction of EfficientNet-Lite0 features (decode + preprocess + forward, batch 32, 256 images of the bundled
   example, warm): a naive fp32 loop against transferkit's path (channels-last, inference_mode, and bfloat16 autocast
   only where this machine runs it natively), with the agreement of the two paths' features.
2. Whole processes, paired by farm-bench: ``transferkit fit --strategy features`` (cold cache) against the plain
   probe script (benchmarks/plain_probe.py) on the bundled training set, counting interpreter start-up; and
   ``transferkit predict`` of one image against ``python -c 'import torch, timm'``.

The machine (CPU model, flags that matter, threads) and the precision path chosen are saved with the numbers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CLI = str(Path(PY).parent / "transferkit")
TRAIN = ROOT / "examples" / "clipart" / "train"
sys.path.insert(0, str(Path(__file__).parent))
from codebase_metrics import machine  # noqa: E402


def extraction(n_images: int = 256) -> dict:
    import torch

    from transferkit.data import load_image
    from transferkit.features import extract
    from transferkit.featurizers import ImageBackbone
    from transferkit.zoo import resolve

    files = sorted(TRAIN.rglob("*.png")) + sorted((TRAIN.parent / "test").rglob("*.png"))
    files = (files * (n_images // len(files) + 1))[:n_images]
    backbone = ImageBackbone.from_spec(resolve("tf_efficientnet_lite0"))
    transform = backbone.preprocessing.eval_transform()
    naive = backbone.network.eval()

    def run_naive() -> np.ndarray:
        rows = []
        with torch.no_grad():
            for i in range(0, len(files), 32):
                batch = torch.stack([transform(load_image(f)) for f in files[i:i + 32]])
                rows.append(naive(batch).numpy())
        return np.concatenate(rows)

    def run_fast() -> np.ndarray:
        return extract(backbone, files, use_cache=False).features

    run_naive(), run_fast()  # warm up both (allocators, oneDNN kernels)
    out = {"images": len(files), "precision_chosen": backbone.resolved_precision}
    for name, fn in (("naive_fp32", run_naive), ("transferkit", run_fast)):
        start = time.perf_counter()
        features = fn()
        out[f"{name}_images_per_s"] = len(files) / (time.perf_counter() - start)
        out[f"_{name}"] = features
    a, b = out.pop("_naive_fp32"), out.pop("_transferkit")
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    out["feature_cosine_min"] = float(cos.min())
    out["speed_up"] = out["transferkit_images_per_s"] / out["naive_fp32_images_per_s"]
    return out


def runtimes(folder: Path, n_images: int = 256, n_texts: int = 512) -> list[dict]:
    """Predictions per second, warm, for each runtime and precision: a features model of Lite0 (images) and of
    MiniLM (texts), as a Predictor (PyTorch, float32 and the machine's bfloat16 path where it has one) and as an
    ONNX export (ONNX Runtime, float32 and dynamic int8), on the same inputs."""
    from transferkit import Features, ImageClassifier, TextClassifier
    from transferkit.export import export_onnx
    from transferkit.onnx_runtime import OnnxPredictor
    from transferkit.predictor import Predictor
    from transferkit.runtime import native_bf16

    files = sorted(TRAIN.rglob("*.png")) + sorted((TRAIN.parent / "test").rglob("*.png"))
    images = (files * (n_images // len(files) + 1))[:n_images]
    from suite_data import load_task

    task = load_task("questions")  # real user questions (chatterbot-corpus): short texts, as most text inputs are
    pool_texts = [t for ts in task.pool.values() for t in ts]
    pool_labels = [c for c, ts in task.pool.items() for _ in ts]
    texts = (pool_texts * (n_texts // len(pool_texts) + 1))[:n_texts]
    rows = []
    for modality, make, fit_on, items in (
            ("image", lambda: ImageClassifier("tf_efficientnet_lite0", Features(), verbose=False), TRAIN, images),
            ("text", lambda: TextClassifier("all-MiniLM-L6-v2", Features(), verbose=False),
             (pool_texts, pool_labels), texts)):
        model_dir, export_dir = folder / f"{modality}-model", folder / f"{modality}-onnx"
        clf = make()
        clf.fit(*fit_on) if isinstance(fit_on, tuple) else clf.fit(fit_on)
        clf.save(model_dir)
        export_onnx(Predictor.load(model_dir), export_dir, quantize="int8")
        candidates = [("torch", "fp32")] + ([("torch", "bf16")] if native_bf16("cpu") else []) + \
            [("onnx", "fp32"), ("onnx", "int8")]
        for runtime, precision in candidates:
            if runtime == "torch":
                predictor = Predictor.load(model_dir, precision=precision)
            else:
                predictor = OnnxPredictor.load(export_dir, graph="model.int8.onnx" if precision == "int8" else None)
            if hasattr(predictor, "use_cache"):
                predictor.use_cache = False
            predictor.predict_items(items[:32])  # warm up
            start = time.perf_counter()
            predictor.predict_items(items)
            per_s = len(items) / (time.perf_counter() - start)
            rows.append({"modality": modality, "runtime": runtime, "precision": precision, "items": len(items),
                         "per_second": per_s})
            print(f"  {modality} {runtime} {precision}: {per_s:.1f}/s", file=sys.stderr)
    return rows


def bench(a: list[str], b: list[str], runs: int = 5) -> dict:
    proc = subprocess.run(["farm-bench", "-n", str(runs), "--timeout", "1800", "--vs", shlex.join(b), "--", *a],
                          capture_output=True, text=True, timeout=2400)
    text = proc.stdout + proc.stderr
    failed = re.findall(r"^([AB]) exit ([1-9]\d*) \(", text, re.MULTILINE)
    if failed or proc.returncode:
        raise SystemExit(f"a timed command failed ({failed or proc.returncode}); farm-bench said:\n{text[-2000:]}")

    def median(row: str) -> float | None:
        found = re.search(rf"^{re.escape(row)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text, re.MULTILINE)
        return float(found.group(2)) if found else None

    return {"a": shlex.join(a), "b": shlex.join(b), "a_median_s": median("A wall s"), "b_median_s": median("B wall s"),
            "ratio_median": median("A/B wall"), "runs": runs}


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = {"machine": machine(), "extraction": extraction()}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRANSFERKIT_CACHE"] = str(Path(tmp) / "cache")
        result["runtimes"] = runtimes(Path(tmp))
        # a fresh cache per run: sh -c gives every run its own folder, removed after
        fit = ["sh", "-c", f"d=$(mktemp -d) && TRANSFERKIT_CACHE=$d {CLI} fit {TRAIN} --out $d/m --strategy features "
                           f">/dev/null 2>&1; s=$?; rm -rf $d; exit $s"]
        result["features_vs_plain_probe"] = bench(fit, [PY, str(Path(__file__).parent / "plain_probe.py"), str(TRAIN)])
        model = Path(tmp) / "model"
        subprocess.run([CLI, "fit", str(TRAIN), "--out", str(model), "--strategy", "features"], check=True,
                       capture_output=True)
        image = next((TRAIN.parent / "test" / "birds").glob("*.png"))
        result["cold_predict_vs_import"] = bench([CLI, "predict", str(model), str(image)],
                                                 [PY, "-c", "import torch, timm"])
    m = result["machine"]
    out = ROOT / "benchmarks" / "results" / f"speed-{re.sub(r'[^a-z0-9]+', '-', m['cpu'].lower()).strip('-')}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    e = result["extraction"]
    print(f"machine: {m['cpu']} ({', '.join(m['flags']) or 'no AVX-512 / AMX'}), {m['threads']} threads")
    print(f"| path | images/s |\n|---|---|\n| naive loop: fp32, default memory format, no_grad | "
          f"{e['naive_fp32_images_per_s']:.1f} |\n| transferkit ({e['precision_chosen']}, chosen by this machine) | "
          f"{e['transferkit_images_per_s']:.1f} |\n| speed-up | {e['speed_up']:.2f}x |")
    print(f"features agree: cosine >= {e['feature_cosine_min']:.4f}")
    print("| model | runtime | precision | predictions/s |\n|---|---|---|---|")
    for r in result["runtimes"]:
        print(f"| {'Lite0 features' if r['modality'] == 'image' else 'MiniLM features'} | {r['runtime']} | "
              f"{r['precision']} | {r['per_second']:.1f} |")
    for key in ("features_vs_plain_probe", "cold_predict_vs_import"):
        r = result[key]
        print(f"{key}: {r['a_median_s']} s against {r['b_median_s']} s, ratio {r['ratio_median']} (median of pairs)")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
