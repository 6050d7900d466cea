"""Real (small) training runs on the bundled digits: learning, resume, budgets, checkpoints."""
import json
import math

import pytest
import torch
from conftest import f32_rtol, strip_time

import imgclf
from imgclf.config.load import load_config
from imgclf.core.errors import BudgetError, RunError
from imgclf.engine.checkpoint import load_checkpoint
from imgclf.engine.monitor import Direction, improved
from imgclf.engine.optim import lr_at
from imgclf.engine.plugins.early_stopping import EarlyStopping

FAST = ["model.spec=c16-p-c32-p-f64", "train.batch_size=64"]
# The budget tests on a machine busy with other training: one thread (two spinning threads beside
# another job's made one 0.1-s epoch take over 3 s) and short epochs, so that a 3-s budget holds
# many steps. They check what the run decided (its stop, its rates, its reserve), not the clock.
BUDGETED = FAST + ["train.threads=1", "data.max_train=512"]


def test_short_run_beats_chance_and_writes_the_run_folder():
    run = imgclf.train(None, FAST + ["train.epochs=4"], name="digits", echo=False)
    files = {p.name for p in run.path.iterdir()}
    assert {"config.yaml", "history.jsonl", "metrics.json", "summary.txt", "summary.json", "best.pt", "last.pt",
            "train.log"} <= files
    m = run.metrics
    assert m["test"]["top1"] > 0.85  # chance is 0.10
    assert m["test"]["top5"] >= m["test"]["top1"]
    assert len(m["test"]["confusion"]) == 10 and sum(map(sum, m["test"]["confusion"])) == m["test"]["n"]
    h = run.history
    assert list(h["epoch"]) == [1, 2, 3, 4]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"} <= set(h.columns)
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert "Mult-Adds" in run.summary


def test_a_tuning_run_leaves_the_test_split_unscored():
    run = imgclf.train(None, FAST + ["train.epochs=2", "train.final_test=false"], name="tune", echo=False)
    assert run.metrics["test"] is None and run.metrics["best_epoch"] == 2
    assert not [c for c in run.history.columns if c.startswith("test")]  # no test score to peek at, in any epoch
    assert run.evaluate("test")["top1"] > 0.3  # scored later, on demand, from the kept weights (chance: 0.1)


def test_seeded_runs_are_reproducible():
    a = imgclf.train(None, FAST + ["train.epochs=2", "data.augment.crop_padding=1", "model.dropout=0.2"], echo=False)
    b = imgclf.train(None, FAST + ["train.epochs=2", "data.augment.crop_padding=1", "model.dropout=0.2"], echo=False)
    c = imgclf.train(None, FAST + ["train.epochs=2", "data.augment.crop_padding=1", "model.dropout=0.2",
                                   "train.seed=1"], echo=False)
    assert strip_time(a.history.to_dict("records")) == strip_time(b.history.to_dict("records"))
    assert a.history["train_loss"].tolist() != c.history["train_loss"].tolist()


@pytest.mark.parametrize("schedule", ["exponential", "step"])
def test_resume_continues_exactly(schedule):
    common = FAST + [f"schedule.name={schedule}", "schedule.gamma=0.7", "schedule.step_size=1",
                     "data.augment.hflip=true", "data.augment.crop_padding=1", "model.dropout=0.3"]
    full = imgclf.train(None, common + ["train.epochs=4"], name="full", echo=False)
    part = imgclf.train(None, common + ["train.epochs=2"], name="part", echo=False)
    resumed = imgclf.train(resume="part", overrides=["train.epochs=4"], echo=False)
    assert resumed.path == part.path
    assert strip_time(resumed.history.to_dict("records")) == strip_time(full.history.to_dict("records"))
    a, b = load_checkpoint(full.path / "last.pt"), load_checkpoint(resumed.path / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert resumed.metrics["test"] == full.metrics["test"]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    """Kill -9 a real training process mid-run, resume it, and compare with an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["--set", "model.name=mlp", "--set", "model.hidden=[800,800]", "--set", "train.epochs=8",
            "--no-progress"]
    env = {**os.environ}
    cmd = [sys.executable, "-m", "imgclf.cli.main", "train", *args]
    proc = subprocess.Popen(cmd + ["--name", "killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    hist = tmp_path / "runs" / "killed" / "history.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if hist.exists() and len(hist.read_text().splitlines()) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    done_before = len(hist.read_text().splitlines())
    subprocess.run(cmd + ["--resume", "killed"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(cmd + ["--name", "straight"], env=env, check=True, stdout=subprocess.DEVNULL)
    resumed, straight = imgclf.load_run("killed"), imgclf.load_run("straight")
    assert done_before < 8 or proc.returncode == 0
    assert strip_time(resumed.history.to_dict("records")) == strip_time(straight.history.to_dict("records"))
    assert resumed.metrics["test"]["top1"] == straight.metrics["test"]["top1"]


def test_time_budget_stops_cleanly_and_keeps_best():
    # Epochs of about 0.03 s: 3 s hold many of them (even on a busy machine), but not 2000.
    run = imgclf.train(None, ["model.name=mlp", "model.hidden=[256]", "train.epochs=2000",
                              "train.time_budget=3s"], echo=False)
    m = run.metrics
    assert 1 <= m["epochs_run"] < 2000 and "time budget" in m["stop_reason"]
    assert (run.path / "best.pt").exists() and m["test"]["top1"] > 0.5


def test_time_budget_too_short_for_one_epoch():
    with pytest.raises(RunError, match="no epoch completed"):
        imgclf.train(None, ["model.name=mlp", "model.hidden=[3000,3000]", "train.time_budget=0.01",
                            "schedule.name=none"], echo=False)


def test_parameter_budget_refuses_before_training(tmp_path):
    with pytest.raises(BudgetError) as e:
        imgclf.train(None, ["model.name=mlp", "model.hidden=[500]", "train.max_params=1000"], echo=False)
    assert "37,510" in str(e.value) and "1,000" in str(e.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_early_stopping_restores_best():
    run = imgclf.train(None, FAST + ["train.epochs=60", "train.early_stopping.enabled=true",
                                     "train.early_stopping.patience=2", "train.early_stopping.monitor=val_loss",
                                     "optim.lr=0.2", "schedule.name=none"], echo=False)
    m = run.metrics
    assert m["epochs_run"] < 60 and "early stopping" in m["stop_reason"]
    h = run.history
    # stopped `patience` epochs after val_loss last improved; best checkpoint chosen by train.monitor
    assert m["epochs_run"] == int(h["val_loss"].idxmin()) + 1 + 2
    assert m["monitor"] == "val_acc" and m["best_epoch"] == int(h["val_acc"].idxmax()) + 1
    assert run.evaluate("test")["top1"] == m["test"]["top1"]  # the scored weights are the best checkpoint's


def test_early_stopping_callback_counts_patience():
    class T:
        reason = None

        def stop(self, r):
            self.reason = r

    es, t = EarlyStopping("val_loss", patience=2, min_delta=0.01), T()
    for v in [1.0, 0.9, 0.895, 0.899]:
        es.on_epoch_end(t, {"val_loss": v})
    assert t.reason is not None and es.best == 0.9
    assert improved(0.5, None, Direction.MAX) and not improved(float("nan"), 1.0, Direction.MIN)


def test_schedules():
    s = load_config(None, ["schedule.name=exponential", "schedule.gamma=0.5"]).schedule
    assert lr_at(0, 10, s, 1.0) == 1.0 and lr_at(2.5, 10, s, 1.0) == 0.25
    s = load_config(None, ["schedule.name=step", "schedule.step_size=3", "schedule.gamma=0.1"]).schedule
    assert lr_at(2.9, 10, s, 1.0) == 1.0 and math.isclose(lr_at(3, 10, s, 1.0), 0.1)
    s = load_config(None, ["schedule.name=cosine", "schedule.min_lr=0.01"]).schedule
    assert lr_at(0, 10, s, 1.0) == 1.0 and math.isclose(lr_at(10, 10, s, 1.0), 0.01)
    assert math.isclose(lr_at(5, 10, s, 1.0), 0.505)
    s = load_config(None, ["schedule.name=onecycle", "schedule.pct_start=0.25"]).schedule
    vals = [lr_at(t, 8, s, 1.0) for t in (0, 2, 8)]
    assert math.isclose(vals[0], 1 / 25) and math.isclose(vals[1], 1.0) and vals[2] < 1e-3


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop"])
def test_each_optimizer_learns(opt):
    lr = {"sgd": 0.05, "adam": 0.002, "adamw": 0.002, "rmsprop": 0.001}[opt]
    run = imgclf.train(None, FAST + ["train.epochs=3", f"optim.name={opt}", f"optim.lr={lr}",
                                     "train.label_smoothing=0.1"], echo=False)
    assert run.metrics["test"]["top1"] > 0.5  # chance is 0.1


def test_divergence_is_reported():
    with pytest.raises(imgclf.ImgclfError, match="diverged"):
        imgclf.train(None, ["model.spec=c32-c32-c32-p-f64", "optim.lr=100", "optim.momentum=0.99",
                            "schedule.name=none", "train.epochs=3", "optim.weight_decay=0"], echo=False)


def test_evaluate_and_predict_api(tmp_path):
    from PIL import Image

    run = imgclf.train(None, FAST + ["train.epochs=3"], echo=False)
    m = run.evaluate("test")
    assert math.isclose(m["top1"], run.metrics["test"]["top1"])
    assert run.evaluate("val")["n"] > 0
    from imgclf.data import load_raw

    raw = load_raw(run.config.data)
    Image.fromarray(raw.train_x[0, 0].numpy(), "L").save(tmp_path / "d.png")
    (pred,) = run.predict([tmp_path / "d.png"], top=3)
    assert len(pred) == 3 and abs(sum(p for _, p in pred) - 1) < 0.5 and pred[0][1] >= pred[1][1]
    assert pred[0][0] == str(int(raw.train_y[0]))
    json.dumps(m)


def test_progress_bar_goes_to_stderr(capsys):
    imgclf.train(None, FAST + ["train.epochs=1"], progress=True)
    captured = capsys.readouterr()
    assert "epoch 1" in captured.err and "batch" in captured.err  # tqdm's bar
    assert "epoch 1/1" in captured.out  # the log line stays on stdout


@pytest.mark.parametrize("schedule", ["cosine", "linear", "onecycle"])
def test_time_budget_drives_the_schedule_to_its_end(schedule):
    """A short budget ends annealed, and the final test evaluation fits inside it."""
    run = imgclf.train(None, BUDGETED + ["train.epochs=100000", "train.time_budget=3s", f"schedule.name={schedule}",
                                         "schedule.warmup=0.1"], echo=False)
    m, h = run.metrics, run.history
    assert "annealed" in m["stop_reason"] and 1 < m["epochs_run"] < 100000
    assert h["lr"].iloc[-1] < 0.05 * 0.05  # the last steps ran at under 5% of the peak rate
    assert h["lr"].max() > 0.5 * 0.05  # and the run did reach the peak first
    assert list(h["epoch"]) == list(range(1, m["epochs_run"] + 1)) and m["best_epoch"] <= m["epochs_run"]
    assert m["test_reserve_seconds"] >= 0.02 * 3.0 and m["test"]["n"] > 0  # time kept for the final test, spent on it


def test_time_budget_without_a_validation_split_keeps_the_annealed_weights():
    """The 1-hour recipe's shape: all training images, no validation pass, TTA on the final test."""
    run = imgclf.train(None, BUDGETED + ["train.epochs=100000", "train.time_budget=3s", "schedule.name=linear",
                                         "schedule.warmup=0.1", "data.val_fraction=0", "train.tta=flip"], echo=False)
    m, h = run.metrics, run.history
    assert "annealed" in m["stop_reason"] and m["monitor"] == "last"
    assert h["val_acc"].isna().all()
    # Nothing to choose by: the kept weights are the last epoch's, the end of the annealing
    # (on this tiny set the training loss is lowest mid-run, where weight decay has not yet acted).
    assert m["best_epoch"] == m["epochs_run"] and h["lr"].iloc[-1] < 0.05 * 0.05
    assert m["test"]["top1"] > 0.5
    # With no validation pass to time, an evaluation of training images was timed instead: the time kept
    # back for the 2-view test pass is more than the flat 2% of the budget.
    assert m["test_reserve_seconds"] > 0.02 * 3.0


def test_bf16_precision_trains_on_cpu_and_fp16_needs_a_gpu():
    run = imgclf.train(None, FAST + ["train.epochs=2", "train.precision=bf16"], echo=False)
    assert run.metrics["test"]["top1"] > 0.5  # chance is 0.10
    assert math.isfinite(run.history["train_loss"].iloc[-1])
    with pytest.raises(imgclf.ImgclfError, match="fp16 needs a CUDA GPU"):
        imgclf.train(None, FAST + ["train.epochs=1", "train.precision=fp16"], echo=False)
    with pytest.raises(imgclf.ImgclfError, match="train.precision"):
        imgclf.train(None, FAST + ["train.precision=half"], echo=False)


def test_auto_precision_is_fp32_on_cpu_and_mixed_on_cuda():
    from imgclf.runtime.device import autocast_dtype, grad_scaler

    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert autocast_dtype("auto", torch.device("cuda")) in (torch.bfloat16, torch.float16)
    assert grad_scaler(torch.device("cpu"), torch.bfloat16) is None  # bf16 has fp32's exponent range
    import warnings

    with warnings.catch_warnings():  # on a machine without CUDA the scaler warns that it is disabled
        warnings.simplefilter("ignore")
        assert grad_scaler(torch.device("cuda"), torch.float16) is not None


def test_native_precision_takes_bf16_only_where_the_cpu_computes_it(tmp_path, monkeypatch):
    from imgclf.runtime import device as precision

    zen3 = tmp_path / "zen3"
    zen3.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f\n\nprocessor\t: 1\n")
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16\n")
    xeon = tmp_path / "xeon"
    xeon.write_text("flags\t\t: fpu avx2 amx_bf16 amx_tile\n")
    assert not precision.cpu_has_native_bf16(str(zen3))
    assert precision.cpu_has_native_bf16(str(zen4)) and precision.cpu_has_native_bf16(str(xeon))
    assert not precision.cpu_has_native_bf16(str(tmp_path / "missing"))
    for has, dtype in ((False, None), (True, torch.bfloat16)):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda has=has: has)
        assert precision.autocast_dtype("native", torch.device("cpu")) is dtype
    # The config value reaches the trainer: on this machine's CPU, whichever it is, training works.
    run = imgclf.train(None, FAST + ["train.epochs=1", "train.precision=native"], echo=False)
    assert math.isfinite(run.history["train_loss"].iloc[-1])


def test_tta_averages_the_mirrored_and_shifted_views():
    from imgclf.evaluation.evaluate import TTA, predict_logits, tta_views

    x = torch.randn(3, 2, 5, 6)
    assert all(len(tta_views(x, t)) == TTA.attr(t, "views") for t in TTA)  # what a time budget reserves
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 6, 4))
    flip = predict_logits(lin, x, "flip")
    assert torch.allclose(flip, (lin(x) + lin(x.flip(3))) / 2, atol=1e-6)
    six = predict_logits(lin, x, "flip-translate")
    assert not torch.allclose(six, flip)
    # A model that only sees the mean colour is unchanged by mirroring and one-pixel shifts of a flat image.
    flat = torch.ones(2, 3, 8, 8) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    gap = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 4))
    assert torch.allclose(predict_logits(gap, flat, "flip-translate"), gap(flat), atol=1e-6)


def test_tta_is_used_for_the_final_test_and_evaluate():
    base = imgclf.train(None, FAST + ["train.epochs=2"], echo=False)
    tta = imgclf.train(None, FAST + ["train.epochs=2", "train.tta=flip"], echo=False)
    # Same training (tta only changes evaluation), different test scores, and evaluate() agrees.
    assert strip_time(base.history.to_dict("records")) == strip_time(tta.history.to_dict("records"))
    assert base.metrics["test"]["loss"] != tta.metrics["test"]["loss"]
    assert math.isclose(tta.evaluate("test")["top1"], tta.metrics["test"]["top1"])
    assert math.isclose(tta.evaluate("test", tta="none")["top1"], base.metrics["test"]["top1"])


def test_compile_trains_the_same_model():
    """torch.compile changes how the forward pass runs, not what it computes."""
    opts = ["model.name=perceptron", "train.epochs=2", "train.batch_size=128"]
    plain = imgclf.train(None, opts, echo=False)
    compiled = imgclf.train(None, opts + ["train.compile=true"], echo=False)
    for a, b in zip(plain.history.to_dict("records"), compiled.history.to_dict("records")):
        assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=f32_rtol(2 * 11, 64))  # compiled: reordered
        assert math.isclose(a["val_acc"], b["val_acc"], abs_tol=0.01)
    assert "_orig_mod" not in "".join(load_checkpoint(compiled.path / "best.pt")["model"])  # plain keys


def test_whitening_layer_is_set_from_the_training_images_and_stays_frozen():
    from imgclf.api import prepare_data
    from imgclf.data.loader import Transform

    o = ["model.name=conv-groups", "model.whiten=true", "model.widths=[8,16]", "train.epochs=2",
         "train.batch_size=64", "data.augment.hflip=true", "data.augment.alternate_flip=true"]
    run = imgclf.train(None, o, echo=False)
    assert run.metrics["test"]["top1"] > 0.3  # 8x8 digits, chance is 0.10
    w = load_checkpoint(run.path / "last.pt")["model"]["0.weight"]  # 8 filters: 2 x 1 channel x 2 x 2
    cfg = load_config(None, o)
    splits = prepare_data(cfg)
    x = Transform(cfg.data.augment, cfg.data.normalization, splits.mean, splits.std).eval(splits.train.x)
    y = torch.nn.functional.conv2d(x, w)[:, :4].permute(0, 2, 3, 1).reshape(-1, 4)
    # After two epochs of training the filters still whiten the training images' 2x2 patches.
    assert torch.allclose(y.T @ y / len(y), torch.eye(4), atol=0.05)


def test_early_crops_train_small_then_full_size():
    o = ["model.name=conv-groups", "model.widths=[8,16]", "train.batch_size=64", "train.epochs=4",
         "data.augment.crop_padding=1", "data.augment.hflip=true", "data.augment.early_crop=6",
         "data.augment.early_crop_share=0.5"]
    run = imgclf.train(None, o, echo=False)
    h = run.history
    assert h["crop"].iloc[:2].tolist() == [6, 6] and h["crop"].iloc[2:].isna().all()  # the first half of the epochs
    assert run.metrics["test"]["top1"] > 0.3  # 8x8 digits evaluated at full size; chance is 0.10
    with pytest.raises(imgclf.ImgclfError, match="early_crop=8 must be smaller"):
        imgclf.train(None, o + ["data.augment.early_crop=8"], echo=False)
    with pytest.raises(imgclf.ImgclfError, match="needs data.augment.crop_padding"):
        imgclf.train(None, o + ["data.augment.crop_padding=0"], echo=False)
    with pytest.raises(imgclf.ImgclfError, match="cannot take 1x6x6 inputs"):  # it flattens an 8x8 map
        imgclf.train(None, FAST + ["data.augment.crop_padding=1", "data.augment.early_crop=6"], echo=False)


def test_whitening_bias_trains_for_its_epochs_only_then_the_rest_trains_on():
    o = ["model.name=conv-groups", "model.whiten=true", "model.widths=[8,16]", "model.whiten_bias_epochs=1",
         "train.batch_size=64", "data.val_fraction=0", "schedule.name=none"]
    one = load_checkpoint(imgclf.train(None, o + ["train.epochs=1"], echo=False).path / "last.pt")["model"]
    two = load_checkpoint(imgclf.train(None, o + ["train.epochs=2"], echo=False).path / "last.pt")["model"]
    assert one["0.bias"].abs().sum() > 0  # trained in epoch 1 (it starts at zero)
    assert torch.equal(one["0.bias"], two["0.bias"])  # frozen in epoch 2: no step, no weight decay
    assert not torch.equal(one["2.weight"], two["2.weight"])  # while the convs went on training


def test_a_run_leaves_the_callers_torch_threads_as_they_were():
    """train.threads applies to the run alone: a later run in the same process sums in the same
    order as it would alone (a suite once failed exact-resume checks after a threads=1 run)."""
    before = torch.get_num_threads()
    imgclf.train(None, FAST + ["train.epochs=1", f"train.threads={before + 1}"], echo=False)
    assert torch.get_num_threads() == before
