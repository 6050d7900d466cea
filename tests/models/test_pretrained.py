"""Transfer learning: weights from a file, torch's cache or a run; the first conv adapted; freezing."""
import pytest
import torch

import imgclf
from imgclf.cli.main import main
from imgclf.core.errors import ConfigError
from imgclf.engine.checkpoint import load_checkpoint
from imgclf.models import MODELS, build_model

FAST = ["model.name=resnet18", "model.small_input=true", "train.epochs=1", "train.batch_size=128",
        "data.max_train=256", "data.max_test=64"]


@pytest.fixture
def tv_weights(tmp_path):
    """A torchvision ResNet-18 state_dict with known values, saved as torchvision ships them."""
    from torchvision.models import resnet18

    torch.manual_seed(123)
    state = resnet18(num_classes=1000).state_dict()
    torch.save(state, tmp_path / "r18.pth")
    return state, tmp_path / "r18.pth"


def test_a_state_dict_file_loads_with_the_first_conv_summed_for_one_channel(tv_weights, tmp_path):
    state, path = tv_weights
    run = imgclf.train(None, ["model.name=resnet18", f"model.pretrained={path}", "train.epochs=1",
                              "train.batch_size=128", "optim.lr=1e-9", "schedule.name=none", "optim.momentum=0",
                              "optim.weight_decay=0"], name="t", echo=False)
    w = load_checkpoint(run.path / "last.pt")["model"]
    assert torch.allclose(w["conv1.weight"], state["conv1.weight"].sum(1, keepdim=True), atol=1e-6)
    assert w["fc.weight"].shape == (10, 512)  # a new head for the data's 10 classes
    assert torch.allclose(w["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"], atol=1e-6)
    cfg = run.config
    import hashlib

    assert cfg.model.pretrained_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # which weights it was


def test_n_channels_repeat_and_rescale():
    from imgclf.models.pretrained import adapt_first_conv

    w = torch.randn(4, 3, 3, 3)
    five = adapt_first_conv(w, 5)
    assert five.shape == (4, 5, 3, 3) and torch.allclose(five[:, 3], w[:, 0] * 3 / 5)
    assert torch.allclose(five.sum(1), w.sum(1) * 3 / 5 + (w[:, 0] + w[:, 1]) * 3 / 5)


def test_imagenet_weights_come_from_torchs_cache_or_one_line_offline(tv_weights, tmp_path, monkeypatch, capsys):
    from imgclf.models.pretrained import imagenet_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path, url = imagenet_file("resnet18")
    assert str(path).startswith(str(tmp_path / "torch")) and path.name == "resnet18-f37072fd.pth"
    code = main(["train", "--set", "model.name=resnet18", "--set", "model.pretrained=imagenet",
                 "--set", "data.download=false"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(path) in err and url in err
    path.parent.mkdir(parents=True)
    path.write_bytes(tv_weights[1].read_bytes())  # in the cache: it loads, no network
    run = imgclf.train(None, FAST + ["model.pretrained=imagenet"], echo=False)
    assert run.config.model.pretrained_sha256
    # ImageNet weights normalize with ImageNet's statistics (a gray image: the mean of the RGB ones)...
    state = load_checkpoint(run.path / "last.pt")
    assert run.config.data.normalization == "weights"
    assert state["mean"] == pytest.approx([(0.485 + 0.456 + 0.406) / 3]) and state["std"] == pytest.approx([0.226])
    # ...unless the config says otherwise
    own = imgclf.train(None, FAST + ["model.pretrained=imagenet", "data.normalization=dataset"], echo=False)
    assert load_checkpoint(own.path / "last.pt")["mean"] != state["mean"]
    with pytest.raises(ConfigError, match="data.normalization=weights uses the pretrained"):
        imgclf.load_config(None, ["data.normalization=weights"])


def test_a_run_pretrains_another(tmp_path):
    src = imgclf.train(None, FAST, name="src", echo=False)
    dst = imgclf.train(None, FAST + [f"model.pretrained={src.path}", "data.max_train=128"], name="dst",
                       echo=False)
    a, b = (load_checkpoint(r.path / "best.pt")["model"] for r in (src, dst))
    assert not torch.equal(a["layer1.0.conv1.weight"], b["layer1.0.conv1.weight"])  # trained on from there
    assert dst.config.model.pretrained_sha256  # the weights it started from are recorded


@pytest.mark.parametrize("policy", ["frozen", "batch", "train"])
def test_freeze_trains_only_what_it_names_and_each_bn_policy_does_what_it_says(tv_weights, policy):
    _, path = tv_weights
    run = imgclf.train(None, FAST + [f"model.pretrained={path}", "model.strategy=freeze",
                                     "model.trainable=layer4,fc", f"model.frozen_bn={policy}"], echo=False)
    before = load_checkpoint(run.path / "last.pt")["model"]
    more = imgclf.train(resume=run.path, overrides=["train.epochs=2"], echo=False)
    after = load_checkpoint(more.path / "last.pt")["model"]
    assert not torch.equal(before["layer4.1.conv2.weight"], after["layer4.1.conv2.weight"])  # trains
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])  # frozen: bit-identical
    stats_fixed = torch.equal(before["layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])
    affine_fixed = torch.equal(before["layer1.0.bn1.weight"], after["layer1.0.bn1.weight"])
    assert stats_fixed == (policy != "train") and affine_fixed == (policy != "train")
    assert torch.equal(before["layer4.0.bn1.weight"], after["layer4.0.bn1.weight"]) is False  # layer4's BN trains


def test_bad_transfer_settings_are_one_line_before_any_data():
    for overrides, words in ((["model.strategy=freeze"], "needs model.trainable"),
                             (["model.strategy=freeze", "model.trainable=layer9"], "layer9 names no parameter"),
                             (["model.pretrained=/nowhere.pth"], "/nowhere.pth not found"),
                             (["model.pretrained=imagenet", "model.strategy=scratch"], "drop model.pretrained")):
        with pytest.raises(ConfigError, match=words):
            imgclf.train(None, ["model.name=resnet18", "data.name=cifar10", "data.data_dir=/nowhere",
                                "data.download=false", *overrides], echo=False)


def test_every_backbone_is_registered_with_its_input_adapted():
    backbones = MODELS.names(backbone=True)
    assert {"resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny",
            "regnet_y_400mf"} <= set(backbones)
    for name in backbones:
        m = build_model(name, {}, (1, 32, 32), 7)
        assert m(torch.zeros(2, 1, 32, 32)).shape == (2, 7)
        full = build_model(name, {}, (3, 224, 224), 1000)  # the count `imgclf models` shows
        assert sum(p.numel() for p in full.parameters()) == MODELS.attr(name, "params")


def test_per_group_rates_follow_the_schedule_and_are_tabled(tv_weights):
    from imgclf.engine.optim import build_optimizer, set_lr

    cfg = imgclf.load_config(None, ["model.name=resnet18", "optim.lr=0.1", "optim.lr_scales={fc: 10, conv1: 0.1}",
                                    "optim.layer_decay=0.5"])
    model = build_model("resnet18", {}, (3, 32, 32), 10)
    opt = build_optimizer(model, cfg.optim)
    rate = {n: g["lr"] for g in opt.param_groups for n in g["names"]}
    assert rate["fc.weight"] == pytest.approx(1.0)  # x10, the last layer: no decay
    assert rate["layer4.0.conv1.weight"] == pytest.approx(0.1 * 0.5)  # one layer before fc (pools have no parameters)
    assert rate["conv1.weight"] == pytest.approx(0.1 * 0.1 * 0.5 ** 6)
    set_lr(opt, 0.01)  # any schedule sets the base rate; each group keeps its factor
    assert {n: g["lr"] for g in opt.param_groups for n in g["names"]}["fc.weight"] == pytest.approx(0.1)
    _, path = tv_weights
    run = imgclf.train(None, FAST + [f"model.pretrained={path}", "model.strategy=freeze", "model.trainable=layer4,fc",
                                     "optim.lr_scales={fc: 10}"], echo=False)
    groups = load_checkpoint(run.path / "last.pt")["optimizer"]["param_groups"]
    scale = {n.split(".")[0]: g["lr_scale"] for g in groups for n in g["names"]}
    assert scale == {"layer4": 1.0, "fc": 10.0}  # only what trains is in a group, each at its rate


def test_two_phase_trains_the_head_alone_then_every_layer(tv_weights):
    state, path = tv_weights
    o = FAST + [f"model.pretrained={path}", "model.strategy=two-phase", "model.head_epochs=1", "optim.weight_decay=1e-3"]
    one = imgclf.train(None, o, name="one", echo=False)
    w = load_checkpoint(one.path / "last.pt")["model"]
    assert torch.equal(w["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])  # phase 1: the body untouched
    assert not torch.equal(w["fc.weight"][:, :4], w["fc.weight"][:, 4:8])  # the head trained (fresh, 10 classes)
    two = imgclf.train(resume="one", overrides=["train.epochs=2"], echo=False)
    w2 = load_checkpoint(two.path / "last.pt")["model"]
    assert not torch.equal(w2["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])  # phase 2: every layer


def test_the_linear_probe_trains_the_head_on_features_computed_once(tv_weights):
    state, path = tv_weights
    run = imgclf.train(None, FAST + [f"model.pretrained={path}", "model.strategy=linear-probe", "train.epochs=3",
                                     "optim.name=adam", "optim.lr=0.01"], echo=False)
    w = load_checkpoint(run.path / "best.pt")["model"]
    for k in ("layer1.0.conv1.weight", "layer4.1.bn2.running_mean", "layer2.0.bn1.weight"):
        assert torch.equal(w[k], state[k])  # the body: bit-identical
    hist = list(run.history["train_loss"])
    assert hist[-1] < hist[0]  # the head learns from the cached features
    m = run.metrics
    assert m["probe_feature_seconds"] > 0 and m["test"]["n"] == 64  # tested by the whole network on images
    # the test score is the kept head on the full network: evaluate reproduces it from the files alone
    assert imgclf.evaluate(run.path)["top1"] == pytest.approx(m["test"]["top1"])
    for bad, words in ((["model.pretrained=none"], "set model.pretrained"),
                       (["data.augment.hflip=true"], "drop data.augment.hflip")):
        with pytest.raises(ConfigError, match=words):
            imgclf.load_config(None, ["model.name=resnet18", f"model.pretrained={path}",
                                      "model.strategy=linear-probe", *bad])


@pytest.mark.parametrize("strategy", ["freeze", "linear-probe", "two-phase"])
def test_the_strategies_run_on_an_image_folder(tv_weights, tmp_path, strategy):
    from conftest import make_image_folder

    _, path = tv_weights
    folder = make_image_folder(tmp_path / "img", classes=("a", "b", "c"), per_class=6)
    extra = ["model.trainable=layer4,fc"] if strategy == "freeze" else []
    run = imgclf.train(None, ["data.name=folder", f"data.path={folder}", "data.image_size=16", "data.channels=3",
                              "model.name=resnet18", "model.small_input=true", f"model.pretrained={path}",
                              f"model.strategy={strategy}", "train.epochs=2", "train.batch_size=8", *extra],
                       echo=False)
    assert run.metrics["test"]["n"] == 18 and run.metrics["classes"] == ["a", "b", "c"]
