"""Dynamic data pruning (train.prune_data): the plan, the loader's subsets, and training with it."""
import pytest
import torch

import imgclf
from conftest import strip_time
from imgclf.config import load_config
from imgclf.data.loader import Transform, batches
from imgclf.data.splits import Split
from imgclf.engine.checkpoint import load_checkpoint
from imgclf.engine.pruning import LossPruner

# An epoch-count-free schedule, so that a 2-epoch run resumed to 4 matches a 4-epoch run.
FAST = ["model.spec=c16-p-c32-p-f64", "train.batch_size=64", "schedule.name=exponential", "schedule.gamma=0.8",
        "data.augment.crop_padding=1"]


def test_plan_skips_only_images_below_the_mean_loss_and_reweights_the_rest_of_them():
    p = LossPruner(10, 0.5, until=0.8, device=torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    subset, weights = p.plan(0.0, g)  # nothing seen yet: every image trains, at weight 1
    assert subset.tolist() == list(range(10)) and torch.equal(weights, torch.ones(10))
    p.update(torch.arange(10), torch.tensor([0.1] * 8 + [5.0, 5.0]))  # mean 1.08: eight well-learned
    kept = torch.zeros(10)
    for _ in range(400):
        subset, weights = p.plan(0.5, g)
        kept[subset] += 1
    assert kept[8:].tolist() == [400, 400]  # the hard ones always train
    assert ((kept[:8] > 150) & (kept[:8] < 250)).all()  # the easy ones half the time
    assert weights.tolist() == [2.0] * 8 + [1.0, 1.0]  # 1 / (1 - 0.5): the expected gradient is unchanged
    assert p.plan(0.8, g) is None  # from `until` on, all images train


def test_batches_of_a_subset_carry_their_indices():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 4, 4).contiguous()
    split = Split(x, torch.arange(10))
    cfg = load_config(None, [])
    t = Transform(cfg.data.augment, "none", torch.zeros(1), torch.ones(1))
    got = list(batches(split, 2, t, torch.device("cpu"), train=True, generator=torch.Generator().manual_seed(0),
                       subset=torch.tensor([1, 3, 5, 7]), with_index=True))
    idx = torch.cat([b[2] for b in got])
    assert sorted(idx.tolist()) == [1, 3, 5, 7]
    assert torch.equal(torch.cat([b[1] for b in got]), idx)  # labels follow their images
    assert torch.equal(torch.cat([b[0][:, 0, 0, 0] for b in got]) * 255, idx.float())


def test_pruned_training_skips_images_learns_and_resumes_exactly():
    o = FAST + ["train.prune_data=0.5", "train.prune_data_until=0.75"]
    full = imgclf.train(None, o + ["train.epochs=4"], name="full", echo=False)
    h = full.history
    n = h["images"].iloc[0]
    assert h["images"].iloc[1] < 0.9 * n and h["images"].iloc[2] < 0.9 * n  # epochs 2 and 3 skip easy images
    assert h["images"].iloc[3] == n  # the last quarter trains on all of them
    assert full.metrics["test"]["top1"] > 0.6  # chance is 0.10; the same run without pruning: 0.72
    imgclf.train(None, o + ["train.epochs=2"], name="part", echo=False)
    resumed = imgclf.train(resume="part", overrides=["train.epochs=4"], echo=False)
    assert strip_time(resumed.history.to_dict("records")) == strip_time(h.to_dict("records"))
    assert load_checkpoint(resumed.path / "last.pt")["trainer"]["pruner"]["scores"].isfinite().all()
    with pytest.raises(imgclf.ImgclfError, match="train.prune_data"):
        imgclf.train(None, FAST + ["train.prune_data=1.0"], echo=False)
