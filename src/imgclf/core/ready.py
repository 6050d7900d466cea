"""The ready configs, sweeps and studies shipped inside the package (imgclf/configs/), found through
importlib.resources: an installed wheel has them exactly as a checkout does."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

from .errors import ConfigError

# Top-level configs are named by their stem; those of these subfolders as "folder/stem". Studies and
# sweeps are not configs one trains (`imgclf studies` lists the studies).
CONFIG_FOLDERS = ("", "transfer")


def ready_dir(sub: str = "") -> Path:
    """The folder of ready files, or its subfolder `sub` ("studies", "sweeps", "transfer")."""
    root = resources.files("imgclf") / "configs"
    # Study and config files reach each other by relative paths (extends:, base:, sweep:): that needs
    # real files, which every install but a zipped one gives.
    if not isinstance(root, Path):
        raise ConfigError("the ready configs need imgclf installed as files, not inside a zip archive")
    return root / sub if sub else root


def ready_configs() -> dict[str, Path]:
    """Every ready experiment config, name -> file, sorted by name (e.g. cifar10-wide, transfer/mnist-resnet18-224)."""
    found = {}
    for sub in CONFIG_FOLDERS:
        for f in ready_dir(sub).glob("*.yaml"):
            found[f"{sub}/{f.stem}" if sub else f.stem] = f
    return dict(sorted(found.items()))


def about(path: Path) -> str:
    """A ready file's first comment line, without its '#': what it is."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def ready_sweeps() -> dict[str, Path]:
    """Every ready sweep, name -> file, sorted by name (e.g. fashion-mnist-mlp-grid)."""
    return {f.stem: f for f in sorted(ready_dir("sweeps").glob("*.yaml"))}


def _file_or_ready(ref: str, ready: dict[str, Path], what: str, lister: str) -> str:
    if Path(ref).exists() or Path(ref).suffix in (".yaml", ".yml"):
        return ref  # a file: the loader says so if it is missing
    if ref in ready:
        return str(ready[ref])
    raise ConfigError(f"{ref!r} is neither a {what} file nor a ready {what}; the ready ones: {', '.join(ready)} "
                      f"({lister} lists them)")


def config_path(ref: Optional[str]) -> Optional[str]:
    """The file `--config REF` means: REF itself when it exists or looks like a file name (the loader then
    says it is missing), else the ready config of that name; None stays None (the default experiment)."""
    return None if ref is None else _file_or_ready(ref, ready_configs(), "config", "imgclf configs")


def sweep_path(ref: str) -> str:
    """The file `imgclf sweep REF` means: REF itself when it is a file, else the ready sweep of that name."""
    return _file_or_ready(ref, ready_sweeps(), "sweep", "imgclf configs --sweeps")
