import pytest
import torch

from imgclf.core.errors import ConfigError
from imgclf.models import build_model
from imgclf.models.conv_groups import PatchWhitening, init_from_data
from imgclf.models.summary import format_summary, summarize

EXPECTED = {  # trainable parameters and mult-adds at 3x32x32, 10 classes (the seed reports' tables)
    "wide": (222_226, 13_131_728),
    "deep": (127_724, 2_689_740),
    "wide-deep": (253_638, 12_509_136),
    "wide-deep-bn": (253_846, 12_509_240),
    "wide-deep-dropout": (253_638, 12_509_136),
    "keras-small": (39_514, None),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_counts_are_exact(name):
    s = summarize(build_model(name, {}, (3, 32, 32), 10), (3, 32, 32))
    params, macs = EXPECTED[name]
    assert s.trainable_params == params
    if macs is not None:
        assert s.total_macs == macs
    text = format_summary(s)
    assert f"{params:,}" in text


def test_tp5x5_shapes():
    m = build_model("tp5x5", {}, (3, 32, 32), 10)
    assert [tuple(c.weight.shape) for c in m if isinstance(c, torch.nn.Conv2d)] == [(32, 3, 5, 5), (64, 32, 5, 5), (64, 64, 5, 5)]
    assert m.fc1.in_features == 1024 and m.fc1.out_features == 1000
    # a 28x28 crop: 28 -> 14 -> 7 -> 4, the last pool keeping the odd edge (report 001's ceil_mode=True)
    bn = build_model("tp5x5-bn", {}, (3, 28, 28), 10)
    assert bn.fc1.in_features == 64 * 4 * 4 == 1024
    assert bn(torch.zeros(2, 3, 28, 28)).shape == (2, 10)
    assert sum(isinstance(c, torch.nn.BatchNorm2d) for c in bn) == 3
    plain = build_model("cnn", {"spec": "c8-p-c8-p-c8-p-f10"}, (3, 28, 28), 10)  # p drops the odd edge
    assert plain.fc1.in_features == 8 * 3 * 3


def test_mlp_hidden_sizes():
    m = build_model("mlp", {"hidden": [1024, 10, 1024]}, (1, 28, 28), 10)
    lin = [c for c in m if isinstance(c, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in lin] == [(784, 1024), (1024, 10), (10, 1024), (1024, 10)]
    assert sum(p.numel() for p in build_model("perceptron", {}, (1, 28, 28), 10).parameters()) == 7850


def test_cnn_spec_options():
    m = build_model("cnn", {"spec": "c16-p-c16k5-p-f32", "batch_norm": True, "dropout": 0.5}, (3, 16, 16), 4)
    kinds = [type(c).__name__ for c in m]
    assert kinds.count("BatchNorm2d") == 2 and "Dropout" in kinds
    assert m.conv2.kernel_size == (5, 5) and m.conv2.padding == (2, 2)
    # batch norm sits between the conv and its ReLU
    assert kinds[:3] == ["Conv2d", "BatchNorm2d", "ReLU"]


@pytest.mark.parametrize("spec, words", [
    ("c64-x-f10", "bad token 'x'"),
    ("c64-p-p-p-p-p-p", "below 1x1"),
    ("f10-c3", "after a fully connected"),
    ("b-c3", "'b' must follow"),
    ("c0", "at least 1"),
])
def test_bad_specs(spec, words):
    with pytest.raises(ConfigError, match=words):
        build_model("cnn", {"spec": spec}, (3, 32, 32), 10)


def test_unknown_model_and_option():
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        build_model("vgg", {}, (3, 32, 32), 10)
    with pytest.raises(ConfigError, match="takes no options"):
        build_model("wide", {"spec": "c1"}, (3, 32, 32), 10)


def test_resnet18_adapts_channels_and_classes():
    m = build_model("resnet18", {}, (1, 64, 64), 5)
    assert m.conv1.in_channels == 1 and m.fc.out_features == 5
    s = build_model("resnet18", {"small_input": True}, (3, 32, 32), 10)
    assert s.conv1.stride == (1, 1) and isinstance(s.maxpool, torch.nn.Identity)
    assert sum(p.numel() for p in build_model("resnet18", {}, (3, 224, 224), 1000).parameters()) == 11_689_512


def test_resnet_cifar_is_resnet20_and_fits_the_budget_when_narrowed():
    """ResNet-20 (He et al. 2016): 0.27 M parameters, 41 M mult-adds; the 1-hour recipe's narrowing fits 256k."""
    s = summarize(build_model("resnet-cifar", {}, (3, 32, 32), 10), (3, 32, 32))
    assert s.trainable_params == 269_722 and s.total_macs == 40_551_728
    m = build_model("resnet-cifar", {"widths": [16, 32, 60]}, (3, 32, 32), 10)
    assert sum(p.numel() for p in m.parameters()) == 246_162
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) == 19  # + the linear layer: 20 weight layers
    deeper = build_model("resnet-cifar", {"blocks": 5}, (3, 32, 32), 10)  # ResNet-32
    assert sum(isinstance(c, torch.nn.Conv2d) for c in deeper.modules()) == 31
    # Each block starts as the identity: the residual branch's last BN scale is zero.
    assert all(float(b.bn2.weight.detach().abs().sum()) == 0 for b in m.modules() if hasattr(b, "bn2"))


def test_conv_groups_shape_and_budget():
    m = build_model("conv-groups", {}, (3, 32, 32), 10)
    s = summarize(m, (3, 32, 32))
    assert s.trainable_params == 249_598 and s.total_macs == 31_291_908
    # Each group pools once: 32 -> 16 -> 8 -> 4, then a global max-pool feeds the classifier.
    assert sum(isinstance(c, torch.nn.MaxPool2d) for c in m.modules()) == 3
    assert m[-1].in_features == 84
    assert build_model("conv-groups", {"widths": [8, 16]}, (1, 28, 28), 5)(torch.randn(2, 1, 28, 28)).shape == (2, 5)


def test_resnet_cifar_refuses_shrinking_widths():
    with pytest.raises(ConfigError, match="must not decrease"):
        build_model("resnet-cifar", {"widths": [32, 16]}, (3, 32, 32), 10)


def test_patch_whitening_decorrelates_the_patches_and_stays_frozen():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, 16, 16, generator=g)
    x = x + 0.8 * x.roll(1, 3) + 0.5 * x[:, :1]  # neighbouring pixels and the channels correlated
    m = build_model("conv-groups", {"whiten": True}, (3, 32, 32), 10)
    w = m[0]
    assert isinstance(w, PatchWhitening) and not w.weight.requires_grad
    assert init_from_data(m, x)
    y = torch.nn.functional.conv2d(x, w.weight)  # without the (trained) bias
    half = y[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    # Each 2x2x3 patch becomes 12 uncorrelated unit-variance responses (eps keeps them a hair below 1).
    assert torch.allclose(half.T @ half / len(half), torch.eye(12), atol=0.01)
    assert torch.equal(y[:, 12:], -y[:, :12])  # each filter paired with its negative for the GELU
    s = summarize(m, (3, 32, 32))
    assert s.trainable_params == 248_926 and s.total_params == 248_926 + 288  # the 24 x 3 x 2 x 2 filters are frozen
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match="model.stem"):
        build_model("conv-groups", {"whiten": True, "stem": 16}, (3, 32, 32), 10)
    with pytest.raises(ConfigError, match="whiten_bias_epochs=2 needs model.whiten"):
        build_model("conv-groups", {"whiten_bias_epochs": 2}, (3, 32, 32), 10)


def test_patch_whitening_bias_trains_for_its_epochs_and_then_needs_no_gradient():
    m = build_model("conv-groups", {"whiten": True, "whiten_bias_epochs": 2, "widths": [8]}, (3, 32, 32), 10)
    for epoch, trained in [(0, True), (1, True), (2, False), (5, False)]:
        m[0].set_epoch(epoch)
        assert m[0].bias.requires_grad is trained
    m(torch.randn(2, 3, 32, 32)).sum().backward()
    assert m[0].bias.grad is None and m[2].weight.grad is not None  # nothing upstream of the first conv
    always = build_model("conv-groups", {"whiten": True}, (3, 32, 32), 10)[0]
    always.set_epoch(100)
    assert always.bias.requires_grad


def test_conv_groups_dirac_init_passes_the_input_channels_through():
    m = build_model("conv-groups", {"whiten": True, "dirac": True, "widths": [32, 16]}, (3, 32, 32), 10)
    convs = [c for c in m.modules() if type(c) is torch.nn.Conv2d]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(24, 32), (32, 32), (32, 16), (16, 16)]
    x = torch.randn(2, 24, 9, 9)
    y = convs[0](x)
    assert torch.allclose(y[:, :24], x, atol=1e-6)  # the first 24 of 32 filters copy their input channel
    assert not torch.allclose(y[:, 24:], torch.zeros_like(y[:, 24:]))  # the other 8 stay random
    assert torch.allclose(convs[1](y), y, atol=1e-6)  # a w -> w conv starts as the identity
    assert torch.allclose(convs[2](y), y[:, :16], atol=1e-6)  # shrinking: keeps the first 16 channels
    plain = build_model("conv-groups", {"whiten": True, "widths": [32, 16]}, (3, 32, 32), 10)
    assert not torch.allclose([c for c in plain.modules() if type(c) is torch.nn.Conv2d][1](y), y)


def test_conv_groups_depth_puts_the_extra_convs_in_a_residual_branch():
    from imgclf.models.conv_groups import Residual
    m = build_model("conv-groups", {"whiten": True, "dirac": True, "depth": 3, "widths": [24, 64, 76]}, (3, 32, 32), 10)
    branches = [b for b in m if isinstance(b, Residual)]
    assert len(branches) == 3  # one per group, each of depth - 1 = 2 convs
    assert [sum(type(c) is torch.nn.Conv2d for c in b) for b in branches] == [2, 2, 2]
    s = summarize(m, (3, 32, 32))
    # whitening bias 24; per group: c->w conv, 2 w->w convs, 3 BNs (2w each); classifier 76*10+10
    convs = 24 * 24 * 9 + 2 * 24 * 24 * 9 + 24 * 64 * 9 + 2 * 64 * 64 * 9 + 64 * 76 * 9 + 2 * 76 * 76 * 9
    assert s.trainable_params == 24 + convs + 6 * (24 + 64 + 76) + 770 == 252_626
    x = torch.randn(3, 64, 7, 7)
    branch = branches[1].eval()
    body = torch.nn.Sequential(*branch)  # the same layers without the skip
    assert torch.allclose(branch(x), x + body(x))  # the branch's output is added to its input
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # depth 2 is the plain group: no residual branch, the same network as before the option
    plain = build_model("conv-groups", {"widths": [8, 16]}, (1, 8, 8), 10)
    assert not any(isinstance(b, Residual) for b in plain.modules())
    with pytest.raises(ConfigError, match="depth"):
        build_model("conv-groups", {"depth": 1}, (3, 32, 32), 10)


def test_conv_groups_squeeze_excite_gates_each_residual_branch():
    from imgclf.models.conv_groups import Residual, SqueezeExcite
    opts = {"whiten": True, "dirac": True, "depth": 3, "widths": [24, 64, 76]}
    m = build_model("conv-groups", {**opts, "se": 8}, (3, 32, 32), 10)
    gates = [b[-1] for b in m if isinstance(b, Residual)]
    assert all(isinstance(g, SqueezeExcite) for g in gates) and len(gates) == 3
    # each gate: w -> w // 8 -> w linear layers with biases, on top of the 252,626 of the plain network
    extra = sum(2 * w * (w // 8) + w // 8 + w for w in (24, 64, 76))
    assert summarize(m, (3, 32, 32)).trainable_params == 252_626 + extra == 255_346
    # a gate scales each channel of each image by one factor in (0, 1)
    x = torch.randn(2, 64, 7, 7)
    y = gates[1](x)
    ratio = y / x
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)
    assert ((ratio > 0) & (ratio < 1)).all()
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match="se"):
        build_model("conv-groups", {"se": 0}, (3, 32, 32), 10)
