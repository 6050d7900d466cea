"""The device a run picks: the suite hides any GPU (see conftest); this test trains in a process of
its own that sees the machine's devices as they are, so that a GPU, where there is one, is used and
agrees with the CPU, and a machine without one trains the same run on the CPU."""
import json
import os
import subprocess
import sys

import imgclf
from imgclf.runtime.device import machine

ARGS = ["model.spec=c16-p-c32-p-f64", "train.batch_size=64", "train.epochs=3", "train.device=auto"]


def test_auto_device_trains_on_what_the_machine_has_and_agrees_with_the_cpu(tmp_path):
    env = os.environ.copy()
    visible = env.pop("IMGCLF_TEST_VISIBLE_DEVICES", "*all*")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if visible != "*all*":
        env["CUDA_VISIBLE_DEVICES"] = visible
    code = ("import json, sys, imgclf; r = imgclf.train(None, sys.argv[1:], name='auto', echo=False); "
            "print(json.dumps({'device': r.metrics['device'], 'history': r.history.to_dict('records'), "
            "'top1': r.metrics['test']['top1']}))")
    proc = subprocess.run([sys.executable, "-c", code, *ARGS], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    auto = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu = imgclf.train(None, ARGS[:-1] + ["train.device=cpu"], name="cpu", echo=False)
    # every run names the machine it trained on, for the results that publish its figures
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu.metrics["machine"] == machine() and f", {cores} core" in machine() and "torch 2." in machine()
    assert auto["top1"] > 0.8 and cpu.metrics["test"]["top1"] > 0.8  # chance is 0.10
    if auto["device"] == "cpu":  # the same arithmetic: the same run, to the bit
        assert [r["train_loss"] for r in auto["history"]] == cpu.history["train_loss"].tolist()
    else:  # another device's kernels: the same learning, within a few images of 359
        assert abs(auto["top1"] - cpu.metrics["test"]["top1"]) <= 0.05, (auto["device"], auto["top1"])
