"""The one helper that starts a child `imgclf` process (sweep workers, a study's runs): the same
Python and the same installed package as the parent, whatever PATH holds."""
from __future__ import annotations

import subprocess
import sys


def imgclf_command(*args: str) -> list[str]:
    """The argv of `imgclf ARGS...` run by this interpreter."""
    return [sys.executable, "-m", "imgclf.cli.main", *map(str, args)]


def start_imgclf(*args: str, **popen) -> subprocess.Popen:
    """Start `imgclf ARGS...` as a child process (keyword arguments go to subprocess.Popen)."""
    return subprocess.Popen(imgclf_command(*args), **popen)
