"""Every figure renders to a valid, non-blank image; Grad-CAM finds the patch that decides the class."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import imgclf
from imgclf.reporting import figures as F


def assert_image(path, *words):
    """A decodable, non-blank PNG with its SVG twin, whose text carries each of `words`."""
    with Image.open(path) as im:
        im.load()
        arr = np.asarray(im.convert("L"), dtype=float)
    assert arr.shape[0] > 100 and arr.shape[1] > 100
    assert arr.std() > 5  # not blank
    svg = path.with_suffix(".svg").read_text()
    missing = [w for w in words if f">{w}<" not in svg]
    assert not missing, f"{path.name} lacks the text {missing}"


@pytest.fixture(autouse=True)
def svg_text():
    """SVG text as text (not glyph paths), so that a test can read what a figure says."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        yield


HISTORY = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e + 0.05 * e, "train_acc": 1 - 0.5 / e,
            "val_acc": 0.9 - 0.4 / e} for e in range(1, 8)]


def test_learning_curves_mark_the_best_epoch_and_both_splits(tmp_path):
    assert_image(F.learning_curves(HISTORY, tmp_path / "curves", best_epoch=5, title="demo"),
                 "demo", "best epoch (5)", "train", "validation", "cross-entropy loss", "accuracy (%)")
    no_val = [{k: v for k, v in r.items() if not k.startswith("val")} for r in HISTORY]
    svg = F.learning_curves(no_val, tmp_path / "train-only").with_suffix(".svg").read_text()
    assert ">train<" in svg and ">validation<" not in svg and "best epoch" not in svg


def test_confusion_matrix_shows_counts_and_row_percentages(tmp_path):
    conf = [[50, 3, 2], [10, 30, 5], [0, 4, 60]]
    # row 2 is 10/45 = 22% and 30/45 = 67% of its true class; 60 of 64 is 94%
    assert_image(F.confusion_matrix(conf, ["bird", "cat", "dog"], tmp_path / "conf"),
                 "bird", "cat", "dog", "50", "60", "22", "67", "94", "counts", "row-normalized")


def test_per_class_accuracy_draws_a_missing_class_at_zero(tmp_path):
    long = "a-very-long-folder-name-for-one-class"
    assert_image(F.per_class_accuracy([0.9, 0.5, None], ["a", long, "c"], tmp_path / "pc"),
                 "a", "c", "90", "50", "0", long[:23] + "\u2026")


@pytest.mark.parametrize("channels", [1, 3])
def test_misclassified_grid_titles_true_predicted_and_probability(tmp_path, channels):
    imgs = np.random.default_rng(0).integers(0, 256, (7, channels, 12, 12), dtype=np.uint8)
    path = F.misclassified_grid(imgs, [0] * 7, [1] * 7, [0.9] * 7, ["x", "y"], tmp_path / "mis")
    assert_image(path, "x")
    assert path.with_suffix(".svg").read_text().count("-&gt; y (90%)") == 7  # one title per image


def test_compare_runs_places_each_run_by_its_size(tmp_path):
    runs = [{"name": n, "params": p, "mult_adds": m, "top1": a, "history": HISTORY}
            for n, p, m, a in (("wide", 222226, 13131728, 0.71), ("deep", 127724, 2689740, 0.68))]
    runs.append({"name": "unscored", "params": 1000, "mult_adds": 1000, "top1": None, "history": HISTORY})
    path = F.compare_runs(runs, tmp_path / "cmp")
    assert_image(path, "wide", "deep", "trainable parameters", "multiply-adds per image")
    svg = path.with_suffix(".svg").read_text()
    assert svg.count(">wide<") == 3 and svg.count(">unscored<") == 1  # two scatter labels + legend; legend only


def test_batch_size_study_labels_every_batch(tmp_path):
    rows = [{"batch": b, "step_s": 0.001 * b ** 0.5, "epoch_s": 100 / b ** 0.5, "top1": 0.7 - 0.01 * b / 4}
            for b in (32, 4, 16, 8)]
    assert_image(F.batch_size_study(rows, tmp_path / "bs"), "4", "8", "16", "32", "time per step (ms)",
                 "time per epoch (s)")


def _patch_image(rng, patch_at=None, size=16):
    x = rng.integers(0, 60, (size, size)).astype(np.uint8)
    if patch_at is not None:
        r, c = patch_at
        x[r:r + 4, c:c + 4] = 255
    return x


def test_explain_maps_and_gradcam_find_the_deciding_patch(tmp_path):
    """Class 'patch' has a bright 4x4 square somewhere, class 'plain' none: Grad-CAM must light the square."""
    rng = np.random.default_rng(0)
    for cls in ("patch", "plain"):
        d = tmp_path / "data" / cls
        d.mkdir(parents=True)
        for i in range(120):
            at = tuple(rng.integers(0, 12, 2)) if cls == "patch" else None
            Image.fromarray(_patch_image(rng, at)).save(d / f"{i}.png")
    run = imgclf.train(None, ["data.name=folder", f"data.path={tmp_path / 'data'}", "data.channels=1",
                              "data.image_size=16", "model.spec=c8-c8-p-c16-f16", "train.epochs=8",
                              "train.batch_size=32", "optim.lr=0.05"], echo=False)
    assert run.metrics["test"]["top1"] > 0.9
    Image.fromarray(_patch_image(rng, (2, 9))).save(tmp_path / "probe.png")
    res = imgclf.api.explain(run, tmp_path / "probe.png", out_dir=tmp_path / "explain")
    assert res["class"] == "patch"
    cam = res["cam"].numpy()
    inside = cam[2:6, 9:13].mean()
    outside = np.concatenate([cam[8:, :].ravel(), cam[:, :6].ravel()]).mean()
    assert inside > 2 * outside, (inside, outside)
    names = sorted(p.name for p in res["paths"])
    assert names == ["gradcam_patch.png", "maps_conv1.png", "maps_conv2.png", "maps_conv3.png"]
    for p in res["paths"]:
        assert_image(p)
    other = imgclf.api.explain(run, tmp_path / "probe.png", layer="conv2", target="plain", out_dir=tmp_path / "e2")
    assert sorted(p.name for p in other["paths"]) == ["gradcam_plain.png", "maps_conv2.png"]
    with pytest.raises(imgclf.ConfigError, match="conv1"):
        imgclf.api.explain(run, tmp_path / "probe.png", layer="fc1")


def test_explain_works_for_resnet18_and_presets():
    from imgclf.models import build_model
    from imgclf.reporting.explain import conv_layers, feature_maps, grad_cam

    for name in ("resnet18", "wide-deep"):
        torch.manual_seed(0)
        m = build_model(name, {}, (3, 32, 32), 10)
        x = torch.randn(1, 3, 32, 32)
        cam, cls, probs = grad_cam(m, x)
        assert cam.shape == (32, 32) and 0 <= float(cam.min()) and float(cam.max()) <= 1.0 + 1e-6
        maps = feature_maps(m, x, conv_layers(m)[:2])
        assert len(maps) == 2 and all(v.ndim == 3 for v in maps.values())


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium():
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _browse(chrome, page, tmp_path, tag):
    """Load a page headless: (DOM after scripts ran, console error lines, screenshot path)."""
    import subprocess

    url = page.resolve().as_uri()
    common = [chrome, *CHROME_FLAGS, f"--user-data-dir={tmp_path / ('ud-' + tag)}"]
    dom = subprocess.run(common + ["--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and ("Error" in l or "Uncaught" in l)]
    shot = tmp_path / f"{tag}.png"
    subprocess.run(common + ["--window-size=412,1600", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    return dom.stdout, errors, shot


def test_report_pages_in_a_real_browser(tmp_path):
    import re

    import yaml

    from imgclf.reporting.report import build_report
    from imgclf.sweeps.runner import run_sweep

    chrome = _chromium()
    if chrome is None:
        pytest.skip("no Chromium: install Debian's chromium package (apt-get install chromium) to run this test")
    # The detector itself must catch a broken page.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><img src='missing.png'><script>undefinedCall();</script>"
                   "<script>window.addEventListener('load',function(){var b=0;document.querySelectorAll('img')"
                   ".forEach(function(i){if(i.naturalWidth===0)b++});document.body.setAttribute("
                   "'data-broken-images',String(b))});</script></body></html>")
    dom, errors, _ = _browse(chrome, bad, tmp_path, "bad")
    assert errors and 'data-broken-images="1"' in dom

    a = imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=3"], name="a", echo=False)
    b = imgclf.train(None, ["model.spec=c16-p-c16-p-f32", "train.epochs=3"], name="b", echo=False)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"base": {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 2}},
                                 "space": {"optim.lr": [0.1, 0.03], "model.hidden.0": [8, 16]}}))
    sweep = run_sweep(p, echo=False)
    for tag, refs in (("run", [a.path]), ("runs", [a.path, b.path]), ("sweep", [sweep])):
        res = build_report(refs, tmp_path / f"report-{tag}")
        page = res["html"].read_text()
        assert "data:image/png;base64," in page and not re.search(r"(src|href)=['\"](https?:|//)", page)
        md = res["md"].read_text()
        for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
            assert (res["md"].parent / img).is_file()
        dom, errors, shot = _browse(chrome, res["html"], tmp_path, tag)
        assert not errors, errors
        assert 'data-broken-images="0"' in dom and f'data-images="{res["figures"]}"' in dom
        assert res["figures"] >= 3
        with Image.open(shot) as im:
            arr = np.asarray(im.convert("L"), dtype=float)
        assert arr.std() > 10  # the page rendered something, not a blank screen


def test_report_of_a_run_without_a_test_score(tmp_path):
    from imgclf.reporting.report import build_report

    a = imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=2", "train.final_test=false"], name="tune", echo=False)
    b = imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=2"], name="scored", echo=False)
    page = build_report([a.path, b.path], tmp_path / "rep")["html"].read_text()
    assert "test split was not scored" in page
    figs = tmp_path / "rep" / "figures"
    assert not list((figs / "tune").glob("confusion*")) and list((figs / "scored").glob("confusion*"))
    assert list((figs / "tune").glob("learning_curves*"))


def test_tensorboard_scalars(tmp_path):
    from imgclf.cli.main import main

    assert main(["train", "--set", "model.spec=c8-p-f16", "--set", "train.epochs=3", "--name", "tb", "--tensorboard"]) == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "runs" / "tb" / "tensorboard"
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/train_loss")] == [1, 2, 3]
    assert len(acc.Scalars("acc/val_acc")) == 3 and len(acc.Scalars("misc/lr")) == 3
    assert json.loads((logdir / "hparams.json").read_text())["model"]["spec"] == "c8-p-f16"


HOSTILE = ["<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">", "it's \"q\" & <b>b $\\frac{$",
           "n" * 240]  # a folder name holds anything but '/' and NUL, up to 255 bytes


def hostile_run(tmp_path):
    """A run on a folder whose class names are markup, quotes, TeX, a 240-byte name and bytes that are not UTF-8."""
    import os

    from conftest import make_image_folder

    root = make_image_folder(tmp_path / "imgs", splits=(), per_class=4, classes=tuple(HOSTILE), size=8)
    raw = os.fsencode(root) + b"/\xff\xferaw"
    os.mkdir(raw)
    for f in sorted((root / HOSTILE[2]).iterdir()):
        with open(raw + b"/" + os.fsencode(f.name), "wb") as out:
            out.write(f.read_bytes())
    return imgclf.train(None, ["data.name=folder", f"data.path={root}", "data.image_size=8", "model.spec=c8-p-f16",
                               "train.epochs=2", "data.val_fraction=0.25", "data.test_fraction=0.25"],
                        name="hostile", echo=False)


def test_hostile_class_names_are_escaped_in_reports_and_harmless_elsewhere(tmp_path):
    import html
    import json

    from imgclf.cli.main import main
    from imgclf.reporting.report import build_report

    run = hostile_run(tmp_path)
    classes = run.metrics["classes"]
    assert set(HOSTILE) <= set(classes) and "\\xff\\xferaw" in classes  # undecodable bytes shown, not lost
    json.dumps(classes).encode("utf-8")  # valid text everywhere
    res = build_report([run.path], tmp_path / "rep")
    page, md = res["html"].read_text(encoding="utf-8"), res["md"].read_text(encoding="utf-8")
    for text in (page, md):  # the per-class table names every class, as text
        assert "<img src=x" not in text and "<b>b" not in text
        assert all(html.escape(c) in text for c in HOSTILE) and "\\xff\\xferaw" in text
    assert main(["evaluate", "hostile"]) == 0 and main(["predict", "hostile", str(next((tmp_path / "imgs").rglob("*.png")))]) == 0


def test_hostile_class_names_run_no_script_in_a_real_browser(tmp_path):
    from imgclf.reporting.report import build_report

    chrome = _chromium()
    if chrome is None:
        pytest.skip("no Chromium: install Debian's chromium package (apt-get install chromium) to run this test")
    res = build_report([hostile_run(tmp_path).path], tmp_path / "rep")
    dom, errors, _ = _browse(chrome, res["html"], tmp_path, "hostile")
    assert not errors, errors
    import re

    assert not re.search(r"<body[^>]*data-pwned", dom)  # the onerror never ran: the name is text
    assert "data-pwned" in dom and 'data-broken-images="0"' in dom
