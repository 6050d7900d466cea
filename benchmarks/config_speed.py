"""Compute-only training speed of a config's model under variants, side by side in one run.

    python benchmarks/config_speed.py [-c CONFIG] [--variant NAME=KEY=VALUE[;KEY=VALUE...]]...
                                      [--batch N] [--threads N] [--rounds R] [--size S] [--quick] [--json]

Each variant is the config with dotted overrides (as `imgclf train --set`), e.g.
`--variant "24-88-88=model.widths=[24,88,88]"`; the config itself is always the first,
named `config`. For each, one training step as the trainer runs it once the whitening
bias is frozen: forward, loss, backward and the config's optimizer step on one fixed
random batch, channels_last, fp32, no data work. The variants are measured in R
interleaved rounds (each round times a few steps of every variant in turn), so a machine
whose speed drifts from minute to minute (shared cloud cores) slows them all alike; the
report gives each variant's median and best images/s, its trainable parameters and
multiply-adds per image, and its median speed relative to the config's.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from imgclf.config.load import load_config  # noqa: E402
from imgclf.core.errors import ImgclfError  # noqa: E402
from imgclf.engine.optim import build_optimizer  # noqa: E402
from imgclf.models import build_model  # noqa: E402
from imgclf.models.summary import summarize  # noqa: E402


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'NAME=k1=v1;k2=v2' -> ('NAME', ['k1=v1', 'k2=v2'])."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"--variant {text!r} is not NAME=KEY=VALUE[;KEY=VALUE...]; "
                         f"e.g. --variant \"thin=model.widths=[24,88,88]\"")
    return name, [s for s in rest.split(";") if s]


def make_step(config: str, overrides: list[str], batch: int, size: int, classes: int = 10):
    """Build the variant's model and optimizer; return (step function, trainable params, mult-adds)."""
    cfg = load_config(config, overrides)
    model = build_model(cfg.model.name, cfg.model.options, (3, size, size), classes)
    info = summarize(model, (3, size, size))
    for m in model.modules():
        if hasattr(m, "set_epoch"):
            m.set_epoch(10**6)  # past every layer's trained-for-the-first-epochs window
    model = model.to(memory_format=torch.channels_last).train()
    opt = build_optimizer(model, cfg.optim)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), generator=g)

    def step() -> None:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, info.trainable_params, info.total_macs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", default=str(ROOT / "configs" / "cifar10-1h-cpu.yaml"))
    ap.add_argument("--variant", action="append", default=[], help="NAME=KEY=VALUE[;KEY=VALUE...]")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    ap.add_argument("--quick", action="store_true", help="1 round of 1 step at batch 16: a smoke test")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.batch, a.rounds, a.steps = 16, 1, 1
    torch.set_num_threads(a.threads)
    try:
        variants = [("config", [])] + [parse_variant(v) for v in a.variant]
    except ValueError as e:
        ap.error(str(e))  # one line and exit 2, like any other bad argument
    try:
        built = [(name, *make_step(a.config, ov, a.batch, a.size)) for name, ov in variants]
    except ImgclfError as e:  # a bad config or override: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    speeds: dict[str, list[float]] = {name: [] for name, *_ in built}
    for _ in range(a.rounds):
        for name, step, _, _ in built:
            step()  # untimed: the first step after another model's pays for cold caches
            t = time.perf_counter()
            for _ in range(a.steps):
                step()
            speeds[name].append(a.batch * a.steps / (time.perf_counter() - t))
    base = statistics.median(speeds["config"])
    rows = [{"variant": name, "overrides": ov, "trainable_params": params, "mult_adds": macs,
             "median_images_per_s": statistics.median(speeds[name]), "best_images_per_s": max(speeds[name]),
             "vs_config": statistics.median(speeds[name]) / base}
            for (name, ov), (_, _, params, macs) in zip(variants, built)]
    if a.json:
        print(json.dumps({"batch": a.batch, "threads": a.threads, "rounds": a.rounds, "variants": rows}))
        return 0
    print(f"compute-only training step, batch {a.batch}, {a.threads} threads, fp32, median of {a.rounds} rounds")
    print(f"{'variant':<16} {'params':>9} {'M mult-adds':>12} {'images/s':>9} {'best':>7} {'vs config':>10}")
    for r in rows:
        print(f"{r['variant']:<16} {r['trainable_params']:>9,} {r['mult_adds'] / 1e6:>12.1f} "
              f"{r['median_images_per_s']:>9.0f} {r['best_images_per_s']:>7.0f} {r['vs_config']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
