"""Data-parallel training with torchrun: two processes on the CPU (gloo) train the run one process
trains, write one run folder and one log, score every test image once, and resume after a kill."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import strip_time

import imgclf
from imgclf.engine.checkpoint import load_checkpoint

# A BN-free, dropout-free CNN; 1,003 training images at batch 100 end on a batch of 3, which two
# processes split 2 + 1: their losses are weighted so the step is still the global batch's.
RUN = ["model.spec=c8-p-c16-p-f32", "train.batch_size=100", "data.max_train=1003", "train.epochs=3",
       "data.augment.hflip=true"]


def torchrun(*args, script=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += [script] if script else ["-m", "imgclf"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=os.environ.copy(), timeout=300)


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_two_processes_train_the_run_one_process_trains(tmp_path):
    two = torchrun("train", "--name", "two", "--no-progress", *sets(RUN))
    assert two.returncode == 0, two.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["two"]  # one run folder
    assert list(imgclf.load_run("two").history["epoch"]) == [1, 2, 3]  # one record an epoch: rank 0 writes
    one = imgclf.train(None, RUN, name="one", echo=False)
    a = load_checkpoint(tmp_path / "runs" / "two" / "last.pt")["model"]
    b = load_checkpoint(one.path / "last.pt")["model"]
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-5) for k in b)
    h2 = imgclf.load_run("two").history
    assert h2["train_loss"].tolist() == pytest.approx(one.history["train_loss"].tolist(), rel=1e-5)


def test_batch_norm_per_process_and_every_test_image_scored_once(tmp_path):
    bn = ["model.spec=c8-b-p-c16-b-p-f32", "train.epochs=2", "train.batch_size=64"]
    two = torchrun("train", "--name", "bn", "--no-progress", *sets(bn))
    assert two.returncode == 0, two.stderr[-3000:]
    test = imgclf.load_run("bn").metrics["test"]
    assert test["n"] == 359 and sum(map(sum, test["confusion"])) == 359  # 359 digits: none twice, none padded
    assert test["top1"] > 0.5


def test_sync_bn_on_cpus_is_one_line_before_training(capsys):
    from imgclf.cli.main import main

    assert main(["train", "--set", "train.sync_bn=true", "--set", "train.device=cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SyncBatchNorm runs on CUDA GPUs only" in err


KILL_IN_EPOCH_2 = textwrap.dedent("""
    import os, signal, sys
    import imgclf
    from imgclf.engine.plugins import Plugin

    class Kill(Plugin):
        name = "kill"

        def on_batch_end(self, trainer, step, loss):
            if trainer.epoch == 1 and step == 4:
                os.kill(os.getpid(), signal.SIGKILL)

    imgclf.train(None, sys.argv[2:], name=sys.argv[1], plugins=[Kill()], echo=False)
""")


def test_a_killed_two_process_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    script = tmp_path / "kill.py"
    script.write_text(KILL_IN_EPOCH_2)
    killed = torchrun("killed", *RUN, script=str(script))
    assert killed.returncode != 0
    assert len((tmp_path / "runs" / "killed" / "history.jsonl").read_text().splitlines()) == 1  # epoch 2 lost
    resumed = torchrun("train", "--resume", "killed", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = torchrun("train", "--name", "straight", "--no-progress", *sets(RUN))
    assert straight.returncode == 0, straight.stderr[-3000:]
    r, s = imgclf.load_run("killed"), imgclf.load_run("straight")
    assert strip_time(r.history.to_dict("records")) == strip_time(s.history.to_dict("records"))
    assert r.metrics["test"] == s.metrics["test"]


def test_a_time_budget_stops_every_process_at_the_same_step(tmp_path):
    budget = ["model.name=mlp", "model.hidden=[64]", "train.epochs=1000", "train.time_budget=4s",
              "data.val_fraction=0", "schedule.name=linear"]
    two = torchrun("train", "--name", "timed", "--no-progress", *sets(budget))
    assert two.returncode == 0, two.stderr[-3000:]  # a process that stepped on alone would hang its peer
    m = imgclf.load_run("timed").metrics
    assert 1 <= m["epochs_run"] < 1000 and "time budget" in m["stop_reason"] and m["test"]["n"] == 359
