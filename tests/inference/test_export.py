"""imgclf export: ONNX and .pt2 files that take raw uint8 images, verified against PyTorch; predict on them."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import imgclf
from imgclf.cli.main import main
from imgclf.inference import export as E

FAST = ["train.epochs=1", "data.max_train=256", "data.max_test=64"]
MODELS = {
    "cnn": [],
    "mlp": ["model.name=mlp", "model.hidden=[32]"],
    # resnet behind a resize (8 -> 16 px) and a gray-to-RGB conversion, both baked into the file
    "resnet": ["model.name=resnet18", "model.small_input=true", "data.image_size=16", "data.channels=3"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {k: imgclf.train(None, FAST + o, name=k, runs_dir=root, echo=False) for k, o in MODELS.items()}


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_exports_match_pytorch_and_predict_the_same_top5(runs, kind, fmt, tmp_path):
    run = runs[kind]
    out = E.export(run, fmt, tmp_path / f"m.{fmt}", log=lambda m: None)
    assert out["max_diff"] <= 1e-4 * max(1.0, out["tolerance"] / 1e-4) and out["images"] == 64
    model = E.Exported(out["path"])
    assert model.classes == [str(c) for c in run.metrics["classes"]] and model.source_shape == (1, 8, 8)
    g = torch.Generator().manual_seed(7)  # seeded: the same images on every run of the suite
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8, generator=g)  # another batch size than the export's
    served, _ = E.served_model(run)
    assert torch.allclose(model.logits(x), served(x), atol=1e-4, rtol=1e-4)
    imgs = [x[i] for i in range(5)]
    from_run, from_file = imgclf.predict(run, imgs), imgclf.predict(out["path"], imgs)
    for pr, pf in zip(from_run, from_file):
        assert all(abs(a[1] - b[1]) < 1e-3 for a, b in zip(pr, pf))
        # Ranks must agree where the scores differ by more than the export's tolerance; two classes
        # within it of each other may swap places (the runtimes' last bits differ), and that is no error.
        probs = dict(pf)
        for i, (ca, pa) in enumerate(pr):
            for cb, pb in pr[i + 1:]:
                if pa - pb > 1e-4 and ca in probs and cb in probs:
                    assert probs[ca] > probs[cb], (ca, cb, pr, pf)


def test_the_preprocessing_is_in_the_file(runs, tmp_path):
    assert main(["export", str(runs["resnet"].path), "--format", "onnx", "-o", str(tmp_path / "r.onnx")]) == 0
    info = E.Exported(tmp_path / "r.onnx").info
    assert info["source_shape"] == [1, 8, 8] and info["input"].startswith("uint8 images (N, 1, 8, 8)")
    assert "1 to 3 channel(s), bilinear resize 8x8 to 16x16" in info["preprocessing"]


def test_a_mismatch_is_refused_and_nothing_is_kept(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(E, "TOLERANCE", 0.0)  # onnxruntime's own arithmetic then counts as a mismatch
    with pytest.raises(E.ExportError, match="differs from PyTorch by .* nothing was kept"):
        E.export(runs["resnet"], "onnx", tmp_path / "m.onnx", log=lambda m: None)
    assert not list(tmp_path.iterdir())


def test_bad_export_requests_are_one_line(runs, tmp_path, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    for argv, words in ((["export", str(runs["cnn"].path), "--format", "tflite"], "--format 'tflite' is not known"),
                        (["export", str(runs["cnn"].path), "-o", str(tmp_path / "m.pt2")], "ends in .onnx"),
                        (["predict", str(tmp_path / "bad.onnx"), "x.png"], "not a readable ONNX model"),
                        (["predict", str(tmp_path / "none.pt2"), "x.png"], "none.pt2 not found")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, (argv, err)


def test_the_docs_onnxruntime_client_needs_nothing_from_imgclf(runs, tmp_path):
    """The export page's client (docs/export.md) runs as written, in a process where imgclf cannot be imported."""
    readme = (Path(__file__).parents[2] / "docs" / "export.md").read_text()
    code = re.search(r"<!-- onnx-client -->\s*```python\n(.*?)```", readme, re.S).group(1)
    model = tmp_path / "model.onnx"
    E.export(runs["cnn"], "onnx", model, log=lambda m: None)
    from PIL import Image

    Image.fromarray(runs["cnn"].config and torch.randint(0, 256, (8, 8), dtype=torch.uint8).numpy()).save(
        tmp_path / "digit.png")
    blocker = tmp_path / "block" / "imgclf"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('the client must not need imgclf')")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(tmp_path / "block"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert re.search(r"digit\.png: \S+ \d+\.\d+%", r.stdout), r.stdout
