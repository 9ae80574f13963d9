"""Every command in the "Use it" blocks of the README and of the docs' tour of the commands runs as written, on small
data made here (the names in them are mapped to real files), and succeeds."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferkit.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", ROOT / "docs" / "guides" / "commands.md")
runner = CliRunner()


def _use_it_commands(page: Path) -> list[str]:
    block = re.search(r"## Use it\s+```bash\n(.*?)```", page.read_text(encoding="utf-8"), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip().startswith("transferkit")]


SERVERS = ("serve", "app")  # they run until stopped: test_serve.py and test_app.py start and stop them
COMMANDS = [c for c in dict.fromkeys(c for page in PAGES for c in _use_it_commands(page))
            if c.split()[1] not in SERVERS]
SLOW = ("compare", "pretrain", "reviews.csv", "textmodel")  # they train networks (auto tunes text encoders)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, small_train, text_csv):
    root = tmp_path_factory.mktemp("readme")
    for name in ("photos", "test_photos", "test", "big_related_task", "new_photos", "more"):
        shutil.copytree(small_train, root / name)
    shutil.copy(text_csv, root / "reviews.csv")
    images = sorted(small_train.rglob("*.png"))
    shutil.copy(images[0], root / "a.jpg")  # PNG bytes under a .jpg name: decoded by content
    shutil.copy(images[-1], root / "b.png")
    return root


def test_the_readme_and_the_tour_list_the_commands_users_start_with():
    readme = _use_it_commands(PAGES[0])
    assert 6 <= len(readme) <= 8 and readme[0].startswith("transferkit fit")
    assert len(COMMANDS) >= 12 and {c.split()[1] for c in COMMANDS} >= {"fit", "evaluate", "predict", "rank", "models"}


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if any(f" {s} " in f" {c} " for s in SLOW)
                                     else c for c in COMMANDS])
def test_readme_command_runs(command, workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    if not command.startswith("transferkit fit") and not (workspace / "model").exists():
        for fit in (c for c in COMMANDS if c.startswith("transferkit fit")):
            assert runner.invoke(app, shlex.split(fit)[1:]).exit_code == 0
    args = shlex.split(command)[1:]
    if args[:1] == ["fit"] and Path(args[args.index("--out") + 1]).exists():
        args.append("--overwrite")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, f"{command}\n{result.output}"
