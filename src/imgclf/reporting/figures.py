"""Figures for written reports: labelled axes, units, readable in print; saved as PNG and SVG.

Each function takes plain data (histories, metrics, arrays), writes `path` (.png) and a
.svg beside it, and returns the PNG's path.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..core.atomic import atomic_write


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # parse_math off: class names come from folder names, and a '$' in one must print as itself,
    # not start TeX math (which an unbalanced one turns into a parse error).
    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.grid": True, "grid.alpha": 0.3,
                         "text.parse_math": False})
    return plt


def log_axis(ax, axis: str = "x") -> None:
    """A log scale whose ticks read 0.001, 100, 1e+06: the default labels are TeX (10^-3), which
    prints as raw markup with text.parse_math off."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_minor_formatter(NullFormatter())


def epoch_axis(ax) -> None:
    """An x axis of whole epochs: matplotlib's default ticks read 2.5, 7.5 on short runs."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save_figure(fig, path, layout: bool = True) -> Path:
    """Write the figure as PNG and SVG (atomically); `layout=False` keeps a layout already made."""
    plt = pyplot()
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=140), binary=True)
    atomic_write(path.with_suffix(".svg"), lambda f: fig.savefig(f, format="svg"), binary=True)
    plt.close(fig)
    return path


def learning_curves(history: Sequence[dict], path, best_epoch: Optional[int] = None, title: str = "") -> Path:
    """Train/val loss and accuracy per epoch, the best epoch marked; the gap shows overfitting."""
    plt = pyplot()
    ep = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((a, "loss", "cross-entropy loss"), (b, "acc", "accuracy (%)")):
        scale = 100.0 if key == "acc" else 1.0
        ax.plot(ep, [scale * r[f"train_{key}"] for r in history], "o-", ms=3, label="train")
        if history and history[0].get(f"val_{key}") is not None:
            ax.plot(ep, [scale * r[f"val_{key}"] for r in history], "s-", ms=3, label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"best epoch ({best_epoch})")
        epoch_axis(ax)
        ax.set_ylabel(label)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def _labels(classes: Sequence[str], width: int = 24) -> list[str]:
    """Class names short enough for an axis: a long folder name would squeeze the plot to nothing."""
    return [c if len(c) <= width else c[: width - 1] + "\u2026" for c in map(str, classes)]


def confusion_matrix(conf, classes: Sequence[str], path, title: str = "") -> Path:
    """The confusion matrix as counts and row-normalized (each true class sums to 100%)."""
    plt = pyplot()
    m = np.asarray(conf, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    n = len(classes)
    classes = _labels(classes)
    size = max(4.5, 0.45 * n + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for ax, data, fmt, label in ((axes[0], m, "{:.0f}", "images"), (axes[1], 100 * norm, "{:.0f}", "% of true class")):
        im = ax.imshow(data, cmap="Blues")
        ax.set_xticks(range(n), classes, rotation=45, ha="right")
        ax.set_yticks(range(n), classes)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.grid(False)
        if n <= 20:
            hi = data.max() or 1
            for (r, c), v in np.ndenumerate(data):
                ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="white" if v > hi / 2 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, label=label)
    axes[0].set_title("counts")
    axes[1].set_title("row-normalized")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def per_class_accuracy(accuracy: Sequence[Optional[float]], classes: Sequence[str], path, title: str = "") -> Path:
    """A bar per class: the share of its test images classified correctly."""
    plt = pyplot()
    vals = [100 * (a or 0.0) for a in accuracy]
    classes = _labels(classes)
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(classes) + 2), 3.8))
    bars = ax.bar(range(len(classes)), vals, color="tab:blue")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=8)
    ax.set_title(title or "accuracy per class")
    return save_figure(fig, path)


def image_grid(images, titles: Sequence[str], path, suptitle: str = "", cols: int = 6) -> Path:
    """The given images (uint8 N x C x H x W) in a grid, each with its title."""
    plt = pyplot()
    imgs = np.asarray(images)
    n = len(imgs)
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        im = imgs[i].transpose(1, 2, 0)
        ax.imshow(im[..., 0] if im.shape[2] == 1 else im, cmap="gray" if im.shape[2] == 1 else None,
                  interpolation="nearest")
        ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return save_figure(fig, path)


def misclassified_grid(images, true: Sequence[int], pred: Sequence[int], prob: Sequence[float],
                       classes: Sequence[str], path, cols: int = 6) -> Path:
    """The given images (uint8 N x C x H x W), each titled true -> predicted (probability)."""
    classes = _labels(classes, 14)
    titles = [f"{classes[t]}\n-> {classes[p]} ({100 * q:.0f}%)" for t, p, q in zip(true, pred, prob)]
    return image_grid(images, titles, path, "most confidently misclassified test images (true -> predicted)", cols)


def preview_grid(images, labels: Sequence[int], classes: Sequence[str], path, cols: int = 8) -> Path:
    """A first look at a data set: training images (uint8 N x C x H x W) with their class names."""
    names = _labels(classes, 14)
    return image_grid(images, [names[int(y)] for y in labels], path, "training images", cols)


def compare_runs(runs: Sequence[dict], path) -> Path:
    """Runs side by side: test accuracy against parameters and against multiply-adds, and val curves.

    Each run is a dict with name, params, mult_adds, top1 (0..1, or None for a run whose test
    split was not scored: it shows in the curves only) and history.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for r in runs:
        for ax, key in ((axes[0], "params"), (axes[1], "mult_adds")) if r["top1"] is not None else ():
            ax.scatter(r[key], 100 * r["top1"], s=40)
            ax.annotate(r["name"], (r[key], 100 * r["top1"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        h = r.get("history") or []
        key = "val_acc" if h and h[0].get("val_acc") is not None else "train_acc"
        axes[2].plot([x["epoch"] for x in h], [100 * x[key] for x in h], label=r["name"])
    axes[0].set_xlabel("trainable parameters")
    axes[1].set_xlabel("multiply-adds per image")
    for ax in axes[:2]:
        log_axis(ax)
        ax.set_ylabel("test top-1 accuracy (%)")
    epoch_axis(axes[2])
    axes[2].set_ylabel("validation accuracy (%)")
    axes[2].legend(fontsize=8)
    return save_figure(fig, path)


def batch_size_study(rows: Sequence[dict], path) -> Path:
    """Time per step, time per epoch and accuracy against batch size (rows: batch, step_s, epoch_s, top1)."""
    plt = pyplot()
    rows = sorted(rows, key=lambda r: r["batch"])
    b = [r["batch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key, label, scale in ((axes[0], "step_s", "time per step (ms)", 1000), (axes[1], "epoch_s", "time per epoch (s)", 1),
                                  (axes[2], "top1", "test top-1 accuracy (%)", 100)):
        ax.plot(b, [scale * r[key] for r in rows], "o-")
        ax.set_xscale("log", base=2)
        ax.set_xticks(b, [str(x) for x in b])
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
    return save_figure(fig, path)


def study_curves(runs: Sequence[dict], path) -> Path:
    """The full comparison on one page: training and validation loss and accuracy, one line per run.

    Each run is a dict with name and history (epoch records), and optionally `mark`, the epoch a
    study's protocol reads, drawn as a star on its lines. A run without a validation split but with
    a test score per epoch (train.test_each_epoch) shows its test curve in the right-hand panels."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    held_out = "validation" if any(x.get("val_loss") is not None for r in runs for x in r.get("history") or []) \
        else "test"
    panels = ((axes[0][0], "train_loss", "training loss"), (axes[0][1], "val_loss", f"{held_out} loss"),
              (axes[1][0], "train_acc", "training accuracy (%)"), (axes[1][1], "val_acc", f"{held_out} accuracy (%)"))
    for ax, key, label in panels:
        if held_out == "test":
            key = key.replace("val_", "test_")
        for r in runs:
            h = [x for x in r.get("history") or [] if x.get(key) is not None]
            if h:
                scale = 100 if key.endswith("acc") else 1
                line, = ax.plot([x["epoch"] for x in h], [scale * x[key] for x in h], marker="o", ms=2.5,
                                label=r["name"])
                at = [x for x in h if x["epoch"] == r.get("mark")]
                if at:  # the protocol's epoch, in the line's colour
                    ax.plot([at[0]["epoch"]], [scale * at[0][key]], marker="*", ms=13, color=line.get_color(),
                            markeredgecolor="black", linestyle="none")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        epoch_axis(ax)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if not handles:
        return save_figure(fig, path)
    # one shared legend below the panels, in a strip of its own that _save's layout must not undo
    labels = _labels(labels, width=60)  # run names with settings ('top1: hidden.0 2048, ...') stay whole
    ncol = min(6 if max(map(len, labels)) <= 24 else 2, len(labels))
    strip = 0.03 + 0.03 * math.ceil(len(labels) / ncol)  # figure fraction: one 8-pt line is about 3% of 8 in
    fig.tight_layout(rect=(0, strip, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    return save_figure(fig, path, layout=False)


def sweep_curve_groups(groups: dict, key: str, path) -> Path:
    """Learning curves of groups of a sweep's trials ('best 3': [(label, history), ...], ...), one panel each."""
    plt = pyplot()
    groups = {k: v for k, v in groups.items() if v}
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(4.6 * max(1, len(groups)), 3.6), squeeze=False,
                             sharey=True)
    for ax, (title, members) in zip(axes[0], groups.items()):
        for label, hist in members:
            h = [x for x in hist if x.get(key) is not None]
            ax.plot([x["epoch"] for x in h], [x[key] for x in h], marker="o", ms=2.5, label=str(label))
        ax.set_title(title)
        epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(key)
    fig.tight_layout()
    return save_figure(fig, path)


def lr_finder(result: dict, path) -> Path:
    """The range test: smoothed loss against the rate (log scale), one line per seed, the
    suggestions 'valley' and 'steep' marked with their spread over the seeds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in result["curves"]:
        line, = ax.plot(c["lrs"], c["smoothed"], lw=1.5, label=f"seed {c['seed']} (smoothed)")
        ax.plot(c["lrs"], c["losses"], lw=0.6, alpha=0.3, color=line.get_color())
    for key, color in (("valley", "tab:green"), ("steep", "tab:red")):
        lo, hi = result[f"{key}_spread"]
        ax.axvspan(lo, hi, color=color, alpha=0.12)
        ax.axvline(result[key], color=color, ls="--", lw=1.2, label=f"{key} {result[key]:.2e}")
    log_axis(ax)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    first = min(min(c["smoothed"]) for c in result["curves"])
    top = max(c["smoothed"][0] for c in result["curves"])
    ax.set_ylim(0.9 * first, max(top, first) * 1.6)  # the diverging tail would squash the curve
    ax.legend(fontsize=8)
    ax.set_title("learning-rate range test")
    return save_figure(fig, path)
