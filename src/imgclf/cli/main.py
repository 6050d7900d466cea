"""`imgclf` entry point: parse the command, run it, turn user errors into one line."""
from __future__ import annotations

import argparse
import os
import sys

from ..core.errors import ImgclfError
from . import (
    evaluate_cmd,
    explain_cmd,
    inspect_cmd,
    export_cmd,
    list_cmd,
    lr_find_cmd,
    predict_cmd,
    report_cmd,
    results_cmd,
    study_cmd,
    summary_cmd,
    sweep_cmd,
    train_cmd,
)

COMMANDS = [train_cmd, inspect_cmd, lr_find_cmd, evaluate_cmd, predict_cmd, export_cmd, explain_cmd, summary_cmd, sweep_cmd, study_cmd, results_cmd, report_cmd, list_cmd]


def version() -> str:
    """The installed distribution's version; the package's own where no metadata is found (a bare checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("imgclf")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgclf", description="Image classification by deep learning.")
    parser.add_argument("--version", action="version", version=f"imgclf {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in COMMANDS:
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; user errors print 'imgclf: error: ...' and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ImgclfError as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process fails alike: say it once
            print(f"imgclf: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imgclf: interrupted; a training run continues with: imgclf train --resume RUN", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, permission denied...: the environment, not a bug
        print(f"imgclf: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
