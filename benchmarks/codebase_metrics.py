"""The shape of the codebase, measured: what issue 13 ("one core for images and text") asks to report.

    python benchmarks/codebase_metrics.py [--label before] [--out benchmarks/results/codebase-<label>.json]

Prints and saves: lines of ``src/``, the largest module and function, the places that know about modality (code
lines that branch on it, and definitions written twice as an image / text twin), the ``duplicates`` tool's pairs,
the import time of ``transferkit`` (and of its estimators) and the cold time of ``transferkit predict`` on one image
with a features model, each as a median of whole processes against ``python -c 'import torch, timm'`` (farm-bench).
The machine (CPU model, flags that matter, threads) is recorded next to every timing.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "transferkit"
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
sys.path.insert(0, str(Path(__file__).parent))

# A line "knows about modality" when it branches on it or names one modality's twin of a shared concept.
MODALITY_BRANCH = re.compile(
    r"is_text_source\(|TEXT_TASK|isinstance\([^)]*(Text|Image)Classifier|hasattr\([^)]*vectorizer_|"
    r"modality\s*[=!]=|kind\s*[=!]=\s*\"word-vectors\"|\"images\" if|\"texts\" if|if text\b|if not text\b"
)


def source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def count_lines(path: Path) -> int:
    return sum(1 for _ in path.open(encoding="utf-8"))


def largest_function(files: list[Path]) -> tuple[str, int]:
    best = ("", 0)
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > best[1]:
                    best = (f"{path.relative_to(ROOT)}:{node.name}", n)
    return best


def twin_definitions(files: list[Path]) -> list[str]:
    """Top-level names defined once per modality: the same name but for an image / text word (``FitContext`` and
    ``TextFitContext``, ``fit_features`` and ``fit_text_features``, ``rank_image_models`` and ``rank_text_...``)."""
    words = re.compile(r"(?i)^(text|texts|image|images)$")
    names = set()
    for path in files:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))

    def parts(name: str) -> list[str]:
        return [p for p in re.split(r"_|(?<=[a-z])(?=[A-Z])", name) if p]

    groups: dict[str, list[str]] = {}
    for name in names:
        kept = [p.lower() for p in parts(name) if not words.match(p)]
        if kept and len(kept) < len(parts(name)) or any(words.match(p) for p in parts(name)):
            groups.setdefault("_".join(kept), []).append(name)
        else:
            groups.setdefault("_".join(kept), []).append(name)
    twins = []
    for members in groups.values():
        texty = [n for n in members if any(p.lower() in ("text", "texts") for p in parts(n))]
        other = [n for n in members if n not in texty]
        twins += [f"{a} / {b}" for a in sorted(other) for b in sorted(texty)]
    return sorted(twins)


# the vector, bfloat16 and integer dot-product extensions a result depends on
NAMED_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile"})


def machine() -> dict:
    info = {"cpu": "", "flags": [], "threads": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not info["cpu"]:
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not info["flags"]:
                flags = set(line.split(":", 1)[1].split())
                info["flags"] = sorted(flags & NAMED_FLAGS)
    except OSError:
        pass
    return info


def cpu_slug(info: dict | None = None) -> str:
    """The CPU's first two words for results file names, with "avx512" where it has AVX-512 ("amd-epyc",
    "amd-epyc-avx512": two machines of one name that compute differently), from ``machine()``."""
    info = info or machine()
    words = re.findall(r"[a-z0-9]+", info["cpu"].lower())[:2] + (["avx512"] if "avx512f" in info["flags"] else [])
    return "-".join(words) or "unknown"


def flags_slug(info: dict | None = None) -> str:
    """The CPU's first two words and every named flag, for results that depend on them all
    ("amd-epyc-avx2-avx512_bf16-avx512_vnni-avx512f"), from ``machine()``."""
    info = info or machine()
    return "-".join(re.findall(r"[a-z0-9]+", info["cpu"].lower())[:2]) + "-" + ("-".join(info["flags"]) or "plain")


def machine_line(info: dict | None = None) -> str:
    """``Machine: CPU (flags), N threads.``, for the foot of a results table."""
    info = info or machine()
    return f"Machine: {info['cpu']} ({', '.join(info['flags'])}), {info['threads']} threads."


def t_interval(values) -> tuple[float, float]:
    """The mean of ``values`` and the half-width of its 95% t-interval."""
    import numpy as np
    from scipy.stats import t as student

    v = np.asarray(values, float)
    return float(v.mean()), float(student.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def write_results(stem: str, text: str, info: dict | None = None) -> Path:
    """``text`` written to ``results/<stem>-<cpu>.md`` (``cpu_slug``) and printed; the file."""
    out = Path(__file__).resolve().parent / "results" / f"{stem}-{cpu_slug(info)}.md"
    out.write_text(text, encoding="utf-8")
    print(text)
    return out


def farm_bench(command: list[str], baseline: list[str], runs: int = 5) -> dict | None:
    """Median wall seconds of ``command`` and of ``baseline``, and their pairwise ratio (farm-bench)."""
    try:
        proc = subprocess.run(["farm-bench", "-n", str(runs), "--timeout", "600", "--vs", shlex.join(baseline), "--",
                               *command], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout + proc.stderr
    def median(row: str) -> float | None:
        found = re.search(rf"^{re.escape(row)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text, re.MULTILINE)
        return float(found.group(2)) if found else None

    return {"a_median_s": median("A wall s"), "b_median_s": median("B wall s"), "ratio_median": median("A/B wall"),
            "runs": runs, "baseline": shlex.join(baseline[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="now")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-timing", action="store_true", help="skip the start-up timings (they take a minute)")
    parser.add_argument("--table", nargs="+", metavar="LABEL",
                        help="only print a Markdown table comparing saved results (labels, e.g. before after now)")
    args = parser.parse_args()
    if args.table:
        print(markdown(*(json.loads((ROOT / "benchmarks" / "results" / f"codebase-{label}.json").read_text())
                         for label in args.table)))
        return
    files = source_files()
    lines = {str(p.relative_to(ROOT)): count_lines(p) for p in files}
    module, module_lines = max(lines.items(), key=lambda kv: kv[1])
    func, func_lines = largest_function(files)
    branch_lines = [f"{p.relative_to(ROOT)}:{i}" for p in files
                    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                    if MODALITY_BRANCH.search(line)]
    twins = twin_definitions(files)
    dup = subprocess.run(["duplicates", "--repo", str(ROOT / "src")], capture_output=True, text=True).stdout.strip()
    result = {
        "label": args.label, "machine": machine(), "src_lines": sum(lines.values()), "src_files": len(files),
        "largest_module": [module, module_lines], "largest_function": [func, func_lines],
        "modality_branch_lines": len(branch_lines), "modality_branch_where": branch_lines,
        "twin_definitions": twins, "duplicates": dup.splitlines(),
    }
    if not args.no_timing:
        base = [PY, "-c", "import torch, timm"]
        result["import_transferkit"] = farm_bench([PY, "-c", "import transferkit"], base)
        result["import_estimators"] = farm_bench([PY, "-c", "import transferkit; transferkit.ImageClassifier"], base)
        result["lightning_imported_by_predict"] = lightning_on_predict()
        model = ensure_features_model()
        image = next((ROOT / "examples" / "clipart" / "test" / "birds").glob("*.png"))
        cli = str(ROOT / ".venv" / "bin" / "transferkit")
        result["cold_predict_one_image"] = farm_bench([cli, "predict", str(model), str(image)], base)
    out = args.out or ROOT / "benchmarks" / "results" / f"codebase-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    show(result)
    print(f"saved {out}")


def lightning_on_predict() -> bool | None:
    model = ensure_features_model()
    image = next((ROOT / "examples" / "clipart" / "test" / "birds").glob("*.png"))
    code = ("import sys; from transferkit.cli import app\n"
            f"sys.argv = ['transferkit', 'predict', {str(model)!r}, {str(image)!r}]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "print('LIGHTNING', 'lightning' in sys.modules)")
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    match = re.search(r"LIGHTNING (True|False)", proc.stdout)
    return None if not match else match.group(1) == "True"


def ensure_features_model() -> Path:
    model = Path(tempfile.gettempdir()) / "transferkit-metrics-model"
    if not (model / "transferkit.json").is_file():
        subprocess.run([str(ROOT / ".venv" / "bin" / "transferkit"), "fit", str(ROOT / "examples" / "clipart" / "train"),
                        "--out", str(model), "--strategy", "features"], check=True, capture_output=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return model


COLUMN_NAMES = {"before": "before (0.1)", "after": "after the redesign", "now": "now (with export, serve, Ray, app)"}


def markdown(*results: dict) -> str:
    def timing(r: dict, key: str) -> str:
        t = r.get(key) or {}
        return f"{t.get('a_median_s')} s ({t.get('ratio_median')} x)" if t.get("a_median_s") is not None else ""

    rows = [
        ("lines of `src/` (files)", lambda r: f"{r['src_lines']} ({r['src_files']})"),
        ("largest module", lambda r: "{} ({})".format(*r["largest_module"])),
        ("largest function", lambda r: "{} ({})".format(*r["largest_function"])),
        ("lines that branch on modality", lambda r: r["modality_branch_lines"]),
        ("definitions named per modality", lambda r: len(r["twin_definitions"])),
        ("`duplicates` pairs in `src/`", lambda r: r["duplicates"][0].split(" pairs")[0]),
        ("`import transferkit`, median (/ `import torch, timm`)", lambda r: timing(r, "import_transferkit")),
        ("import of the estimators", lambda r: timing(r, "import_estimators")),
        ("cold `transferkit predict` of one image", lambda r: timing(r, "cold_predict_one_image")),
        ("`predict` imports Lightning", lambda r: r.get("lightning_imported_by_predict")),
    ]
    m = results[-1]["machine"]
    lines = [f"Measured by `python benchmarks/codebase_metrics.py` on {m['cpu']} ({', '.join(m['flags'])}), "
             f"{m['threads']} threads; times are medians of 5 whole processes paired with `python -c 'import torch, "
             "timm'` by farm-bench.", "",
             "| | " + " | ".join(COLUMN_NAMES.get(r["label"], r["label"]) for r in results) + " |",
             "|---|" + "---|" * len(results)]
    lines += [f"| {name} | " + " | ".join(str(value(r)) for r in results) + " |" for name, value in rows]
    return "\n".join(lines)


def show(r: dict) -> None:
    m = r["machine"]
    print(f"machine: {m['cpu']} ({', '.join(m['flags']) or 'no AVX-512/AMX'}), {m['threads']} threads")
    print(f"src: {r['src_lines']} lines in {r['src_files']} files; largest module {r['largest_module'][0]} "
          f"({r['largest_module'][1]}); largest function {r['largest_function'][0]} ({r['largest_function'][1]})")
    print(f"modality: {r['modality_branch_lines']} branch lines; {len(r['twin_definitions'])} twin definitions: "
          f"{'; '.join(r['twin_definitions'])}")
    print("duplicates: " + (r["duplicates"][0] if r["duplicates"] else ""))
    for key in ("import_transferkit", "import_estimators", "cold_predict_one_image"):
        t = r.get(key)
        if t:
            print(f"{key}: {t['a_median_s']} s median (python -c 'import torch, timm': {t['b_median_s']} s; "
                  f"ratio {t['ratio_median']})")
    if "lightning_imported_by_predict" in r:
        print(f"predict imports Lightning: {r['lightning_imported_by_predict']}")


if __name__ == "__main__":
    main()
