"""Real (small) training runs on the bundled digits: learning, resume, budgets, checkpoints."""
import json
import math

import pytest
import torch

import imgclf
from conftest import strip_time
from imgclf.config import load_config
from imgclf.engine.callbacks import EarlyStopping, improved
from imgclf.engine.checkpoint import load_checkpoint
from imgclf.engine.optim import lr_at
from imgclf.errors import BudgetError, ConfigError, RunError
from imgclf.models import build_model

FAST = ["model.spec=c16-p-c32-p-f64", "train.batch_size=64"]


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
    log = (run.path / "train.log").read_text()
    assert "test split not scored" in log and "top-1" not in log  # no test score to peek at
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
    assert improved(0.5, None, "max") and not improved(float("nan"), 1.0, "min")


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
    run = imgclf.train(None, FAST + ["train.epochs=100000", "train.time_budget=3s", f"schedule.name={schedule}",
                                     "schedule.warmup=0.1"], echo=False)
    m, h = run.metrics, run.history
    assert "annealed" in m["stop_reason"] and 1 < m["epochs_run"] < 100000
    assert h["lr"].iloc[-1] < 0.05 * 0.05  # the last steps ran at under 5% of the peak rate
    assert h["lr"].max() > 0.5 * 0.05  # and the run did reach the peak first
    assert m["budget_seconds"] <= 3.0  # training plus the final test evaluation


def test_time_budget_without_a_validation_split_keeps_the_annealed_weights():
    """The 1-hour recipe's shape: all training images, no validation pass, TTA on the final test."""
    run = imgclf.train(None, FAST + ["train.epochs=100000", "train.time_budget=3s", "schedule.name=linear",
                                     "schedule.warmup=0.1", "data.val_fraction=0", "train.tta=flip"], echo=False)
    m, h = run.metrics, run.history
    assert "annealed" in m["stop_reason"] and m["monitor"] == "last"
    assert h["val_acc"].isna().all()
    # Nothing to choose by: the kept weights are the last epoch's, the end of the annealing
    # (on this tiny set the training loss is lowest mid-run, where weight decay has not yet acted).
    assert m["best_epoch"] == m["epochs_run"] and h["lr"].iloc[-1] < 0.05 * 0.05
    assert m["budget_seconds"] <= 3.0 and m["test"]["top1"] > 0.5
    # With no validation pass to time, an evaluation of training images was timed instead: the time kept
    # back for the 2-view test pass is more than the flat 2% of the budget, and training ended before it.
    assert m["test_reserve_seconds"] > 0.02 * 3.0
    assert m["train_seconds"] <= 3.0 - m["test_reserve_seconds"] + 0.5  # + at most one step past the deadline


def test_bf16_precision_trains_on_cpu_and_fp16_needs_a_gpu():
    run = imgclf.train(None, FAST + ["train.epochs=2", "train.precision=bf16"], echo=False)
    assert run.metrics["test"]["top1"] > 0.5  # chance is 0.10
    assert math.isfinite(run.history["train_loss"].iloc[-1])
    with pytest.raises(imgclf.ImgclfError, match="fp16 needs a CUDA GPU"):
        imgclf.train(None, FAST + ["train.epochs=1", "train.precision=fp16"], echo=False)
    with pytest.raises(imgclf.ImgclfError, match="train.precision"):
        imgclf.train(None, FAST + ["train.precision=half"], echo=False)


def test_auto_precision_is_fp32_on_cpu_and_mixed_on_cuda():
    from imgclf.engine.precision import autocast_dtype, grad_scaler

    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert autocast_dtype("auto", torch.device("cuda")) in (torch.bfloat16, torch.float16)
    assert grad_scaler(torch.device("cpu"), torch.bfloat16) is None  # bf16 has fp32's exponent range
    import warnings

    with warnings.catch_warnings():  # on a machine without CUDA the scaler warns that it is disabled
        warnings.simplefilter("ignore")
        assert grad_scaler(torch.device("cuda"), torch.float16) is not None


def test_native_precision_takes_bf16_only_where_the_cpu_computes_it(tmp_path, monkeypatch):
    from imgclf.engine import precision

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
    from imgclf.evaluation.evaluate import predict_logits, tta_views

    x = torch.randn(3, 2, 5, 6)
    from imgclf.evaluation.evaluate import TTA_VIEWS

    assert {t: len(tta_views(x, t)) for t in TTA_VIEWS} == TTA_VIEWS
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
        assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=1e-4)
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


def test_an_ensemble_trains_whitens_resumes_and_evaluates_as_one_model():
    o = ["model.name=conv-groups", "model.whiten=true", "model.widths=[8,16]", "model.members=2",
         "train.batch_size=64", "data.augment.hflip=true", "schedule.name=exponential", "schedule.gamma=0.7"]
    full = imgclf.train(None, o + ["train.epochs=3"], name="ens-full", echo=False)
    assert full.metrics["test"]["top1"] > 0.3 and full.history["train_acc"].iloc[-1] > 0.3  # chance 0.10
    w = load_checkpoint(full.path / "last.pt")["model"]
    # both members' whitening filters were set from the data (the same images, so the same filters)
    assert torch.equal(w["members.0.0.weight"], w["members.1.0.weight"])
    assert not torch.equal(w["members.0.2.weight"], w["members.1.2.weight"])  # independent initialisations
    part = imgclf.train(None, o + ["train.epochs=2"], name="ens-part", echo=False)
    resumed = imgclf.train(resume="ens-part", overrides=["train.epochs=3"], echo=False)
    assert strip_time(resumed.history.to_dict("records")) == strip_time(full.history.to_dict("records"))
    assert resumed.evaluate("test")["top1"] == full.metrics["test"]["top1"]
    with pytest.raises(ConfigError, match="model.members=2 does not combine with train.prune_data"):
        imgclf.train(None, o + ["train.epochs=1", "train.prune_data=0.3"], echo=False)


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
    with pytest.raises(imgclf.ImgclfError, match="cannot take 6x6 inputs"):  # it flattens an 8x8 map
        imgclf.train(None, FAST + ["data.augment.crop_padding=1", "data.augment.early_crop=6"], echo=False)


def test_trivial_augment_stops_after_its_share_of_the_run():
    from imgclf.api import prepare_data
    from imgclf.data.loader import Transform, batches

    o = ["model.name=conv-groups", "model.widths=[8,16]", "train.batch_size=64", "train.epochs=4",
         "data.augment.trivial=1.0", "data.augment.trivial_share=0.5"]
    run = imgclf.train(None, o, echo=False)
    h = run.history
    assert h["trivial"].iloc[:2].tolist() == [1.0, 1.0] and h["trivial"].iloc[2:].isna().all()
    assert "trivial 1" in (run.path / "train.log").read_text()
    # strong=False gives exactly the batches of the same config without TrivialAugment
    cfg = load_config(None, o)
    splits = prepare_data(cfg)
    t = Transform(cfg.data.augment, cfg.data.normalization, splits.mean, splits.std)
    plain_cfg = load_config(None, o + ["data.augment.trivial=0"])
    p = Transform(plain_cfg.data.augment, cfg.data.normalization, splits.mean, splits.std)
    draw = lambda tr, **kw: next(batches(splits.train, 64, tr, torch.device("cpu"), train=True,
                                         generator=torch.Generator().manual_seed(3), **kw))[0]
    assert torch.equal(draw(t, strong=False), draw(p))
    assert not torch.equal(draw(t), draw(p))


def test_norm_biases_train_at_their_own_rate_and_frozen_bn_scales_stay_one():
    from imgclf.engine.optim import build_optimizer, set_lr

    o = ["model.name=conv-groups", "model.widths=[8,16]", "train.batch_size=64", "data.val_fraction=0",
         "schedule.name=none", "optim.lr=0.01", "optim.norm_bias_lr_scale=8", "model.bn_scale=false"]
    cfg = load_config(None, o)
    model = build_model("conv-groups", {"widths": [8, 16], "bn_scale": False}, (1, 8, 8), 10)
    opt = build_optimizer(model, cfg.optim)
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    fast = next(g for g in opt.param_groups if g["lr_scale"] == 8)
    assert {id(p) for p in fast["params"]} == {id(m.bias) for m in bn} and fast["weight_decay"] == 0
    set_lr(opt, 0.5)
    assert fast["lr"] == 4.0 and all(g["lr"] == 0.5 for g in opt.param_groups if g is not fast)
    # Trained for real: the scales never move off 1, the shifts do, and the count leaves the scales out.
    run = imgclf.train(None, o + ["train.epochs=1"], echo=False)
    state = load_checkpoint(run.path / "last.pt")["model"]
    scales = [k for k in state if k.endswith(".weight") and state[k].ndim == 1]
    assert scales and all(torch.equal(state[k], torch.ones_like(state[k])) for k in scales)
    assert all(state[k.replace("weight", "bias")].abs().sum() > 0 for k in scales)
    assert run.metrics["params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_lookahead_pulls_the_weights_toward_their_slow_copy_more_as_the_run_ends():
    from imgclf.engine.lookahead import Lookahead

    model = torch.nn.Linear(3, 2)
    la = Lookahead(model, decay=0.9, every=2)
    assert la.alpha(0.0) == 0.0 and math.isclose(la.alpha(1.0), 0.81) and math.isclose(la.alpha(0.5), 0.81 / 8)
    start = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    la.step(1.0)  # one step of two: nothing happens yet
    assert all(torch.equal(p, s + 1) for p, s in zip(model.parameters(), start))
    la.step(1.0)  # the second: the weights restart from 0.81 * old + 0.19 * new
    assert all(torch.allclose(p, s + 0.19) for p, s in zip(model.parameters(), start))
    assert all(torch.equal(p, s) for p, s in zip(model.parameters(), la.slow))
    with torch.no_grad():
        model.weight.add_(5.0)
    la.sync(0.0)  # early in the run the slow copy simply takes the weights
    assert torch.equal(la.slow[0], model.weight)


def test_lookahead_changes_training_and_stays_reproducible():
    o = FAST + ["train.epochs=6", "train.lookahead=0.95", "data.augment.hflip=true"]
    a, b = imgclf.train(None, o, echo=False), imgclf.train(None, o, echo=False)
    assert strip_time(a.history.to_dict("records")) == strip_time(b.history.to_dict("records"))
    plain = imgclf.train(None, FAST + ["train.epochs=6", "data.augment.hflip=true"], echo=False)
    assert a.history["train_loss"].tolist() != plain.history["train_loss"].tolist()
    assert a.metrics["test"]["top1"] > 0.7  # chance is 0.10
    with pytest.raises(imgclf.ImgclfError, match="train.lookahead"):
        imgclf.train(None, FAST + ["train.lookahead=1.5"], echo=False)


def test_whitening_bias_trains_for_its_epochs_only_then_the_rest_trains_on():
    o = ["model.name=conv-groups", "model.whiten=true", "model.widths=[8,16]", "model.whiten_bias_epochs=1",
         "train.batch_size=64", "data.val_fraction=0", "schedule.name=none"]
    one = load_checkpoint(imgclf.train(None, o + ["train.epochs=1"], echo=False).path / "last.pt")["model"]
    two = load_checkpoint(imgclf.train(None, o + ["train.epochs=2"], echo=False).path / "last.pt")["model"]
    assert one["0.bias"].abs().sum() > 0  # trained in epoch 1 (it starts at zero)
    assert torch.equal(one["0.bias"], two["0.bias"])  # frozen in epoch 2: no step, no weight decay
    assert not torch.equal(one["2.weight"], two["2.weight"])  # while the convs went on training


def test_sam_takes_the_gradient_uphill_and_puts_the_weights_back():
    from imgclf.engine.sam import SAM

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    loss_at = lambda: torch.nn.functional.cross_entropy(model(x), y)  # noqa: E731
    loss_at().backward()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    g = [p.grad.clone() for p in model.parameters()]
    norm = torch.sqrt(sum((t ** 2).sum() for t in g))
    SAM(model, rho=0.5).second_pass(loss_at)
    sam_grads = [p.grad.clone() for p in model.parameters()]
    # The weights and the BN running statistics are as before the second pass.
    after = model.state_dict()
    assert all(torch.allclose(after[k].float(), v.float(), atol=1e-6) for k, v in start.items() if "num_batches" not in k)
    # The gradients are those at w + 0.5 g / ||g||, computed by hand.
    with torch.no_grad():
        for p, gi in zip(model.parameters(), g):
            p.add_(0.5 * gi / norm)
    model.zero_grad()
    momentum = model[1].momentum
    model[1].momentum = 0.0
    loss_at().backward()
    model[1].momentum = momentum
    assert all(torch.allclose(p.grad, s, atol=1e-6) for p, s in zip(model.parameters(), sam_grads))
    assert not all(torch.allclose(a, b) for a, b in zip(g, sam_grads))


def test_sam_from_half_the_run_leaves_the_first_half_alone_and_changes_the_second():
    o = FAST + ["train.epochs=4", "data.augment.hflip=true"]
    plain = imgclf.train(None, o, echo=False).history["train_loss"].tolist()
    sam = imgclf.train(None, o + ["train.sam=0.05", "train.sam_from=0.5"], echo=False)
    again = imgclf.train(None, o + ["train.sam=0.05", "train.sam_from=0.5"], echo=False)
    losses = sam.history["train_loss"].tolist()
    assert losses[:2] == plain[:2] and losses[2:] != plain[2:]
    assert losses == again.history["train_loss"].tolist()
    assert sam.metrics["test"]["top1"] > 0.7  # chance is 0.10
    with pytest.raises(imgclf.ImgclfError, match="train.sam_from"):
        imgclf.train(None, FAST + ["train.sam=0.05", "train.sam_from=1.5"], echo=False)


def test_mutual_loss_pulls_each_peer_toward_the_other_with_its_own_gradient_only():
    from imgclf.engine.mutual import mutual_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 8, 5, requires_grad=True)
    y = torch.randint(0, 5, (8,))
    ce = lambda z: torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1)  # noqa: E731
    assert torch.allclose(mutual_loss(logits, y, 0.0, 0.1), ce(logits[0]) + ce(logits[1]))
    mutual_loss(logits, y, 1.0, 0.1).backward()
    # peer 0's gradient: its own CE's plus (p0 - p1) / batch, with peer 1's prediction held fixed
    z0 = logits[0].detach().requires_grad_()
    ce(z0).backward()
    p = logits.detach().softmax(-1)
    assert torch.allclose(logits.grad[0], z0.grad + (p[0] - p[1]) / 8, atol=1e-6)
    # identical peers have nothing to teach each other
    same = torch.randn(1, 8, 5).expand(2, 8, 5)
    assert torch.allclose(mutual_loss(same, y, 1.0), 2 * torch.nn.functional.cross_entropy(same[0], y))


def test_mutual_learning_trains_resumes_exactly_and_keeps_one_model():
    o = FAST + ["data.augment.hflip=true", "schedule.name=exponential", "schedule.gamma=0.7", "train.mutual=1"]
    full = imgclf.train(None, o + ["train.epochs=3"], name="mfull", echo=False)
    plain = imgclf.train(None, [k for k in o if k != "train.mutual=1"] + ["train.epochs=3"], echo=False)
    assert full.history["train_loss"].tolist() != plain.history["train_loss"].tolist()
    assert full.metrics["test"]["top1"] > 0.4  # chance is 0.10; 0.57 for the plain run at 3 epochs
    assert full.metrics["params"] == plain.metrics["params"]  # the peer is not part of the network
    ck = load_checkpoint(full.path / "last.pt")
    assert ck["model"].keys() == ck["peer"].keys()
    assert not torch.equal(ck["model"]["conv1.weight"], ck["peer"]["conv1.weight"])  # initialised apart
    evaluated = imgclf.evaluate(full.path, split="test")
    assert evaluated["top1"] == full.metrics["test"]["top1"]  # the saved run is an ordinary model
    imgclf.train(None, o + ["train.epochs=1"], name="mpart", echo=False)
    resumed = imgclf.train(resume="mpart", overrides=["train.epochs=3"], echo=False)
    assert strip_time(resumed.history.to_dict("records")) == strip_time(full.history.to_dict("records"))
    with pytest.raises(imgclf.ImgclfError, match="train.prune_data"):
        imgclf.train(None, o + ["train.prune_data=0.5"], echo=False)


def test_self_distillation_mixes_last_epochs_predictions_into_the_targets():
    from imgclf.engine.self_distill import SelfDistillation

    torch.manual_seed(0)
    sd = SelfDistillation(n=6, num_classes=4, alpha=0.5, device=torch.device("cpu"))
    z, y, idx = torch.randn(3, 4), torch.tensor([0, 1, 3]), torch.tensor([5, 0, 2])
    ce = torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1)
    assert torch.allclose(sd.loss(z, y, idx, progress=0.0, label_smoothing=0.1), ce)  # plain LS at the start
    assert torch.allclose(sd.probs[idx], z.softmax(-1)) and torch.allclose(sd.probs[1], torch.full((4,), 0.25))
    z2 = torch.randn(3, 4)
    # at the end: half the (smoothed) label, half last epoch's prediction
    target = 0.5 * (torch.nn.functional.one_hot(y, 4) * 0.9 + 0.025) + 0.5 * z.softmax(-1)
    expected = -(target * z2.log_softmax(-1)).sum(-1).mean()
    assert torch.allclose(sd.loss(z2, y, idx, progress=1.0, label_smoothing=0.1), expected)


def test_self_distillation_trains_and_checkpoints_its_predictions():
    o = FAST + ["data.augment.hflip=true", "train.self_distill=0.8"]
    run = imgclf.train(None, o + ["train.epochs=3"], echo=False)
    plain = imgclf.train(None, o[:-1] + ["train.epochs=3"], echo=False)
    assert run.history["train_loss"].tolist()[1:] != plain.history["train_loss"].tolist()[1:]
    assert run.metrics["test"]["top1"] > 0.3  # chance is 0.10
    probs = load_checkpoint(run.path / "last.pt")["trainer"]["distill"]["probs"]  # what a resumed run reads back
    assert probs.shape == (run.metrics["train_images"], 10)
    assert torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-4) and probs.max() > 0.3  # uniform: 0.1
    with pytest.raises(imgclf.ImgclfError, match="train.self_distill"):  # refused by the config, before any run folder
        load_config(None, o + ["train.sam=0.05"])
