"""Training and evaluation throughput of wide-deep-dropout on CIFAR-10 with crop+flip, side by side.

    python benchmarks/throughput.py [--quick] [--json] [--data-dir DIR] [--threads N] [--rounds R]
                                    [--device cpu|cuda] [--precision fp32|bf16|fp16] [--compile]

At batch 128 and batch 16, in one run:
 (a) imgclf end to end: Trainer.train_one_epoch over a slice of the training set (data
     gather, batched augmentation, normalization, forward, backward, SGD step);
 (b) compute only: forward + backward + step on one fixed batch, no data work;
 (c) the seed-style baseline: PIL images, torchvision RandomCrop(32, padding=4) +
     RandomHorizontalFlip + ToTensor + Normalize per sample, a DataLoader (0 workers);
 (d) evaluation of the test split (inference mode, batches of 1000).
(a), (b) and (c) are measured in R interleaved rounds (3; 1 with --quick) and reported
as medians. Prints images/s, seconds per 50,000-image epoch, GFLOP/s (training = 3 x forward, 2 FLOPs
per multiply-add), % of this machine's peak (a large matrix product measured now at the
same thread count, in the benchmark's precision), and the ratios a/b and a/c. On a GPU
the data live on the device and the timers wait for it (torch.cuda.synchronize).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few steps each, under a minute")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--data-dir", default=os.environ.get("IMGCLF_DATA_DIR") or str(ROOT.parent / "shared" / "datasets"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                    help="autocast dtype of (a), (b) and (d); the baseline (c) stays fp32")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model for (a) and (b)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved measurements of (a), (b), (c), reported as medians (default 3, 1 with --quick)")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    import torchvision.transforms as T
    from PIL import Image
    from torch import nn

    from imgclf.api import prepare_data
    from imgclf.config.load import load_config
    from imgclf.data.splits import Split, Splits
    from imgclf.engine.trainer import Trainer
    from imgclf.evaluation import evaluate_split
    from imgclf.models import build_model
    from imgclf.models.summary import summarize
    from imgclf.runtime.device import autocast, autocast_dtype

    steps = 12 if args.quick else 150
    cfg0 = load_config(ROOT / "configs" / "cifar10-wide-deep-dropout-aug.yaml",
                       [f"data.data_dir={args.data_dir}", "data.download=false"])
    t0 = time.perf_counter()
    full = prepare_data(cfg0)
    load_s = time.perf_counter() - t0
    macs = summarize(build_model("wide-deep-dropout", {}, full.shape, 10), full.shape).total_macs
    train_flops = 3 * 2 * macs  # per image
    amp = autocast_dtype(args.precision, dev)
    peak = peak_gflops(dev, amp or torch.float32, (1024 if args.quick else 2048) * (4 if dev.type == "cuda" else 1))
    if dev.type == "cuda":
        full = Splits(Split(full.train.x.to(dev), full.train.y.to(dev)), None,
                      Split(full.test.x.to(dev), full.test.y.to(dev)), full.classes, full.mean, full.std)
    out = {"threads": torch.get_num_threads(), "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "precision": args.precision, "compile": args.compile, "peak_gflops": round(peak, 1), "data_load_seconds": round(load_s, 2),
           "mult_adds": macs, "steps": steps, "rounds": args.rounds, "batches": {}}
    for bs in (128, 16):
        n = steps * bs
        cfg = load_config(ROOT / "configs" / "cifar10-wide-deep-dropout-aug.yaml",
                          [f"data.data_dir={args.data_dir}", f"train.batch_size={bs}", "train.epochs=1",
                           f"train.precision={args.precision}", f"train.compile={args.compile}"])
        sub = Splits(Split(full.train.x[:n], full.train.y[:n]), None, full.test, full.classes, full.mean, full.std)
        torch.manual_seed(0)
        model = build_model("wide-deep-dropout", {}, full.shape, 10).to(dev)
        trainer = Trainer(cfg, model, sub, dev)
        warm = Splits(Split(full.train.x[: 3 * bs], full.train.y[: 3 * bs]), None, full.test, full.classes, full.mean,
                      full.std)
        trainer.splits = warm
        trainer.train_one_epoch()  # warm-up (allocator, kernels)
        trainer.splits = sub
        # Each measurement starts from the same weights: (b) overfits its one batch, and weights
        # drifting far (or to NaN, or into denormals) would change what the next round measures.
        fresh = copy.deepcopy((model.state_dict(), trainer.optimizer.state_dict()))

        def restart() -> None:
            model.load_state_dict(fresh[0])
            trainer.optimizer.load_state_dict(fresh[1])

        def end_to_end() -> float:
            restart()
            sync(dev)
            t = time.perf_counter()
            trainer.train_one_epoch()
            sync(dev)
            return n / (time.perf_counter() - t)

        # (b) compute only: one fixed, already-augmented batch
        xb = trainer.transform.train(full.train.x[:bs], torch.Generator().manual_seed(0))
        yb = full.train.y[:bs]
        opt, loss_fn = trainer.optimizer, nn.CrossEntropyLoss()
        fwd = trainer.forward  # channels_last (and compiled with --compile)

        def compute_only() -> float:
            restart()
            model.train()
            for i in range(steps + 3):
                if i == 3:
                    sync(dev)
                    t = time.perf_counter()
                with autocast(dev, amp):
                    out_b = fwd(xb)
                loss = loss_fn(out_b.float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sync(dev)
            return steps * bs / (time.perf_counter() - t)

        # (c) the seed-style pipeline
        cpu_x, cpu_y = full.train.x[:n].cpu(), full.train.y[:n].cpu()
        pil = [Image.fromarray(cpu_x[i].permute(1, 2, 0).numpy()) for i in range(n)]
        tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize(full.mean.tolist(), full.std.tolist())])

        class DS(torch.utils.data.Dataset):
            def __len__(self):
                return n

            def __getitem__(self, i):
                return tf(pil[i]), int(cpu_y[i])

        loader = torch.utils.data.DataLoader(DS(), batch_size=bs, shuffle=True, num_workers=0)
        torch.manual_seed(0)
        m2 = build_model("wide-deep-dropout", {}, full.shape, 10).to(dev)
        opt2 = torch.optim.SGD(m2.parameters(), lr=0.05, momentum=0.9)

        def baseline() -> float:
            t = time.perf_counter()
            for xb2, yb2 in loader:
                loss = loss_fn(m2(xb2.to(dev)), yb2.to(dev))
                opt2.zero_grad()
                loss.backward()
                opt2.step()
            sync(dev)
            return n / (time.perf_counter() - t)

        # Interleaved rounds, median of each: a slow spell of the machine (another process, a
        # clock change) then lands on all three measurements alike instead of skewing one ratio.
        rounds = [(end_to_end(), compute_only(), baseline()) for _ in range(args.rounds)]
        a, b, c = (statistics.median(r[k] for r in rounds) for k in range(3))
        # (d) evaluation
        test = Split(full.test.x[: 2000 if args.quick else 10000], full.test.y[: 2000 if args.quick else 10000])
        sync(dev)
        t = time.perf_counter()
        evaluate_split(fwd, test, trainer.transform, dev, 10, 1000, full=False, amp_dtype=amp)
        sync(dev)
        d = len(test) / (time.perf_counter() - t)
        gf = a * train_flops / 1e9
        out["batches"][str(bs)] = {
            "end_to_end_images_per_s": round(a, 1), "compute_only_images_per_s": round(b, 1),
            "baseline_images_per_s": round(c, 1), "eval_images_per_s": round(d, 1),
            "seconds_per_50k_epoch": round(50000 / a, 1), "end_to_end_gflops": round(gf, 1),
            "percent_of_peak": round(100 * gf / peak, 1),
            "end_to_end_vs_compute": round(a / b, 3), "end_to_end_vs_baseline": round(a / c, 3)}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{out['device']}, {out['threads']} threads, {args.precision} peak {peak:.0f} GFLOP/s (matrix product), wide-deep-dropout "
          f"{macs:,} mult-adds/image, {steps} steps per measurement, median of {args.rounds} interleaved rounds")
    print(f"{'batch':>5} {'(a) e2e':>9} {'(b) comp':>9} {'(c) seed':>9} {'(d) eval':>9} {'s/epoch':>8} "
          f"{'GFLOP/s':>8} {'%peak':>6} {'a/b':>6} {'a/c':>6}")
    for bs, r in out["batches"].items():
        print(f"{bs:>5} {r['end_to_end_images_per_s']:>9.0f} {r['compute_only_images_per_s']:>9.0f} "
              f"{r['baseline_images_per_s']:>9.0f} {r['eval_images_per_s']:>9.0f} {r['seconds_per_50k_epoch']:>8.1f} "
              f"{r['end_to_end_gflops']:>8.1f} {r['percent_of_peak']:>6.1f} {r['end_to_end_vs_compute']:>6.2f} "
              f"{r['end_to_end_vs_baseline']:>6.2f}")
    print("(images/s; a: imgclf end to end, b: compute only, c: seed-style PIL + torchvision + DataLoader)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
