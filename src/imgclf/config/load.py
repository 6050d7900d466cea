"""Loading an experiment: the schema's defaults, then a YAML file (and what it `extends`), then
`--set key=value` overrides, checked once by config/rules.py before anything runs.

An unknown key, a value of the wrong type or out of range raises a ConfigError naming the key and
what is allowed.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError
from .fields import unknown_key
from .rules import validate
from .schema import SECTIONS, ExperimentConfig

# Mappings whose keys the user chooses: a model's builder options (checked against its signature
# later) and the per-prefix rate factors.
FREE_KEYS = ("model", "optim.lr_scales")


def merge(base: dict, update: Any, *, strict: bool = False, where: str = "") -> dict:
    """Deep-merge `update` over a copy of `base`: the one merge of configs, `extends` and sweeps.

    A `model` section naming another model replaces the base's (its options belong to the
    other builder). With `strict`, keys the base lacks are refused, except model options,
    which are checked against the builder's signature later.
    """
    if not isinstance(update, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, got {update!r}")
    out = copy.deepcopy(base)
    for key, val in update.items():
        if (not where and key == "model" and isinstance(val, dict) and "name" in val
                and val["name"] != (out.get("model") or {}).get("name")):
            out[key] = copy.deepcopy(val)
            continue
        if strict and key not in out and where not in FREE_KEYS:
            raise unknown_key(str(key), list(out), f"{where}." if where else "")
        if isinstance(out.get(key), dict) and isinstance(val, dict):
            out[key] = merge(out[key], val, strict=strict, where=f"{where}.{key}" if where else str(key))
        else:
            out[key] = copy.deepcopy(val)
    return out


def flatten(d: dict, prefix: str = "") -> dict:
    """A config mapping as {'section.key': value} (model options stay one value, under 'model')."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix == "" and k == "model"):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'optim.lr=0.1' into (['optim', 'lr'], 0.1); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. optim.lr=0.1)")
    key, _, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"override {text!r}: bad key {key!r}; use dotted keys such as optim.lr")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise ConfigError(f"override {key}: the value has too many digits to be a number") from None
    return parts, value


def _nest(parts: list[str], value: Any) -> dict:
    out: Any = value
    for p in reversed(parts):
        out = {p: out}
    return out


def read_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping from `path`, with one-line errors for missing or malformed files."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, ValueError) as e:  # ValueError: not UTF-8, or a NUL byte in the path
        raise ConfigError(f"cannot read config file {p}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {p} is not valid YAML{at}; fix the syntax") from None
    except ValueError as e:  # an integer of more digits than Python converts (4,300)
        raise ConfigError(f"config file {p}: {str(e).split(':')[0]}; write a smaller number") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of sections ({', '.join(SECTIONS)})")
    return data


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """The mapping `raw` with 'key=value' overrides merged in (not validated: a sweep's base, say)."""
    for text in overrides:
        raw = merge(raw, _nest(*parse_override(text)))
    return raw


def from_dict(raw: dict, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Defaults, updated by the mapping `raw`, then by 'key=value' overrides; validated."""
    merged = ExperimentConfig().to_dict()
    # A mapping that names a model replaces the default model's options instead of merging with them.
    if isinstance(raw, dict) and isinstance(raw.get("model"), dict) and "name" in raw["model"]:
        merged["model"] = {}
    merged = merge(merged, raw, strict=True)
    for text in overrides:
        merged = merge(merged, _nest(*parse_override(text)), strict=True)
    return validate(merged)


def read_experiment(path: str | os.PathLike, _seen: tuple = ()) -> dict:
    """Read an experiment YAML, following `extends: other.yaml` (relative to the file) to its parents."""
    p = Path(path)
    if p.resolve() in _seen:
        raise ConfigError(f"config file {p}: 'extends' loops back to itself")
    return resolve_extends(read_yaml(p), p.parent, _seen + (p.resolve(),), str(p))


def resolve_extends(raw: dict, folder: Path, _seen: tuple = (), where: str = "config") -> dict:
    """`raw` merged over the experiment its `extends:` names (a path relative to `folder`), if any."""
    raw = dict(raw)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{where}: extends must be the path of another YAML file")
    return merge(read_experiment(Path(folder) / parent, _seen), raw)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Load and validate an experiment: defaults, then the YAML file at `path` (and what it extends), then overrides."""
    raw = read_experiment(path) if path is not None else {}
    return from_dict(raw, overrides)


def save_config(cfg: ExperimentConfig) -> str:
    """The config as YAML text, loadable by `load_config`."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
