"""The Muon optimizer: orthogonalized filter steps, SGD for the rest, in real runs."""
import math

import pytest
import torch

import imgclf
from imgclf.config.load import load_config
from imgclf.engine.checkpoint import load_checkpoint
from imgclf.engine.muon import Muon, orthogonalize
from imgclf.engine.optim import build_optimizer, set_lr
from imgclf.models import build_model


@pytest.mark.parametrize("shape", [(48, 216), (216, 48), (80, 720)])
def test_orthogonalize_evens_out_the_singular_values(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    g[:, 0] *= 30  # one direction far stronger than the others
    o = orthogonalize(g)
    assert o.shape == g.shape
    s = torch.linalg.svdvals(o)
    assert s.min() > 0.6 and s.max() < 1.25, s  # the raw matrix's spread was over 30x
    assert torch.trace(g.T @ o) > 0  # still a descent direction


def test_muon_steps_filters_on_a_fixed_norm_and_the_rest_like_nesterov_sgd():
    torch.manual_seed(0)
    conv, lin = torch.randn(8, 4, 3, 3), torch.randn(10, 8)
    cp, lp = conv.clone().requires_grad_(), lin.clone().requires_grad_()
    opt = Muon([{"params": [lp], "weight_decay": 0.01}, {"params": [cp], "muon": True, "lr": 0.2}],
               lr=0.1, momentum=0.9, muon_momentum=0.6)
    ref_p = lin.clone().requires_grad_()
    ref = torch.optim.SGD([ref_p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    for i in range(3):
        gc, gl = torch.randn_like(conv), torch.randn_like(lin)
        before = cp.detach().clone()
        cp.grad, lp.grad, ref_p.grad = gc, gl.clone(), gl.clone()
        opt.step()
        ref.step()
        if i == 0:  # buffer = g, Nesterov step along g + 0.6 g: same direction as g
            expect = before * math.sqrt(8) / before.norm() - 0.2 * orthogonalize(gc.reshape(8, -1)).view_as(gc)
            assert torch.allclose(cp, expect, atol=1e-5)
    assert torch.allclose(lp, ref_p, atol=1e-6)  # the SGD group matches torch's Nesterov SGD
    # Rescaled before each step, the filters' norm stays near sqrt(out channels) = 2.83.
    assert abs(cp.detach().norm() - math.sqrt(8)) < 0.3 * math.sqrt(8)


def test_build_muon_gives_filters_their_own_rate_and_no_weight_decay():
    cfg = load_config(None, ["optim.name=muon", "optim.lr=0.5", "optim.muon_lr=0.2", "optim.nesterov=true",
                             "optim.weight_decay=1e-3"])
    model = build_model("conv-groups", {"widths": [8, 16]}, (1, 8, 8), 10)
    opt = build_optimizer(model, cfg.optim)
    muon = [g for g in opt.param_groups if g["muon"]]
    assert len(muon) == 1 and {p.ndim for p in muon[0]["params"]} == {4} and muon[0]["weight_decay"] == 0
    assert len(muon[0]["params"]) == 5  # the stem and two convs in each of the two groups
    decayed = [p for g in opt.param_groups if not g["muon"] and g["weight_decay"] == 1e-3 for p in g["params"]]
    assert [p.shape for p in decayed] == [model[-1].weight.shape]  # the classifier's weights
    set_lr(opt, 0.25)  # half the peak: both rates follow the schedule
    assert math.isclose(muon[0]["lr"], 0.1) and all(g["lr"] == 0.25 for g in opt.param_groups if not g["muon"])


def test_muon_trains_and_resumes_exactly():
    o = ["model.name=conv-groups", "model.widths=[8,16]", "model.dirac=true", "train.batch_size=64",
         "optim.name=muon", "optim.nesterov=true", "optim.lr=0.2", "schedule.name=exponential",
         "schedule.gamma=0.7"]
    full = imgclf.train(None, o + ["train.epochs=4"], name="muon-full", echo=False)
    assert full.metrics["test"]["top1"] > 0.6  # 8x8 digits, chance is 0.10
    assert full.history["train_loss"].iloc[-1] < full.history["train_loss"].iloc[0]
    imgclf.train(None, o + ["train.epochs=2"], name="muon-part", echo=False)
    resumed = imgclf.train(resume="muon-part", overrides=["train.epochs=4"], echo=False)
    a, b = load_checkpoint(full.path / "last.pt"), load_checkpoint(resumed.path / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # momentum buffers restored
    w = a["model"]["7.weight"]  # the first group's second conv (8 filters)
    assert abs(float(w.norm()) - math.sqrt(8)) < 0.5  # held near its fixed norm
    with pytest.raises(imgclf.ImgclfError, match="optim.muon_lr"):
        imgclf.train(None, o + ["optim.muon_lr=-1"], echo=False)


def test_muon_gives_tall_filters_rows_the_step_of_a_square_matrix():
    # depthwise filters (64, 1, 3, 3) flatten to a tall 64 x 9 matrix: orthogonalized, its
    # update has norm 3 (sqrt of 9 unit directions); scaled by sqrt(64 / 9) it gets norm 8 =
    # sqrt(rows), the norm of a square matrix's update: each filter moves as much as in a wide one
    torch.manual_seed(0)
    for shape in [(64, 1, 3, 3), (16, 8, 3, 3)]:
        p = torch.randn(*shape).requires_grad_()
        p.grad = torch.randn(*shape)
        before = p.detach().clone()
        opt = Muon([{"params": [p], "muon": True}], lr=0.1)
        opt.step()
        rescaled = before * math.sqrt(shape[0]) / before.norm()
        step = (rescaled - p.detach()).norm() / 0.1
        rows, cols = shape[0], math.prod(shape[1:])
        expected = math.sqrt(min(rows, cols)) * max(1.0, rows / cols) ** 0.5
        assert abs(step - expected) < 0.25 * expected, (shape, step, expected)
