"""Every imgclf command in the README and the docs/ pages parses as written, and every config,
study or sweep file it names exists: a renamed option or file fails here, not in a user's shell."""
import re
import shlex
from pathlib import Path

import pytest

from imgclf.cli.main import build_parser
from imgclf.core.ready import ready_configs
from imgclf.studies import ready_studies

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.S)


def _commands():
    out = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():  # a continued line is one command
                line = line.split("  #")[0].split(" # ")[0].strip()
                m = re.search(r"(?:^|\s)imgclf\s+(.*)$", line)
                if not m or line.startswith(("#", "$ python", "torchrun")) or "..." in line or "<" in line:
                    continue
                out.append(pytest.param(page.name, m.group(1), id=f"{page.name}: {m.group(1)[:60]}"))
    return out


COMMANDS = _commands()


def test_the_pages_hold_commands():
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize("page, text", COMMANDS)
def test_each_documented_command_parses_and_its_files_exist(page, text):
    argv = shlex.split(text)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{page}: `imgclf {text}` does not parse (exit {e.code})")
    for attr in ("config", "write"):
        path = getattr(args, attr, None)
        if attr == "config" and path and path.startswith("configs/"):
            assert (ROOT / path).is_file(), f"{page}: {path} does not exist"
        elif attr == "config" and path and not path.endswith((".yaml", ".yml")):
            assert path in ready_configs(), f"{page}: no ready config {path}"
    ref = getattr(args, "study", None)
    if args.command == "study" and ref and not ref.endswith((".yaml", ".yml")):
        assert ref in {p.stem for p in ready_studies()}, f"{page}: no ready study {ref}"
    sweep = getattr(args, "sweep_file", None) or (argv[1] if args.command == "sweep" and len(argv) > 1 else None)
    if sweep and sweep.startswith("configs/"):
        assert (ROOT / sweep).is_file(), f"{page}: {sweep} does not exist"
