"""MkDocs hooks: two pages made at build time from what they describe, so they cannot go stale.

- ``benchmarks/index.md``: every file in ``benchmarks/results/``, with the tables its benchmark script prints from it
  (``python benchmarks/SCRIPT.py --table``) or, for a Markdown results file, the file itself.
- ``reference/cli.md``: every command's ``--help`` (typer's own Markdown renderer, ``typer ... utils docs``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# script: the results files its --table reads
TABLES = {"fewshot.py": ("fewshot.jsonl",), "estimate_bias.py": ("estimate-bias.jsonl",),
          "open_set.py": ("open-set-amd-epyc.jsonl",), "task_shapes.py": ("task-shapes-amd-epyc.jsonl",),
          "unlabeled.py": ("unlabeled.jsonl", "unlabeled.md"), "text_fit_time.py": ("text-fit-time.jsonl",)}
# scripts whose results file is named by the machine that ran them: told which to read, whatever builds the docs
NAMED_BY_MACHINE = ("open_set.py", "task_shapes.py")


def _run(*args: str, cwd: Path = ROOT) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "COLUMNS": "100"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def _shifted(markdown: str, levels: int) -> str:
    """Headings moved down ``levels`` so that an included file nests under this page's own headings."""
    out, fence = [], False
    for line in markdown.splitlines():
        fence ^= line.startswith("```")
        out.append("#" * levels + line if not fence and line.startswith("#") else line)
    return "\n".join(out)


def benchmarks_page() -> str:
    parts = ["# Results files", "",
             "Made when the docs are built, from `benchmarks/results/`: each benchmark script's tables as it prints "
             "them (`python benchmarks/SCRIPT.py --table`), then every other results file. Each table names the "
             "machine it was measured on; the Accuracy and Speed pages say what the numbers mean.", ""]
    shown: set[str] = set()
    for script, files in TABLES.items():
        parts += [f"## `benchmarks/{script}`", "", f"From {', '.join(f'`{f}`' for f in files)}.", "",
                  _shifted(_run(script, "--table", *(("--results", f"results/{files[0]}") if script in NAMED_BY_MACHINE
                                                      else ()), cwd=ROOT / "benchmarks"), 2), ""]
        shown.update(files)
    for path in sorted(RESULTS.iterdir()):
        if path.name in shown:
            continue
        parts += [f"## `{path.name}`", ""]
        if path.suffix == ".md":
            parts += [_shifted(path.read_text(encoding="utf-8"), 2), ""]
        else:
            rows = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
            parts += [f"Raw results, {path.stat().st_size:,} bytes ({rows} line(s)); read it with the script that "
                      "wrote it.", ""]
    return "\n".join(parts)


def cli_page() -> str:
    text = _run("-m", "typer", "transferkit.cli", "utils", "docs", "--name", "transferkit", "--title",
                "Command line")
    return text


def on_files(files, config):
    for uri, make in (("benchmarks/index.md", benchmarks_page), ("reference/cli.md", cli_page)):
        files.append(File.generated(config, uri, content=make()))
    return files
