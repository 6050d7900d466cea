"""Plugins: one written here runs with no change to imgclf; plugin state travels in checkpoints."""
import math
from pathlib import Path

import pytest
from conftest import strip_time

import imgclf
from imgclf.engine.checkpoint import load_checkpoint
from imgclf.engine.optim import lr_at
from imgclf.engine.plugins import PLUGINS, Plugin

FAST = ["model.spec=c16-p-c32-p-f64", "train.batch_size=64"]


class LearningRates(Plugin):
    """Records the learning rate at each batch end, and how many batches it has seen (its state)."""

    def __init__(self):
        self.lrs: list[float] = []
        self.batches = 0

    def on_batch_end(self, trainer, step, loss):
        self.lrs.append(trainer.lr)
        self.batches += 1

    def state_dict(self):
        return {"batches": self.batches}

    def load_state_dict(self, state):
        self.batches = state["batches"]


def test_a_plugin_written_in_a_test_file_sees_every_batch_and_is_checkpointed():
    rec = LearningRates()
    run = imgclf.train(None, FAST + ["train.epochs=2"], plugins=[rec], echo=False)
    cfg = run.config
    steps = math.ceil(1294 / 64)  # digits: 1,294 training images after the validation split
    assert len(rec.lrs) == 2 * steps
    expected = [lr_at(e + i / steps, 2, cfg.schedule, cfg.optim.lr) for e in range(2) for i in range(steps)]
    assert rec.lrs == pytest.approx(expected)  # the cosine schedule, step by step
    state = load_checkpoint(run.path / "last.pt")["trainer"]["plugins"]
    assert state["learning_rates"] == {"batches": 2 * steps}


def test_plugin_state_is_restored_on_resume_and_the_run_continues_exactly():
    o = FAST + ["data.augment.hflip=true", "schedule.name=exponential", "schedule.gamma=0.7",
                "train.early_stopping.enabled=true", "train.early_stopping.patience=50"]
    full = imgclf.train(None, o + ["train.epochs=3"], name="full", echo=False)
    imgclf.train(None, o + ["train.epochs=2"], name="part", plugins=[LearningRates()], echo=False)
    rec = LearningRates()
    resumed = imgclf.train(resume="part", overrides=["train.epochs=3"], plugins=[rec], echo=False)
    assert strip_time(resumed.history.to_dict("records")) == strip_time(full.history.to_dict("records"))
    steps = math.ceil(1294 / 64)
    assert rec.batches == 3 * steps  # 2 epochs' count from the checkpoint, then one more epoch
    es = load_checkpoint(resumed.path / "last.pt")["trainer"]["plugins"]["early_stopping"]
    assert es["best"] is not None  # the early-stopping plugin's state, under its own name


def test_the_trainer_names_no_plugin():
    import imgclf.engine.plugins as P

    source = (Path(imgclf.__file__).parent / "engine" / "trainer.py").read_text()
    classes = [c.__name__ for m in vars(P).values() if hasattr(m, "__file__") for c in vars(m).values()
               if isinstance(c, type) and issubclass(c, Plugin) and c is not Plugin]
    assert classes and not [c for c in classes if c in source]
    assert not [n for n in PLUGINS.names() if f'"{n}"' in source or f"'{n}'" in source]


def test_eval_at_start_measures_epoch_0_and_changes_nothing_else():
    plain = imgclf.train(None, FAST + ["train.epochs=2"], echo=False)
    seen = imgclf.train(None, FAST + ["train.epochs=2", "train.eval_at_start=true"], echo=False)
    initial = seen.metrics["initial"]
    assert initial["epoch"] == 0 and 1.5 < initial["val_loss"] < 3.5 and 0 <= initial["val_acc"] < 0.4  # near chance
    assert list(plain.history["train_loss"]) == list(seen.history["train_loss"])  # the run itself is the same


def test_test_top5_is_shown_only_above_five_classes(tmp_path):
    from conftest import make_image_folder

    folder = make_image_folder(tmp_path / "img", classes=("a", "b", "c"), per_class=6)
    run = imgclf.train(None, ["data.name=folder", f"data.path={folder}", "data.image_size=8", "train.epochs=1",
                              "model.spec=c8-p-f16"], echo=False)
    test_line = [x for x in (run.path / "train.log").read_text().splitlines() if x.startswith("test loss")][0]
    assert "top-1" in test_line and "top-5" not in test_line
    ten = imgclf.train(None, FAST + ["train.epochs=1"], echo=False)
    assert "top-5" in (ten.path / "train.log").read_text()
