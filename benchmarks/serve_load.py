"""Load test of `transferkit serve`, on 127.0.0.1 only, bounded in requests and time.

    python benchmarks/serve_load.py [--model DIR] [--runtime torch|onnx] [--requests 200] [--seconds 120]
    python benchmarks/serve_load.py --matrix      # one backbone and the ensemble, batching on and off
    python benchmarks/serve_load.py --matrix --runtime onnx --int8 --max-batches 32,8,1   # and each one's int8 export

Starts the server on a free local port (a features model of the bundled example unless --model; with --matrix also
the default ``auto`` model, the zoo's four backbones side by side), then sends single-image requests from 1, 8 and
32 concurrent clients (asyncio + httpx), each level bounded by --requests and --seconds, and reports requests/s and
the p50 / p95 / p99 latency, with the count of errors (non-200) and of lost answers (requests sent but not answered).
Batching off is ``serve --max-batch 1``. ``--int8`` also exports each model with ``--quantize int8`` (checked on the
bundled test set) and serves that export with ``--runtime int8``, its int8 graph whatever the check measured.
Saves benchmarks/results/serve-<cpu>-<runtime>.json (--matrix: serve-load-<cpu>-<flags>[-onnx].json) with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from codebase_metrics import machine  # noqa: E402

from transferkit.onnx_runtime import MANIFEST  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def level(url: str, images: list[Path], clients: int, requests: int, seconds: float) -> dict:
    import httpx

    payloads = [(p.name, p.read_bytes()) for p in images]
    latencies, errors, sent = [], 0, 0
    deadline = time.perf_counter() + seconds
    lock = asyncio.Lock()

    async def client(c: int, http: httpx.AsyncClient) -> None:
        nonlocal errors, sent
        i = c
        while time.perf_counter() < deadline:
            async with lock:
                if sent >= requests:
                    return
                sent += 1
            name, data = payloads[i % len(payloads)]
            i += clients
            start = time.perf_counter()
            try:
                response = await http.post(f"{url}/predict", files=[("files", (name, data, "image/png"))])
                ok = response.status_code == 200 and len(response.json()["predictions"]) == 1
            except Exception:  # a dropped connection or a timeout counts as an error
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": sent, "answered": len(latencies), "errors": int(errors),
            "lost": int(sent - len(latencies)), "seconds": wall, "requests_per_s": len(latencies) / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99))}


def serve_levels(cli: str, model: Path, runtime: str, images: list[Path], requests: int, seconds: float,
                 max_batch: int, env: dict) -> list[dict]:
    """Start ``transferkit serve`` on a free port, run the three levels, stop it."""
    import httpx

    port = _port()
    server = subprocess.Popen([cli, "serve", str(model), "--port", str(port), "--runtime", runtime, "--max-batch",
                               str(max_batch)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(server.stderr.read().decode()[-2000:]) from None
                time.sleep(0.5)
        asyncio.run(level(url, images, 1, 5, 30))  # warm up
        return [asyncio.run(level(url, images, c, requests, seconds)) for c in (1, 8, 32)]
    finally:
        server.terminate()
        server.wait(timeout=30)


def _fit(cli: str, out: Path, strategy: str, env: dict) -> Path:
    subprocess.run([cli, "fit", str(ROOT / "examples" / "clipart" / "train"), "--out", str(out), "--strategy", strategy],
                   check=True, capture_output=True, env=env)
    return out


def _int8(cli: str, model: Path, env: dict) -> Path:
    """``model`` exported with its int8 graph, checked on the bundled test set."""
    out = model.with_name(model.name + "-int8")
    subprocess.run([cli, "export", str(model), "--out", str(out), "--quantize", "int8", "--check-data",
                    str(ROOT / "examples" / "clipart" / "test")], check=True, capture_output=True, env=env)
    return out


def _print(levels: list[dict]) -> None:
    print("| clients | requests | requests/s | p50 ms | p95 ms | p99 ms | errors | lost |\n|---|---|---|---|---|---|---|---|")
    for r in levels:
        print(f"| {r['clients']} | {r['answered']} | {r['requests_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
              f"{r['p99_ms']:.0f} | {r['errors']} | {r['lost']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--matrix", action="store_true")
    parser.add_argument("--only-one", action="store_true", help="--matrix: the one-backbone model only")
    parser.add_argument("--int8", action="store_true", help="--matrix: each model's int8 export too")
    parser.add_argument("--max-batches", type=lambda v: [int(b) for b in v.split(",")], default=[32, 1],
                        help="--matrix: the serve --max-batch values to run (1: batching off)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = str(Path(sys.executable).parent / "transferkit")
    images = sorted((ROOT / "examples" / "clipart" / "test").rglob("*.png"))
    m = machine()
    name = re.sub(r"[^a-z0-9]+", "-", m["cpu"].lower()).strip("-")
    with tempfile.TemporaryDirectory() as tmp:
        if args.matrix:
            models = {"one backbone (features)": _fit(cli, Path(tmp) / "one", "features", env)}
            if not args.only_one:
                models["four backbones side by side (auto)"] = _fit(cli, Path(tmp) / "four", "auto", env)
            served = [(label, model, args.runtime) for label, model in models.items()]
            if args.int8:
                served += [(label, _int8(cli, model, env), "int8") for label, model in models.items()]
            out = ROOT / "benchmarks" / "results" / (f"serve-load-{name}-{'-'.join(m['flags']) or 'plain'}"
                                                     f"{'' if args.runtime == 'torch' else '-' + args.runtime}.json")
            runs = []
            for label, model, runtime in served:
                quantized = json.loads((model / MANIFEST).read_text())["quantized"] if runtime == "int8" else None
                for max_batch in args.max_batches:
                    batching = "off" if max_batch == 1 else "on"
                    levels = serve_levels(cli, model, runtime, images, args.requests, args.seconds, max_batch, env)
                    runs.append({"model": label, "runtime": runtime, "batching": batching, "max_batch": max_batch,
                                 "levels": levels, **({"quantized": quantized} if quantized else {})})
                    print(f"\n{label}, --max-batch {max_batch} (runtime {runtime})")
                    _print(levels)
                    out.write_text(json.dumps({"machine": m, "runtime": args.runtime, "requests": args.requests,
                                               "runs": runs}, indent=1) + "\n")  # after each run
            print(f"machine: {m['cpu']} ({', '.join(m['flags'])}), {m['threads']} threads; saved {out}")
            return
        model = args.model or _fit(cli, Path(tmp) / "model", "features", env)
        levels = serve_levels(cli, model, args.runtime, images, args.requests, args.seconds, 32, env)
    result = {"machine": m, "runtime": args.runtime, "model": str(args.model or "features, bundled example"),
              "levels": levels}
    out = ROOT / "benchmarks" / "results" / f"serve-{name}-{args.runtime}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"machine: {m['cpu']} ({', '.join(m['flags'])}), {m['threads']} threads; runtime {args.runtime}")
    _print(levels)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
