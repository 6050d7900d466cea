"""One reader for checkpoints: any damaged or foreign file is one line naming it, never a traceback."""
import pytest
import torch

import imgclf
from imgclf.cli.main import main
from imgclf.engine.checkpoint import load_checkpoint

FAST = ["model.spec=c16-p-c32-p-f64", "train.batch_size=64", "train.epochs=1"]


@pytest.fixture
def run(tmp_path):
    return imgclf.train(None, FAST, name="r", echo=False)


def _foreign(path):
    torch.save({"model": {"conv.weight": torch.zeros(3, 3)}, "epoch": 4}, path)


def _other_shapes(path):
    state = torch.load(path, weights_only=True)
    state["model"] = {k: torch.zeros(2, *v.shape) for k, v in state["model"].items()}
    torch.save(state, path)


def _no_trainer(path):
    state = torch.load(path, weights_only=True)
    del state["trainer"]
    torch.save(state, path)


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_bytes(b""), ["is empty"]),
    (lambda p: p.write_bytes(p.read_bytes()[:200]), ["corrupt or unreadable"]),
    (lambda p: p.write_bytes(b"not a checkpoint at all"), ["corrupt or unreadable"]),
    (_foreign, ["version"]),
    (_other_shapes, ["does not match", "config.yaml", "is (2,"]),
    (_no_trainer, ["lacks the training state"]),
])
@pytest.mark.parametrize("which", ["last.pt", "best.pt"])
def test_damaged_checkpoints_are_one_line_for_resume_and_evaluate(run, damage, words, which, capsys):
    damage(run.path / which)
    for argv in (["train", "--resume", "r"], ["evaluate", "r"]):
        if argv[0] == "evaluate" and which == "last.pt":
            continue  # evaluation reads the kept weights only
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and which in err, err
        assert all(w in err for w in words), err


def test_a_checkpoint_that_fits_another_config_is_named_before_any_data_is_read(run, capsys):
    cfg = (run.path / "config.yaml").read_text().replace("c16-p-c32-p-f64", "c8-p-c8-p-f16")
    (run.path / "config.yaml").write_text(cfg)
    assert main(["train", "--resume", "r", "--set", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "does not match the model" in err and "was the config edited" in err
    assert load_checkpoint(run.path / "last.pt")["trainer"]["epoch"] == 1  # nothing was overwritten
