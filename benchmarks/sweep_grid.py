"""The seed report's 384-configuration MLP grid on Fashion-MNIST: imgclf's sweep against a plain loop.

    python benchmarks/sweep_grid.py [--quick] [--json] [--workers 2] [--data-dir DIR]

(a) runs `imgclf sweep configs/sweeps/fashion-mnist-mlp-grid.yaml --workers N` end to end
    (configurations sharing a batch size trained as one computation, epochs read off one
    longest run), wall clock from start to the exported results;
(b) times a plain PyTorch loop (DataLoader over the tensors, torch.optim.SGD, one
    configuration at a time) for one epoch of each (batch size, hidden width) pair, measured
    in this same run, and extrapolates the grid: sum over the 384 configurations of
    epochs x seconds per epoch (the learning rate does not change the time).
--quick shrinks both to a small slice (under a minute) for the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "configs" / "sweeps" / "fashion-mnist-mlp-grid.yaml"


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def plain_epoch_seconds(x: torch.Tensor, y: torch.Tensor, hidden: int, batch: int, max_steps: int | None) -> float:
    """Seconds for one epoch of the one-by-one loop (or its rate over max_steps, scaled to an epoch)."""
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), hidden), nn.ReLU(), nn.Linear(hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    steps = 0
    t0 = time.perf_counter()
    for xb, yb in loader:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    dt = time.perf_counter() - t0
    return dt * len(loader) / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small slice, under a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("IMGCLF_DATA_DIR") or str(ROOT.parent / "shared" / "datasets"))
    args = ap.parse_args(argv)

    from imgclf.api import prepare_data
    from imgclf.sweeps.space import grid_points
    from imgclf.sweeps.spec import parse_sweep

    raw = yaml.safe_load(GRID.read_text())
    data_dir = Path(args.data_dir)
    raw["base"]["data"]["data_dir"] = str(data_dir / "fashion-mnist" if (data_dir / "fashion-mnist").is_dir() else data_dir)
    raw["base"]["data"]["download"] = False
    if args.quick:
        raw["base"]["data"]["max_train"] = 2000
        raw["base"]["data"]["max_test"] = 1000
        raw["space"] = {"train.batch_size": [16, 64], "train.epochs": [1, 2], "optim.lr": [0.1, 0.01],
                        "model.hidden.0": [10, 25]}
    spec = parse_sweep(raw)
    points = grid_points(spec.space)

    t0 = time.perf_counter()
    splits = prepare_data(spec.config_for(points[0]))  # decode (or read the cache) once, outside the timings
    load_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.yaml"
        path.write_text(yaml.safe_dump(raw))
        cmd = [sys.executable, "-m", "imgclf.cli.main", "sweep", str(path), "--name", "grid",
               "--sweeps-dir", str(Path(tmp) / "sweeps"), "--workers", str(args.workers)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sweep_s = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        from imgclf.sweeps.analysis import correlations, format_table, load_sweep_study, ranked, trials_frame

        spec2, study, folder = load_sweep_study(Path(tmp) / "sweeps" / "grid")
        df = trials_frame(study, spec2)
        batched_lines = sum("as one batched computation" in l for l in (folder / "sweep.log").read_text().splitlines())
        r = ranked(df, spec2)
        top, bottom = format_table(r.head(5), spec2, "top 5:"), format_table(r.tail(5).iloc[::-1], spec2, "bottom 5:")
        corr = correlations(df, spec2)["val_acc"].drop("val_acc").round(3).to_dict()

    # (b) the one-by-one loop, measured now on this machine, extrapolated over the grid
    x, y = splits.train.x.float().div(255), splits.train.y
    threads = torch.get_num_threads()
    per_epoch = {}
    for b in sorted({p["train.batch_size"] for p in points}):
        for h in sorted({p["model.hidden.0"] for p in points}):
            per_epoch[(b, h)] = plain_epoch_seconds(x, y, h, b, 300 if args.quick else 1500)
    loop_s = sum(p["train.epochs"] * per_epoch[(p["train.batch_size"], p["model.hidden.0"])] for p in points)

    result = {
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "configurations": len(points), "complete": int((df["status"] == "complete").sum()),
        "batched_cohorts": batched_lines, "workers": args.workers,
        "sweep_seconds": round(sweep_s, 1), "data_load_seconds": round(load_s, 2),
        "one_by_one_seconds_extrapolated": round(loop_s, 1), "one_by_one_threads": threads,
        "speedup": round(loop_s / sweep_s, 1),
        "one_by_one_seconds_per_epoch": {f"batch{b}-h{h}": round(s, 3) for (b, h), s in per_epoch.items()},
        "correlation_with_val_acc": corr, "quick": args.quick,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['machine']}")
    print(f"grid: {len(points)} configurations, {result['complete']} complete, "
          f"{batched_lines} batched cohort(s), {args.workers} worker(s)")
    print(f"imgclf sweep:          {sweep_s:8.1f} s  ({sweep_s / 60:.1f} min)")
    print(f"one-by-one loop (est): {loop_s:8.1f} s  ({loop_s / 3600:.2f} h), from one measured epoch per (batch, width)")
    print(f"speed-up:              {loop_s / sweep_s:8.1f} x")
    print(top)
    print(bottom)
    print("correlation with val_acc: " + ", ".join(f"{k} {v:+.2f}" for k, v in corr.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
