"""imgclf built as a wheel and installed in a fresh virtual environment, away from any checkout, has its
ready configs, sweeps and studies: `imgclf studies` lists them, a ready study dry-runs, a ready config
is found by name."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from imgclf.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env=None):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_the_installed_wheel_carries_the_ready_files(tmp_path, capsys):
    pytest.importorskip("setuptools")
    pytest.importorskip("pip")
    # Built from a copy: an in-tree build would leave build/ and an .egg-info in the checkout.
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src" / "imgclf", tree / "src" / "imgclf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", tmp_path / "wheels"], cwd=tree)
    wheel = next((tmp_path / "wheels").glob("imgclf-*.whl"))

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=tmp_path)
    # torch and the other dependencies come from this interpreter's site-packages, added by a .pth file:
    # a folder a .pth names is put on sys.path without reading its own .pth files, so the checkout's
    # editable install there (an __editable__ .pth) stays unseen.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "dependencies.pth").write_text("".join(f"{d}\n" for d in deps))

    away = tmp_path / "elsewhere"  # no checkout in sight: no configs/ folder, no src/
    away.mkdir()
    where = _run([python, "-c", "import imgclf; print(imgclf.__file__)"], away, env).strip()
    assert Path(where).is_relative_to(venv), where
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert _run([python, "-m", "imgclf", "--version"], away, env).split() == ["imgclf", version]

    # --no-cost: the costs time a few steps of every run (minutes on a busy machine) and are not what is checked
    listed = {line.split()[0] for line in _run([python, "-m", "imgclf", "studies", "--no-cost"], away, env).splitlines()}
    ready = {p.stem for p in (ROOT / "src" / "imgclf" / "configs" / "studies").glob("*.yaml")}
    assert "004-perceptron" in ready and ready <= listed, ready - listed
    _run([python, "-m", "imgclf", "study", "004-perceptron", "--dry-run"], away, env)
    configs = {line.split()[0] for line in _run([python, "-m", "imgclf", "configs"], away, env).splitlines()}
    assert {"cifar10-wide", "transfer/mnist-resnet18-224"} <= configs
    # a ready config by name: the same model as the checkout's file
    installed = json.loads(_run([python, "-m", "imgclf", "summary", "-c", "cifar10-wide", "--json"], away, env))
    assert main(["summary", "-c", str(ROOT / "src" / "imgclf" / "configs" / "cifar10-wide.yaml"), "--json"]) == 0
    assert installed["total_params"] == json.loads(capsys.readouterr().out)["total_params"] > 0
    assert sorted(p.name for p in away.iterdir()) == []  # the dry run and the lists wrote nothing here
