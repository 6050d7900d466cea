"""Resume from the command the user already typed: the same `imgclf train ...` with --resume
appended continues the killed run; a command that would change the result is refused in one line
naming the first differing key; --resume auto starts fresh, continues, or says the run is done."""
import os
import signal
import subprocess
import sys
import textwrap

from conftest import strip_time

import imgclf

CMD = ["train", "--name", "job", "--set", "model.spec=c8-p-f16", "--set", "train.epochs=4",
       "--set", "train.batch_size=64", "--no-progress"]
# The same command, run in a process that kills itself (SIGKILL) in its third epoch.
KILLED = textwrap.dedent("""
    import os, signal, sys
    from imgclf.cli.main import main
    from imgclf.engine.plugins import PLUGINS, Plugin

    class Kill(Plugin):
        name = "kill"
        def on_batch_end(self, trainer, step, loss):
            if trainer.epoch == 2 and step == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    PLUGINS.register("kill")(lambda ctx: Kill())
    sys.exit(main(sys.argv[1:]))
""")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "imgclf.cli.main", *args], capture_output=True, text=True,
                          env=os.environ.copy())


def test_the_same_command_with_resume_appended_continues_the_killed_run(tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED, *CMD], capture_output=True, text=True, env=os.environ.copy())
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before = imgclf.load_run("job").history.to_dict("records")
    assert [r["epoch"] for r in before] == [1, 2]  # killed in its third epoch
    done = _cli(*CMD, "--resume")
    assert done.returncode == 0, done.stderr
    after = imgclf.load_run("job").history.to_dict("records")
    assert after[:2] == before and [r["epoch"] for r in after] == [1, 2, 3, 4]  # continued, seconds and all
    straight = imgclf.train(None, [a for a in CMD if "=" in a], name="straight", echo=False)
    resumed = imgclf.load_run("job")
    assert strip_time(resumed.history.to_dict("records")) == strip_time(straight.history.to_dict("records"))


def test_a_command_that_changes_the_result_is_refused_naming_the_key(tmp_path):
    assert _cli(*CMD, "--set", "train.epochs=2").returncode == 0  # a run of 2 epochs, finished
    refused = _cli(*CMD, "--set", "optim.lr=0.5", "--resume")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "optim.lr" in refused.stderr and "--name" in refused.stderr  # the key, and the way out
    shorter = _cli(*CMD, "--set", "train.epochs=1", "--resume")
    assert shorter.returncode == 2 and "train.epochs" in shorter.stderr
    # more epochs, other threads and no progress bar cannot change what the first epoch was: allowed
    longer = _cli(*CMD, "--set", "train.epochs=3", "--set", "train.threads=1", "--resume")
    assert longer.returncode == 0, longer.stderr
    assert len(imgclf.load_run("job").history) == 3


def test_resume_auto_starts_continues_or_does_nothing(tmp_path):
    first = _cli(*CMD, "--set", "train.epochs=1", "--resume", "auto")
    assert first.returncode == 0, first.stderr  # no such run yet: a fresh one
    run = imgclf.load_run("job")
    trained = (run.history.to_dict("records"), run.metrics, (run.path / "last.pt").read_bytes())
    assert [r["epoch"] for r in trained[0]] == [1]
    again = _cli(*CMD, "--set", "train.epochs=1", "--resume", "auto")
    assert again.returncode == 0, again.stderr  # finished: nothing trains, nothing is rewritten
    assert (run.history.to_dict("records"), run.metrics, (run.path / "last.pt").read_bytes()) == trained


def test_resume_alone_needs_a_name(tmp_path):
    out = _cli("train", "--resume")
    assert out.returncode == 2 and "--name" in out.stderr and out.stderr.count("\n") == 1


def test_the_same_command_resumes_a_run_fine_tuned_from_pretrained_weights(tmp_path):
    """The run records the weights' hash (model.pretrained_sha256) when they load; the command that
    started it does not carry it, and must still continue it."""
    source = imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=1"], name="source", echo=False)
    ft = ["train", "--name", "ft", "--set", "model.spec=c8-p-f16", "--set", f"model.pretrained={source.path}",
          "--set", "model.strategy=finetune", "--set", "train.epochs=3", "--no-progress"]
    killed = subprocess.run([sys.executable, "-c", KILLED, *ft], capture_output=True, text=True, env=os.environ.copy())
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert imgclf.load_run("ft").config.model.pretrained_sha256  # recorded, so the configs differ there
    done = _cli(*ft, "--resume")
    assert done.returncode == 0, done.stderr
    assert list(imgclf.load_run("ft").history["epoch"]) == [1, 2, 3]
