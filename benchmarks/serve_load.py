"""Load test of `transferkit serve`, on 127.0.0.1 only, bounded in requests and time.

    python benchmarks/serve_load.py [--model DIR] [--runtime torch|onnx] [--requests 200] [--seconds 120]

Starts the server on a free local port (a features model of the bundled example unless --model), then sends
single-image requests from 1, 8 and 32 concurrent clients (asyncio + httpx), each level bounded by --requests and
--seconds, and reports requests/s and the p50 / p99 latency, with the count of errors (non-200) and of lost answers
(requests sent but not answered). Saves benchmarks/results/serve-<cpu>-<runtime>.json with the machine.
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
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = str(Path(sys.executable).parent / "transferkit")
    images = sorted((ROOT / "examples" / "clipart" / "test").rglob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = Path(tmp) / "model"
            subprocess.run([cli, "fit", str(ROOT / "examples" / "clipart" / "train"), "--out", str(model),
                            "--strategy", "features"], check=True, capture_output=True, env=env)
        port = _port()
        server = subprocess.Popen([cli, "serve", str(model), "--port", str(port), "--runtime", args.runtime],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx

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
            levels = [asyncio.run(level(url, images, c, args.requests, args.seconds)) for c in (1, 8, 32)]
        finally:
            server.terminate()
            server.wait(timeout=30)
    m = machine()
    result = {"machine": m, "runtime": args.runtime, "model": str(args.model or "features, bundled example"),
              "levels": levels}
    name = re.sub(r"[^a-z0-9]+", "-", m["cpu"].lower()).strip("-")
    out = ROOT / "benchmarks" / "results" / f"serve-{name}-{args.runtime}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"machine: {m['cpu']} ({', '.join(m['flags'])}), {m['threads']} threads; runtime {args.runtime}")
    print("| clients | requests | requests/s | p50 ms | p99 ms | errors | lost |\n|---|---|---|---|---|---|---|")
    for r in levels:
        print(f"| {r['clients']} | {r['answered']} | {r['requests_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['errors']} | {r['lost']} |")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
