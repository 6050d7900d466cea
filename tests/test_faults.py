"""Faults: a run killed at any moment resumes losing at most an epoch and ends as an uninterrupted
one; a full disk leaves the previous checkpoint whole and ends with one line; two runs given the
same name at once never share a folder."""
import os
import resource
import subprocess
import sys
import textwrap

import pytest
from conftest import make_image_folder, strip_time

import imgclf

# A training process that kills itself with SIGKILL at a chosen moment: mid-epoch, or just
# before the rename that completes the write of a checkpoint, the history or the data cache.
KILLER = textwrap.dedent("""
    import os, signal, sys
    import imgclf
    from imgclf.engine.plugins import Plugin

    moment, name, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
    real_replace, seen = os.replace, {}

    def replace(src, dst):
        d = str(dst)
        key = "last.pt" if d.endswith("last.pt") else "history" if d.endswith("history.jsonl") else \\
            "cache" if "decoded" in d else None
        seen[key] = seen.get(key, 0) + 1
        if key == moment and (key == "cache" or seen[key] == 3):  # the third epoch's write
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    os.replace = replace

    class KillMidEpoch(Plugin):
        name = "kill"

        def on_batch_end(self, trainer, step, loss):
            if moment == "epoch" and trainer.epoch == 2 and step == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    imgclf.train(None, overrides, name=name, plugins=[KillMidEpoch()], echo=False)
""")
DIGITS = ["model.spec=c8-p-c16-p-f32", "train.batch_size=64", "train.epochs=4", "data.augment.hflip=true"]


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "imgclf.cli.main", *args], capture_output=True, text=True,
                          env=os.environ.copy(), **kw)


@pytest.mark.parametrize("moment", ["epoch", "last.pt", "history", "cache"])
def test_a_run_killed_at_any_moment_resumes_and_ends_as_an_uninterrupted_one(moment, tmp_path):
    overrides = DIGITS
    if moment == "cache":  # digits come from scikit-learn; an image folder goes through the cache
        root = make_image_folder(tmp_path / "imgs", splits=(), per_class=12, size=8)
        overrides = DIGITS + ["data.name=folder", f"data.path={root}", "data.image_size=8"]
    proc = subprocess.run([sys.executable, "-c", KILLER, moment, "killed", *overrides], env=os.environ.copy(),
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    run_dir = tmp_path / "runs" / "killed"
    if moment == "cache":  # killed before its first epoch: nothing to resume, no half-written cache
        assert not list((tmp_path / "cache" / "decoded").glob("*.pt"))
        assert _cli("train", "--name", "killed2", *sum((["--set", o] for o in overrides), [])).returncode == 0
        resumed = imgclf.load_run("killed2")
    else:
        history = (run_dir / "history.jsonl").read_text().splitlines()
        assert len(history) >= 2  # killed in epoch 3 or while saving it: at most that epoch is lost
        done = _cli("train", "--resume", "killed")
        assert done.returncode == 0, done.stderr
        resumed = imgclf.load_run("killed")
        assert not list(run_dir.glob(".*.tmp"))  # what the kill left mid-write is cleared
    straight = imgclf.train(None, overrides, name="straight", echo=False)
    assert strip_time(resumed.history.to_dict("records")) == strip_time(straight.history.to_dict("records"))
    assert resumed.metrics["test"] == straight.metrics["test"]


def test_a_full_disk_keeps_the_previous_checkpoint_and_ends_with_one_line(tmp_path):
    imgclf.train(None, DIGITS[:-1] + ["train.epochs=1"], name="r", echo=False)
    last = (tmp_path / "runs" / "r" / "last.pt").read_bytes()
    limit = 16_000  # bytes a file may grow to: the log and config fit, a checkpoint does not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "imgclf.cli.main", "train", "--resume", "r", "--set",
                           "train.epochs=2"], capture_output=True, text=True, env=os.environ.copy(),
                          preexec_fn=small_files)
    assert len(last) > limit and proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "previous version is kept" in proc.stderr, proc.stderr
    assert (tmp_path / "runs" / "r" / "last.pt").read_bytes() == last  # whole, as before
    assert not list((tmp_path / "runs" / "r").glob(".*.tmp"))
    assert _cli("train", "--resume", "r", "--set", "train.epochs=2").returncode == 0  # room again: it goes on


def test_two_runs_started_with_one_name_never_share_its_folder():
    args = ["train", "--name", "same", "--set", "model.spec=c8-p-f16", "--set", "train.epochs=1", "--no-progress"]
    procs = [subprocess.Popen([sys.executable, "-m", "imgclf.cli.main", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=os.environ.copy()) for _ in range(2)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    err = next(e for code, e in results if code == 2)
    assert err.count("\n") == 1 and "same" in err
