"""Contract tests generated from the registries: every registered model, data set, augmentation,
optimizer, schedule, test-time augmentation and plugin gets the same checks, with no test
written for it by hand (as timm tests every model in list_models())."""
import copy
import dataclasses
import math
import typing

import pytest
import torch
from conftest import make_cifar, make_idx_dir, make_image_folder

from imgclf.config.load import load_config
from imgclf.config.schema import AugmentConfig
from imgclf.data import DATASETS, load_raw
from imgclf.data import augment as A
from imgclf.data.loader import Transform
from imgclf.engine.optim import OPTIMIZERS, SCHEDULES, build_optimizer, lr_at, set_lr
from imgclf.engine.plugins import PLUGINS, Context, Plugin
from imgclf.evaluation.evaluate import TTA, tta_views
from imgclf.models import MODELS, build_model
from imgclf.models.sizing import known_shape
from imgclf.models.summary import summarize


# -- models ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
def test_every_model_trains_is_seeded_and_saves(name, shape, tmp_path):
    side = max(shape[1], MODELS.attr(name, "min_side", 1))  # the smallest image the model declares it takes
    shape = (shape[0], side, side)
    torch.manual_seed(0)
    m = build_model(name, {}, shape, 7)
    torch.manual_seed(0)
    twin = build_model(name, {}, shape, 7)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), twin.state_dict().values()))  # seeded
    assert {p.device.type for p in m.parameters()} == {"cpu"}  # builders never pick a device
    x = torch.randn(2, *shape)
    out = m(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    torch.save(m.state_dict(), tmp_path / "m.pt")
    m2 = build_model(name, {}, shape, 7)
    m2.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    m.eval(), m2.eval()
    assert torch.allclose(m(x), m2(x))
    s = summarize(m, shape)
    assert s.trainable_params == sum(p.numel() for p in m.parameters() if p.requires_grad)


# -- data sets ------------------------------------------------------------------------------------
def _source(name: str, root) -> list[str]:
    """Overrides that point data set `name` at a tiny copy in its official format."""
    if name == "digits":
        return []
    if name in ("mnist", "fashion-mnist"):
        return [f"data.data_dir={make_idx_dir(root / name)}", "data.download=false"]
    if name in ("cifar10", "cifar100"):
        make_cifar(root / name, name, per_batch=4)
        return [f"data.data_dir={root / name}", "data.download=false"]
    if name == "folder":
        return [f"data.path={make_image_folder(root / name)}", "data.image_size=20"]
    raise AssertionError(f"data set {name!r} has no tiny source in this test: add one to _source")


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_data_set_decodes_to_its_declared_shape_and_classes(name, tmp_path):
    cfg = load_config(None, [f"data.name={name}", *_source(name, tmp_path)]).data
    shape, classes = known_shape(cfg)  # what the preflight builds the model on, before any decoding
    raw = load_raw(cfg)
    assert raw.train_x.dtype == torch.uint8 and tuple(raw.train_x.shape[1:]) == shape
    assert raw.train_y.dtype == torch.int64 and len(raw.train_y) == len(raw.train_x)
    assert classes is None or len(raw.classes) == classes
    assert 0 <= int(raw.train_y.min()) and int(raw.train_y.max()) < len(raw.classes)
    if raw.test_x is not None:
        assert tuple(raw.test_x.shape[1:]) == shape and len(raw.test_y) == len(raw.test_x)


# -- augmentations --------------------------------------------------------------------------------
def _on(field: str):
    """A setting that turns augmentation `field` on for 8x8 images, from its declared type."""
    base = typing.get_args(typing.get_type_hints(AugmentConfig, include_extras=True)[field])
    kind = base[0] if base else typing.get_type_hints(AugmentConfig)[field]
    kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)  # Optional[X] -> X
    kind = typing.get_args(kind)[0] if typing.get_args(kind) else kind  # Annotated[X, ...] -> X
    return {bool: True, int: 6 if field == "crop_size" else 2, float: 0.3}[kind]


@pytest.mark.parametrize("name", A.AUGMENTATIONS.names())
def test_every_augmentation_is_batched_and_reproducible(name):
    aug = dataclasses.replace(AugmentConfig(), **{name: _on(name)})
    x = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    t = Transform(aug, "dataset", torch.full((3,), 0.5), torch.full((3,), 0.25))
    a, b = (t.train(x, torch.Generator().manual_seed(1)) for _ in range(2))
    c = t.train(x, torch.Generator().manual_seed(2))
    side = aug.crop_size or 8
    assert a.shape == (32, 3, side, side) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)  # seeded, and random
    assert not torch.equal(a, t.eval(x))  # it changes the training view
    assert t.eval(x).shape == (32, 3, side, side)


# -- optimizers -----------------------------------------------------------------------------------
def _problem():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3))
    x, y = torch.randn(16, 1, 6, 6), torch.arange(16) % 3
    return model, x, y


def _steps(model, opt, x, y, n):
    for _ in range(n):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(x), y))


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_learns_is_seeded_and_resumes(name):
    cfg = load_config(None, [f"optim.name={name}", "optim.lr=0.01", "optim.weight_decay=0"]).optim
    model, x, y = _problem()
    opt = build_optimizer(model, cfg)
    start = _steps(model, opt, x, y, 0)
    assert _steps(model, opt, x, y, 20) < start  # it learns
    again, _, _ = _problem()
    assert _steps(again, build_optimizer(again, cfg), x, y, 20) == _steps(model, opt, x, y, 0)  # seeded
    # save after 3 steps, resume in a fresh model and optimizer: the same weights 2 steps later
    a, _, _ = _problem()
    opt_a = build_optimizer(a, cfg)
    _steps(a, opt_a, x, y, 3)
    saved = copy.deepcopy((a.state_dict(), opt_a.state_dict()))  # state dicts share the live tensors
    _steps(a, opt_a, x, y, 2)
    b, _, _ = _problem()
    opt_b = build_optimizer(b, cfg)
    b.load_state_dict(saved[0])
    opt_b.load_state_dict(saved[1])
    _steps(b, opt_b, x, y, 2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    set_lr(opt_b, 0.5)
    assert all(g["lr"] == 0.5 * g.get("lr_scale", 1.0) for g in opt_b.param_groups)


def test_nesterov_is_refused_where_the_registry_says_the_optimizer_has_none():
    for name in OPTIMIZERS.names():
        overrides = [f"optim.name={name}", "optim.nesterov=true", "optim.momentum=0.9"]
        if OPTIMIZERS.attr(name, "nesterov"):
            load_config(None, overrides)
        else:
            with pytest.raises(Exception, match="optim.nesterov"):
                load_config(None, overrides)


# -- schedules ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_is_finite_and_reads_the_total_only_if_time_driven(name):
    s = load_config(None, [f"schedule.name={name}"]).schedule
    timed = SCHEDULES.attr(name, "time_driven")
    assert isinstance(timed, bool)  # every schedule says whether a time budget can drive it
    ts = [0, 0.5, 1, 3, 7.5, 10]
    assert all(math.isfinite(lr_at(t, 10, s, 0.1)) and lr_at(t, 10, s, 0.1) >= 0 for t in ts)
    if timed:  # a function of the share done: a budget's seconds can stand in for epochs
        assert all(math.isclose(lr_at(t, 10, s, 0.1), lr_at(3 * t, 30, s, 0.1)) for t in ts)
    else:  # counts epochs: the total never matters
        assert all(lr_at(t, 10, s, 0.1) == lr_at(t, 40, s, 0.1) for t in ts)


# -- test-time augmentation -----------------------------------------------------------------------
@pytest.mark.parametrize("name", TTA.names())
def test_every_tta_mode_gives_as_many_views_as_it_declares(name):
    x = torch.randn(3, 2, 5, 6)
    views = tta_views(x, name)
    assert len(views) == TTA.attr(name, "views") and all(v.shape == x.shape for v in views)
    assert torch.equal(views[0], x)


# -- plugins --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PLUGINS.names())
def test_every_plugin_is_named_ordered_and_saves_its_state(name, tmp_path):
    from imgclf.run.build import prepare_data

    on = ["train.time_budget=60", "train.early_stopping.enabled=true", "data.augment.trivial=0.5",
          "data.augment.early_crop=6", "data.augment.crop_padding=1", "train.tensorboard=true",
          "model.strategy=two-phase", "train.eval_at_start=true", "train.test_each_epoch=true"]  # every plugin
    # ...but one: the linear probe is a strategy of its own, without augmentation
    probe = ["model.name=resnet18", "model.pretrained=w.pth", "model.strategy=linear-probe"]
    cfg = load_config(None, probe if name == "linear_probe" else on)
    plugin = PLUGINS.get(name)(Context(cfg, prepare_data(cfg), tmp_path, lambda m: None))
    assert isinstance(plugin, Plugin) and plugin.name == name and isinstance(plugin.order, int)
    state = plugin.state_dict()
    assert isinstance(state, dict)
    plugin.load_state_dict(state)
    torch.save(state, tmp_path / "s.pt")  # what a checkpoint holds loads with weights_only
    assert torch.load(tmp_path / "s.pt", weights_only=True) == state
