"""How close image feature extraction comes to what this CPU can do (#26 item 3).

For each zoo image backbone whose weights ship offline, at batch 1 and 64, images/s of:

- ``naive fp32``: the timm / torchvision network in float32, ``eval()`` and ``torch.no_grad()``, called batch by batch
  (what a user writes first);
- ``transferkit``: ``ImageBackbone.transform``, the path a fit and ``predict`` take (channels-last memory,
  ``inference_mode``, bfloat16 autocast where this machine runs it natively, float32 elsewhere);
- ``ORT fp32`` and ``ORT int8``: the same network exported to ONNX and run by ONNX Runtime, the int8 graph from
  ``onnxruntime.quantization.quantize_dynamic`` (what ``export --quantize int8`` writes) and from ``quantize_static``
  calibrated on 32 of the bundled example's images (QDQ, per-channel; #26 asks for it on CPUs with VNNI);
- ``bound``: the network's multiply-adds per image (``torch.utils.flop_counter``) against this CPU's measured float32
  peak (a 2048 x 2048 matmul, best of 5): what no float32 path can beat.

Decoding and resizing are measured apart on the bundled example's PNGs (``ImageBackbone.prepare``: decode, resize,
crop, normalise), in one thread and in a pool of as many threads as cores. Inputs of the network timings are random
tensors of the right size. Every path runs with ``OMP_NUM_THREADS`` threads (2 here); each timing is the best of 3
rounds of at least 2 s.

    python benchmarks/throughput.py           # writes results/throughput-<cpu>-<flags>.json and prints the table
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from codebase_metrics import flags_slug, machine
from unlabeled import commit

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 64)


def rate(run, n_per_call: int, seconds: float = 2.0, rounds: int = 3) -> float:
    """Images per second of ``run()`` (which handles ``n_per_call`` images): the best of ``rounds`` rounds."""
    run()  # warm up
    best = 0.0
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or calls == 0:
            run()
            calls += 1
        best = max(best, calls * n_per_call / (time.perf_counter() - start))
    return best


def peak_gflops() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * 2048 ** 3 / best / 1e9


def flops_per_image(network, size: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        network(torch.zeros(1, 3, size, size))
    return float(counter.get_total_flops())


def onnx_graphs(network, size: int, folder: Path, calibration: np.ndarray) -> dict[str, Path]:
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32 = folder / "fp32.onnx"
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(network, (torch.zeros(2, 3, size, size),), str(fp32), input_names=["image"],
                      output_names=["features"], dynamic_shapes=({0: batch},), dynamo=True, opset_version=18,
                      external_data=False)
    dynamic = folder / "int8-dynamic.onnx"
    quantize_dynamic(str(fp32), str(dynamic), weight_type=QuantType.QInt8)
    prepared = folder / "fp32-prepared.onnx"
    quant_pre_process(str(fp32), str(prepared))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(calibration[i: i + 1] for i in range(len(calibration)))

        def get_next(self):
            row = next(self.rows, None)
            return None if row is None else {"image": row}

    static = folder / "int8-static.onnx"
    quantize_static(str(prepared), str(static), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return {"ORT fp32": fp32, "ORT int8 dynamic": dynamic, "ORT int8 static": static}


def decoding(featurizer, files: list[Path]) -> dict:
    one = rate(lambda: [featurizer.prepare(f) for f in files], len(files), seconds=1.0)
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        many = rate(lambda: list(pool.map(featurizer.prepare, files)), len(files), seconds=1.0)
    return {"one_thread": one, "threads": workers, "thread_pool": many}


def main() -> None:
    import onnxruntime as ort
    import torch

    from transferkit.featurizers import ImageBackbone
    from transferkit.runtime import session_options
    from transferkit.zoo import list_models

    files = sorted((ROOT / "examples" / "clipart" / "train").rglob("*.png"))
    m = {**machine(), "torch_threads": torch.get_num_threads(), "commit": commit()}
    peak = peak_gflops()
    print(f"{m['cpu']} ({', '.join(m['flags'])}), {m['torch_threads']} threads: float32 matmul peak {peak:.0f} GFLOP/s")
    rows, decode = [], None
    for spec in [s for s in list_models(modality="image") if s.source == "package"]:
        featurizer = ImageBackbone.from_spec(spec)
        size = featurizer.preprocessing.input_size
        network = copy.deepcopy(featurizer.network).float().eval()
        flops = flops_per_image(network, size)
        calibration = np.stack([featurizer.prepare(f).numpy() for f in files[:32]]).astype(np.float32)
        if decode is None:
            decode = decoding(featurizer, files[:64])
        with tempfile.TemporaryDirectory() as tmp:
            graphs = onnx_graphs(network, size, Path(tmp), calibration)
            sessions = {k: ort.InferenceSession(str(v), session_options(), providers=["CPUExecutionProvider"])
                        for k, v in graphs.items()}
            for batch in BATCHES:
                x = torch.randn(batch, 3, size, size)
                as_list = list(x)
                feed = {"image": x.numpy()}

                def naive(x=x, network=network):
                    with torch.no_grad():
                        network(x)

                row = {"backbone": spec.name, "input": size, "batch": batch, "gflops_per_image": flops / 1e9,
                       "naive fp32": rate(naive, batch),
                       "transferkit": rate(lambda as_list=as_list, f=featurizer: f.transform(as_list), batch),
                       "precision": featurizer.resolved_precision}
                for name, session in sessions.items():
                    row[name] = rate(lambda session=session, feed=feed: session.run(None, feed), batch)
                row["bound"] = peak * 1e9 / flops
                rows.append(row)
                print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    slug = flags_slug(m)
    out = ROOT / "benchmarks" / "results" / f"throughput-{slug}.json"
    out.write_text(json.dumps({"machine": m, "peak_gflops": peak, "decoding": decode, "rows": rows}, indent=1) + "\n")
    print(table(rows, decode))
    print(f"saved {out}")


def table(rows: list[dict], decode: dict) -> str:
    paths = ("naive fp32", "transferkit", "ORT fp32", "ORT int8 dynamic", "ORT int8 static", "bound")
    lines = ["| backbone | batch | GFLOP/image | " + " | ".join(paths) + " | transferkit / naive |",
             "|---|---|---|" + "---|" * (len(paths) + 1)]
    for r in rows:
        lines.append(f"| {r['backbone']} ({r['input']} px) | {r['batch']} | {r['gflops_per_image']:.2f} | "
                     + " | ".join(f"{r[p]:.0f}" for p in paths) + f" | {r['transferkit'] / r['naive fp32']:.2f}x |")
    lines.append(f"\nDecoding and resizing: {decode['one_thread']:.0f} images/s in one thread, "
                 f"{decode['thread_pool']:.0f} in a pool of {decode['threads']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
