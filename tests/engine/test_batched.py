"""Many MLPs trained as one computation equal the same MLPs trained one by one."""
import math

import pytest
import torch
import yaml
from conftest import f32_rtol

from imgclf.api import fit_in_memory, prepare_data
from imgclf.config.load import load_config
from imgclf.engine.batched import train_cohort
from imgclf.sweeps.analysis import load_sweep_study, sweep_results
from imgclf.sweeps.cohorts import cohort_key
from imgclf.sweeps.runner import run_sweep

BASE = ["model.name=mlp", "train.epochs=3", "train.batch_size=32", "optim.weight_decay=0", "schedule.name=none",
        "optim.momentum=0"]


def test_cohort_key_groups_what_can_share_a_computation():
    a = load_config(None, BASE + ["optim.lr=0.1", "model.hidden=[16]"])
    b = load_config(None, BASE + ["optim.lr=0.01", "model.hidden=[64]", "train.epochs=9", "optim.momentum=0.5"])
    assert cohort_key(a) == cohort_key(b) is not None
    assert cohort_key(load_config(None, BASE + ["train.batch_size=8"])) != cohort_key(a)
    assert cohort_key(load_config(None, BASE + ["train.seed=3"])) != cohort_key(a)
    # what this engine cannot train: another schedule, depth, augmentation, optimizer, dropout, plugin, precision
    for other in (["schedule.name=cosine"], ["model.hidden=[8,8]"], ["data.augment.hflip=true"], ["data.augment.trivial=0.5"],
                  ["optim.name=adam"], ["model.dropout=0.1"], ["train.early_stopping.enabled=true"],
                  ["train.precision=bf16"], ["train.compile=true"]):
        assert cohort_key(load_config(None, BASE + other)) is None


def test_a_cohort_applies_each_configs_parameter_budget():
    cfgs = [load_config(None, BASE + ["model.hidden=[16]", "train.max_params=2000"]),  # 1,210 parameters
            load_config(None, BASE + ["model.hidden=[64]", "train.max_params=2000"])]  # 4,810: over
    assert cohort_key(cfgs[0]) == cohort_key(cfgs[1]) is not None
    histories, failed, _ = train_cohort(cfgs, prepare_data(cfgs[0]), torch.device("cpu"))
    assert failed[0] is None and len(histories[0]) == 3
    assert "4,810" in failed[1] and "train.max_params" in failed[1] and histories[1] == []


@pytest.mark.parametrize("model, extra", [
    ("mlp", [["optim.lr=0.1", "model.hidden=[16]"],
             ["optim.lr=0.05", "model.hidden=[32]", "optim.momentum=0.9", "optim.weight_decay=1e-3"],
             ["optim.lr=0.02", "model.hidden=[8]", "train.epochs=2", "train.label_smoothing=0.1"]]),
    ("mlp", [["optim.lr=0.1", "model.hidden=[16]"], ["optim.lr=0.03", "model.hidden=[24]"]]),  # the fused path
    ("perceptron", [["optim.lr=0.1"], ["optim.lr=0.01", "optim.momentum=0.9"]]),
    ("mlp-exp", [["optim.lr=0.1", "model.hidden=[16]"], ["optim.lr=0.2", "model.hidden=[16]"]]),
])
def test_batched_equals_one_by_one(model, extra):
    base = BASE + (["schedule.name=exponential", "schedule.gamma=0.5"] if model == "mlp-exp" else [])
    name = "perceptron" if model == "perceptron" else "mlp"
    if any("label_smoothing" in e for x in extra for e in x):
        base = base + ["train.label_smoothing=0.1"]
        extra = [[e for e in x if "label_smoothing" not in e] for x in extra]
    cfgs = [load_config(None, base + [f"model.name={name}"] + e) for e in extra]
    assert len({cohort_key(c) for c in cfgs}) == 1
    splits = prepare_data(cfgs[0])
    histories, failed, st = train_cohort(cfgs, splits, torch.device("cpu"))
    assert failed == [None] * len(cfgs)
    for k, cfg in enumerate(cfgs):
        trainer = fit_in_memory(cfg, splits=splits)
        assert len(histories[k]) == cfg.train.epochs
        # the same arithmetic in another order (stacked products, threads): float32's bound
        tol = f32_rtol(cfg.train.epochs * trainer.steps, splits.train.x[0].numel())
        for a, b in zip(trainer.history, histories[k]):
            for key in ("train_loss", "val_loss", "lr"):
                assert math.isclose(a[key], b[key], rel_tol=tol, abs_tol=1e-6), (k, key, a[key], b[key], tol)
            for key in ("train_acc", "val_acc"):
                assert abs(a[key] - b[key]) <= 2 / 1000, (k, key)
        if cfg.train.epochs == max(c.train.epochs for c in cfgs):  # weights of models that ran to the end
            lins = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear)]
            w1, b1, w2, b2 = st.model_weights(k)
            for mine, theirs in ((w2, lins[-1].weight.t()), (b2, lins[-1].bias)) + (
                    ((w1, lins[0].weight.t()), (b1, lins[0].bias)) if st.hidden else ()):
                assert torch.allclose(mine, theirs.detach(), rtol=tol, atol=tol * float(theirs.detach().abs().max()))


@pytest.mark.parametrize("poison", ["nan", "inf"])
@pytest.mark.parametrize("plain", [True, False])
def test_a_diverged_model_does_not_leak_into_the_others(poison, plain):
    from imgclf.engine.batched import PlainStackedMLP, StackedMLP
    from imgclf.models import build_model

    torch.manual_seed(0)
    models = [build_model("mlp", {"hidden": [h]}, (1, 8, 8), 10) for h in (6, 5)]
    cpu = torch.device("cpu")
    make = (lambda: PlainStackedMLP(models, [0.1, 0.1], cpu)) if plain else (
        lambda: StackedMLP(models, [0.1, 0.1], [0.0, 0.0], [0.0, 0.0], cpu))
    clean, bad = make(), make()
    bad.w1[:64, 6:11] = float(poison)  # model 1's first layer blows up
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 64, generator=g)
    t = torch.nn.functional.one_hot(torch.randint(0, 10, (80,), generator=g), 10).float()[:, None]
    for st in (clean, bad):
        if plain:  # five batches of 16 through the chunked epoch loop
            st.set_lr_scale(torch.ones(2), 16)
            st.run_epoch(torch.cat([x, torch.ones(80, 1)], 1), t, torch.empty(80, 20), 16, torch.ones(2))
        else:
            for i in range(0, 80, 16):
                st.step(x[i:i + 16], t[i:i + 16])
    for a, b in zip(clean.model_weights(0), bad.model_weights(0)):
        assert torch.equal(a, b)
    assert bad.finite().tolist() == [True, False] and clean.finite().tolist() == [True, True]
    bad.freeze(1)
    assert bad.finite().tolist() == [True, True]


def test_sweep_batches_a_cohort_and_reads_each_epoch_count(tmp_path):
    space = {"optim.lr": [0.1, 0.02], "model.hidden.0": [8, 24], "train.epochs": [1, 3]}
    base = {"model": {"name": "mlp", "hidden": [16]}, "schedule": {"name": "none"},
            "optim": {"momentum": 0.0, "weight_decay": 0.0}, "train": {"batch_size": 64}}
    for name, batched in (("together", True), ("alone", False)):
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump({"base": base, "space": space}))
        run_sweep(p, batched=batched)
    # 8 configurations, 4 models: each pair that differs only in epochs shares one, read at 1 and 3 epochs
    assert [t.user_attrs.get("batched") for t in load_sweep_study("together")[1].trials] == [4] * 8
    assert all("batched" not in t.user_attrs for t in load_sweep_study("alone")[1].trials)
    a = sweep_results("together").sort_values(["optim.lr", "model.hidden.0", "train.epochs"])
    b = sweep_results("alone").sort_values(["optim.lr", "model.hidden.0", "train.epochs"])
    assert (a["status"] == "complete").all() and len(a) == 8
    assert a["val_acc"].round(3).tolist() == b["val_acc"].round(3).tolist()
    assert (a["epochs"] == a["train.epochs"]).all()
