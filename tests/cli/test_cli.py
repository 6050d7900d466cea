"""The command line: real processes for exit codes and stderr, in-process calls for output."""
import os
import subprocess
import sys

import pytest
from conftest import make_idx_dir

import imgclf
from imgclf.cli.main import main

FAST = ["--set", "model.spec=c16-p-f32", "--set", "train.epochs=2"]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "imgclf.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ}, cwd=cwd, timeout=300)


def assert_one_line_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("imgclf: error:") and "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_train_evaluate_predict_summary_in_process(tmp_path, capsys):
    assert main(["train", *FAST, "--name", "cli"]) == 0
    run = imgclf.load_run("cli")
    assert list(run.history["epoch"]) == [1, 2] and run.metrics["test"]["n"] > 0
    assert main(["evaluate", "cli"]) == 0
    capsys.readouterr()  # what train and evaluate printed
    from PIL import Image

    Image.new("L", (8, 8), 255).save(tmp_path / "x.png")
    assert main(["predict", "cli", str(tmp_path / "x.png"), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("x.png") and len(out) == 4 and out[1].strip().endswith("%") is False


@pytest.mark.parametrize("model, params, macs", [
    ("wide", "222,226", "13,131,728"), ("deep", "127,724", "2,689,740"),
    ("wide-deep", "253,638", "12,509,136"), ("wide-deep-bn", "253,846", "12,509,240"),
    ("wide-deep-dropout", "253,638", "12,509,136"), ("keras-small", "39,514", None),
])
def test_summary_prints_exact_totals(capsys, model, params, macs):
    assert main(["summary", model, "--input", "3x32x32", "--classes", "10"]) == 0
    out = capsys.readouterr().out
    assert f"Trainable params:     {params}" in out
    if macs:
        assert f"Mult-Adds:            {macs}" in out
    assert "Size as saved:" in out and "Kernel Shape" in out


def test_summary_model_options(capsys):
    assert main(["summary", "mlp", "--input", "1x28x28", "--set", "hidden=[100]"]) == 0
    assert "79,510" in capsys.readouterr().out


def test_models_and_datasets_lists(capsys):
    assert main(["models", "wide*"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("wide ") and "deep " not in out.split("\n")[0]
    assert main(["datasets"]) == 0
    assert {"cifar10", "mnist", "fashion-mnist", "folder", "digits"} <= {l.split()[0] for l in capsys.readouterr().out.splitlines()}


@pytest.mark.parametrize("args, words", [
    (["train", "--set", "optim.lr=fast"], ["optim.lr", "number"]),
    (["train", "--set", "optim.momentun=0.9"], ["optim.momentun", "momentum"]),
    (["train", "--set", "data.val_fraction=2"], ["data.val_fraction"]),
    (["train", "--config", "missing.yaml"], ["missing.yaml", "not found"]),
    (["train", "--set", "model.name=wide", "--max-params", "1000"], ["77,074", "1,000", "max_params"]),
    (["train", "--max-params", "lots"], ["train.max_params"]),
    (["train", "--time-budget", "forever"], ["train.time_budget", "duration"]),
    (["train", "--set", "data.name=mnist", "--set", "data.download=false", "--data-dir", "nowhere"], ["nowhere", "data_dir"]),
    (["train", "--set", "data.name=folder"], ["data.path"]),
    (["train", "--set", "data.name=folder", "--set", "data.path=nowhere"], ["nowhere", "does not exist"]),
    (["train", "--set", "data.augment.crop_size=20"], ["crop_size", "8x8"]),
    (["train", "--set", "model.spec=c8-q"], ["bad token 'q'"]),
    (["train", "--set", "model.spec=c8-p-p-p-p"], ["below 1x1"]),
    (["train", "--set", "train.device=cuda"], ["cuda"]),
    (["train", "--resume", "nosuchrun"], ["nosuchrun", "not found"]),
    (["evaluate", "nosuchrun"], ["nosuchrun"]),
    (["summary", "wide", "--input", "3by32"], ["3by32", "3x32x32"]),
    (["summary", "vgg"], ["unknown model 'vgg'"]),
    (["summary", "wide", "--classes", "0"], ["--classes"]),
    (["train", "--config", "no-such-config"], ["no-such-config", "cifar10-wide", "transfer/mnist-resnet18-224"]),
])
def test_user_errors_are_one_line_without_traceback(args, words):
    import torch

    if "train.device=cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert_one_line_error(run_cli(*args), *words)


def test_bad_yaml_file_and_corrupt_data(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: [1,\n")
    assert_one_line_error(run_cli("train", "--config", str(bad)), "bad.yaml", "YAML")
    root = make_idx_dir(tmp_path / "idx")
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    assert_one_line_error(run_cli("train", "--set", "data.name=mnist", "--set", "data.download=false",
                                  "--data-dir", str(root)), "t10k-labels-idx1-ubyte")


def test_existing_run_name_is_not_overwritten(tmp_path):
    assert main(["train", *FAST, "--name", "taken"]) == 0
    assert_one_line_error(run_cli("train", *FAST, "--name", "taken"), "already exists", "--resume taken")


def test_corrupt_checkpoint_and_bad_image(tmp_path):
    assert main(["train", *FAST, "--name", "r"]) == 0
    (tmp_path / "junk.png").write_text("not an image")
    assert_one_line_error(run_cli("predict", "r", str(tmp_path / "junk.png")), "junk.png")
    assert_one_line_error(run_cli("predict", "r", str(tmp_path / "none.png")), "none.png", "not found")
    (tmp_path / "runs" / "r" / "best.pt").write_bytes(b"garbage")
    assert_one_line_error(run_cli("evaluate", "r"), "best.pt", "corrupt")


def test_resume_refuses_changed_settings(tmp_path):
    assert main(["train", *FAST, "--name", "r"]) == 0
    assert_one_line_error(run_cli("train", "--resume", "r", "--set", "optim.lr=0.5"), "optim.lr", "resuming")


def test_train_cli_end_to_end_in_a_real_process():
    proc = run_cli("train", *FAST, "--name", "p", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and imgclf.load_run("p").metrics["test"]["n"] > 0  # trained and tested


@pytest.mark.parametrize("args, words", [
    (["summary", "wide", "--input", "3x4x4"], ["below 1x1"]),
    (["train", "--config", "configs"], ["configs"]),
    (["train", "--set", "data.name=folder", "--set", "data.path=pyproject.toml"], ["neither a folder"]),
    (["sweep", "missing-sweep.yaml"], ["missing-sweep.yaml"]),
    (["results", "no-such-sweep"], ["no-such-sweep"]),
])
def test_more_user_errors(args, words):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert_one_line_error(run_cli(*args, cwd=root), *words)


def test_summary_of_a_config_shows_frozen_and_trainable_parameters(capsys):
    base = ["summary", "--set", "model.name=resnet18", "--set", "data.name=fashion-mnist", "--set",
            "model.small_input=true"]
    assert main(base) == 0
    full = capsys.readouterr().out
    assert main(base + ["--set", "model.pretrained=w.pth", "--set", "model.strategy=freeze",
                        "--set", "model.trainable=layer4,fc"]) == 0
    frozen = capsys.readouterr().out

    def total(text, what):
        return int(next(l for l in text.splitlines() if l.startswith(what)).split()[-1].replace(",", ""))

    assert "model.strategy=freeze" in frozen and "input 1x28x28, 10 classes" in frozen
    assert total(frozen, "Total params") == total(full, "Total params") == 11_172_810  # frozen BN counted too
    assert total(frozen, "Trainable params") == 8_398_858  # layer4 and fc
    assert total(frozen, "Non-trainable params") == 11_172_810 - 8_398_858


def test_summary_in_the_reports_style(capsys):
    assert main(["summary", "deep", "--style", "report"]) == 0
    out = capsys.readouterr().out
    assert "conv3  [8, 16, 3, 3]" in out and " 1.17k " in out and "221.18k" in out
    pool = next(line for line in out.splitlines() if line.startswith("pool1"))
    assert pool.split()[-2:] == ["-", "-"]  # no weights, no multiply-adds
    assert "Total params:         127,724 (127.72k)" in out and "Mult-Adds:            2,689,740 (2.69M)" in out
    assert main(["summary", "keras-initial"]) == 0 and "Total params:         132,010" in capsys.readouterr().out


def test_a_ready_config_by_name_is_its_file(tmp_path, capsys):
    from imgclf.core.ready import ready_configs
    from imgclf.core.run_files import CONFIG

    ready = ready_configs()
    assert main(["configs"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[:-1]] == list(ready)
    assert main(["train", "-c", "digits-cnn", *FAST, "--name", "by-name"]) == 0
    assert main(["train", "-c", str(ready["digits-cnn"]), *FAST, "--name", "by-path"]) == 0
    runs = tmp_path / "runs"
    assert (runs / "by-name" / CONFIG).read_text() == (runs / "by-path" / CONFIG).read_text()


def test_version_is_the_distribution_s(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.split() == ["imgclf", version("imgclf")]


def test_a_ready_sweep_by_name_is_its_file(capsys):
    from imgclf.core.ready import ready_sweeps, sweep_path

    ready = ready_sweeps()
    assert main(["configs", "--sweeps"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[:-1]] == list(ready)
    assert sweep_path("fashion-mnist-mlp-grid") == str(ready["fashion-mnist-mlp-grid"])
    assert main(["sweep", "no-such-sweep"]) == 2
    assert "fashion-mnist-mlp-grid" in capsys.readouterr().err  # the refusal lists the ready ones
