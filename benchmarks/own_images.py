"""A user's own images, measured on a real folder of JPEGs: CIFAR-10's (../shared/datasets).

    python benchmarks/own_images.py storage    [--side 128]    # decode rate, peak memory, epoch time
    python benchmarks/own_images.py labels     [--noise 0.05]  # inspect's label errors against flipped labels
    python benchmarks/own_images.py imbalance                  # balanced accuracy with and without class weights
    python benchmarks/own_images.py duplicates                 # CIFAR-10's own train/test near-duplicates

Every figure comes from `imgclf` commands run in child processes, side by side in one run, and is
printed and written to WORK/NAME.json. `--quick` runs each on a slice, in a minute, for the tests.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
PYTHON = sys.executable


def imgclf(*args: str, env: dict | None = None) -> str:
    """Run `imgclf ARGS` in a child process; its stdout."""
    proc = subprocess.run([PYTHON, "-m", "imgclf.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if proc.returncode:
        sys.exit(f"imgclf {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def _resize_chunk(task):
    from PIL import Image
    import io

    src, out, side, members = task
    wanted = set(members)
    with tarfile.open(src) as tf:
        for info in tf:  # one pass over the archive (getmember would scan it once per image)
            if info.name not in wanted:
                continue
            m = info.name
            data = tf.extractfile(info).read()
            dest = out / Path(m).relative_to(Path(m).parts[0]) if Path(m).parts[0] not in ("train", "test") else out / m
            dest.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(io.BytesIO(data)) as im:
                im.convert("RGB").resize((side, side), Image.BICUBIC).save(dest, "JPEG", quality=90)
    return len(members)


def make_folder(source: Path, out: Path, side: int, limit: int | None) -> Path:
    """CIFAR-10's JPEGs enlarged to side x side, as a user's folder of train/ and test/ (made once)."""
    if (out / ".complete").exists():
        return out
    with tarfile.open(source) as tf:
        members = [m.name for m in tf if m.isfile() and m.name.lower().endswith(".jpg")]
    if limit:
        random.Random(0).shuffle(members)
        members = members[:limit]
    chunks = [members[i : i + 2000] for i in range(0, len(members), 2000)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_resize_chunk, [(source, out, side, c) for c in chunks]))
    (out / ".complete").write_text("")
    return out


PEAK = """
import json, sys, time
from imgclf.config.load import load_config
from imgclf.data import decode, load_raw
import imgclf
args = json.loads(sys.argv[1])
if args.get("workers"):
    decode.workers = lambda: args["workers"]  # today's path: one process decodes
t = time.perf_counter()
cfg = load_config(None, args["sets"])
raw = load_raw(cfg.data)
decoded = time.perf_counter() - t
images = len(raw.train_y) + len(raw.test_y)
del raw  # the run below reads the data itself: this copy would double the peak
run = imgclf.train(None, args["sets"] + args["train"], echo=False) if args["train"] else None
print(json.dumps({"decode_s": decoded, "images": images,
                  # VmHWM: this process's own peak (ru_maxrss would carry its parent's across fork and exec)
                  "peak_mib": int([x.split()[1] for x in open("/proc/self/status") if x.startswith("VmHWM:")][0]) / 1024,
                  "epoch_s": None if run is None else run.history["seconds"].iloc[-1]}))
"""


def _peak(sets: list[str], train: list[str], cache: Path, workers: int | None = None) -> dict:
    proc = subprocess.run([PYTHON, "-c", PEAK, json.dumps({"sets": sets, "train": train, "workers": workers})],
                          capture_output=True, text=True, env={**os.environ, "IMGCLF_CACHE": str(cache)})
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    return json.loads(proc.stdout.splitlines()[-1])


def storage(a) -> dict:
    folder = make_folder(a.source, a.work / f"cifar10-{a.side}{'-quick' if a.quick else ''}", a.side,
                         2000 if a.quick else None)
    sets = ["data.name=folder", f"data.path={folder}", f"data.image_size={a.side}", "data.val_fraction=0"]
    train = ["model.spec=ap-ap-c16-p-f32", "train.epochs=1", "train.batch_size=128", "train.eval_batch_size=200",
             f"train.threads={os.cpu_count()}"]
    out = {"side": a.side, "folder": str(folder)}
    for label, workers in (("one process (before)", 1), ("parallel", None)):
        cache = a.work / f"cache-{a.side}-{workers or 'n'}"
        subprocess.run(["rm", "-rf", str(cache)])
        r = _peak(sets + ["data.storage=disk"], [], cache, workers)
        out[f"decode {label}"] = {"images_per_s": r["images"] / r["decode_s"], "seconds": r["decode_s"]}
    cache = a.work / f"cache-{a.side}-n"
    for mode in ("memory", "disk"):
        r = _peak(sets + [f"data.storage={mode}"], train, cache)
        out[f"train from {mode}"] = {"peak_mib": r["peak_mib"], "epoch_s": r["epoch_s"]}
        out["images"] = r["images"]
    out["decoded_mib"] = out["images"] * 3 * a.side * a.side / 2**20
    return out


def _cifar_names() -> list[str]:
    from imgclf.config.load import load_config
    from imgclf.data import load_raw

    raw = load_raw(load_config(None, ["data.name=cifar10", f"data.data_dir={DATA}"]).data)
    return raw.split_ids("train"), raw.classes, raw.train_y.tolist()


def RECIPE(a) -> list[str]:  # noqa: N802
    """The trainings compared: wide-deep-dropout with augmentation for --train-epochs, its cosine over
    those epochs (the config's 60-minute time budget would pace the cosine by the clock instead)."""
    return ["-c", "configs/cifar10-wide-deep-dropout-aug.yaml", "--set", f"train.epochs={a.train_epochs}",
            "--set", "train.time_budget=null", "--no-progress"]


def labels(a) -> dict:
    names, classes, ys = _cifar_names()
    rng = random.Random(0)
    flipped = rng.sample(range(len(names)), int(a.noise * len(names)))
    relabel = a.work / "flipped.csv"
    with open(relabel, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for i in flipped:
            w.writerow([names[i], classes[rng.choice([c for c in range(len(classes)) if c != ys[i]])]])
    flipped_names = {names[i] for i in flipped}
    common = ["--data-dir", str(DATA), "--set", f"data.relabel={relabel}"]
    inspect_dir = a.work / "inspect"
    report = inspect_dir / "noisy"
    if not (report / "summary.json").exists():  # the same seeded flips: an inspection already made is reused
        imgclf("inspect", "cifar10", *common, "--epochs", str(a.epochs), "--name", "noisy", "--out", str(inspect_dir))
    summary = json.loads((report / "summary.json").read_text())
    train_rows = [r for r in csv.DictReader(open(report / "label_quality.csv")) if r["split"] == "train"]
    top = {r["path"] for r in train_rows[: int(0.05 * len(train_rows))]}
    flagged = {n for n in summary["flagged"] if n.startswith("train/")}
    out = {"noise": a.noise, "flipped": len(flipped_names), "inspect_epochs": a.epochs,
           "held_out_accuracy": summary["held_out_accuracy"],
           "top5%": {"n": len(top), "precision": len(top & flipped_names) / max(len(top), 1),
                     "recall": len(top & flipped_names) / len(flipped_names)},
           "flagged": {"n": len(flagged), "precision": len(flagged & flipped_names) / max(len(flagged), 1),
                       "recall": len(flagged & flipped_names) / len(flipped_names)}}
    recipe = [*RECIPE(a), "--runs-dir", str(a.work / "runs")]
    top5 = a.work / "top5.csv"  # the 5% of training images of lowest label quality
    top5.write_text("path\n" + "\n".join(sorted(top)) + "\n")
    arms = (("noisy labels", "labels-noisy", common),
            ("flagged images excluded", "labels-flagged", common + ["--set", f"data.exclude={report / 'findings.csv'}"]),
            ("lowest 5% label quality excluded", "labels-top5", common + ["--set", f"data.exclude={top5}"]),
            ("no flipped labels (reference)", "labels-clean", ["--data-dir", str(DATA)]))
    for label, name, extra in arms:
        if not (a.work / "runs" / name / "metrics.json").exists():  # a finished arm is read, not retrained
            imgclf("train", *recipe, *extra, "--name", name)
        m = json.loads((a.work / "runs" / name / "metrics.json").read_text())
        out[label] = {"test_top1": m["test"]["top1"], "train_images": m["train_images"]}
    return out


def imbalance(a) -> dict:
    names, classes, ys = _cifar_names()
    rng = random.Random(0)
    rare = classes[:5]  # airplane, automobile, bird, cat, deer keep 10% of their training images
    drop = [n for n, y in zip(names, ys) if classes[y] in rare and rng.random() >= 0.10]
    exclude = a.work / "imbalance.csv"
    exclude.write_text("path\n" + "\n".join(drop) + "\n")
    # every arm keeps the weights of its best balanced accuracy: val_acc would favour the common classes
    recipe = [*RECIPE(a), "--data-dir", str(DATA), "--set", f"data.exclude={exclude}",
              "--set", "train.monitor=val_balanced_acc", "--runs-dir", str(a.work / "runs")]
    out = {"rare_classes": rare, "excluded": len(drop)}
    for label, extra in (("plain", []), ("class_weights auto", ["--set", "train.class_weights=auto"]),
                         ("balanced sampler", ["--set", "data.sampler=balanced"])):
        name = f"imbalance-{label.split()[0]}-{int(time.time())}"
        imgclf("train", *recipe, *extra, "--name", name)
        m = json.loads((a.work / "runs" / name / "metrics.json").read_text())
        t = m["test"]
        rare_acc = [t["per_class_accuracy"][classes.index(c)] for c in rare]
        out[label] = {"test_top1": t["top1"], "balanced_acc": t["balanced_acc"], "macro_f1": t["macro_f1"],
                      "rare_classes_mean_recall": sum(rare_acc) / len(rare_acc)}
    return out


def duplicates(a) -> dict:
    out = {}
    imgclf("inspect", "cifar10", "--data-dir", str(DATA), "--no-labels", "--near", str(a.near), "--name", "dups",
           "--out", str(a.work / "inspect"))
    rows = list(csv.DictReader(open(a.work / "inspect" / "dups" / "findings.csv")))
    leaks = [r for r in rows if r["issue"] == "leak"]
    test_side = [r for r in leaks if r["split"] == "test"]
    for t in (a.near, 0.99, 0.995, 0.999):
        if t >= a.near:
            pairs = [r for r in test_side if float(r["score"]) >= t]
            out[f"similarity >= {t:g}"] = {"train/test pairs": len(pairs),
                                           "test images with a train copy": len({r["path"] for r in pairs})}
    exact = [r for r in rows if r["issue"] == "duplicate"]
    out["exact duplicates (images)"] = len(exact)
    out["exact duplicates across train/test (test images)"] = len(
        {r["path"] for r in exact if r["split"] == "test" and "train/" in r["other"]})
    return out


def machine() -> str:
    """lscpu's model name, family and model, and the cores this process may use."""
    if not sys.platform.startswith("linux"):
        return sys.platform
    info = dict(line.split(":", 1) for line in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if ":" in line)
    get = lambda k: info.get(k, "?").strip()  # noqa: E731
    return f"{get('Model name')} (family {get('CPU family')}, model {get('Model')}), {len(os.sched_getaffinity(0))} cores"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["storage", "labels", "imbalance", "duplicates"])
    p.add_argument("--source", type=Path, default=DATA / "cifar10-jpg.tar.gz")
    p.add_argument("--work", type=Path, default=Path("/tmp/imgclf-own-images"))
    p.add_argument("--side", type=int, default=128)
    p.add_argument("--noise", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=10, help="epochs of inspect's out-of-fold models")
    p.add_argument("--train-epochs", type=int, default=10, help="epochs of the trainings compared")
    p.add_argument("--near", type=float, default=0.98)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    t = time.perf_counter()
    out = {"storage": storage, "labels": labels, "imbalance": imbalance, "duplicates": duplicates}[a.what](a)
    out["seconds"] = time.perf_counter() - t
    out["machine"] = machine()
    (a.work / f"{a.what}.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
