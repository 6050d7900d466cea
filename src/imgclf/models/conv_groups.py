"""VGG-style conv groups, the shape of the fastest public CIFAR-10 recipes (airbench, Page's ResNet-9).

Each group is conv, 2x2 max-pool, BN, GELU, conv, BN, GELU: pooling right after the
group's first conv keeps the compute low. With `depth` 3 or more each group has depth - 1
convs after its pooling, inside one residual branch (airbench96's deeper groups). With
`whiten`, the first layer is a frozen 2x2 conv whose filters whiten the training images'
patches (set from the data before training, see PatchWhitening): no BN at full resolution,
and the first epochs learn faster. With `se`, squeeze-excite channel gates close each group.
"""
from __future__ import annotations

from typing import Annotated, Optional

import torch
from torch import nn

from ..config.schema import Range
from ..core.errors import ConfigError
from .registry import MODELS


class PatchWhitening(nn.Conv2d):
    """A k x k conv (no padding) whose 2 C k^2 filters decorrelate the image's k x k patches.

    The filters are the eigenvectors of the patches' second-moment matrix divided by the
    square roots of their eigenvalues, each paired with its negative so that a following
    GELU keeps both signs. The weights are frozen (not trained, not counted as trainable);
    the bias trains, for the first `bias_epochs` epochs only if set (see `set_epoch`).
    Until `init_from_data` runs the layer is a plain random conv.
    """

    def __init__(self, channels: int, kernel: int = 2, eps: float = 5e-4, bias_epochs: Optional[int] = None):
        super().__init__(channels, 2 * channels * kernel * kernel, kernel, padding=0, bias=True)
        self.weight.requires_grad_(False)
        nn.init.zeros_(self.bias)
        self.eps = eps  # added to the eigenvalues (normalized units squared): caps the gain of the weakest directions
        self.bias_epochs = bias_epochs

    def set_epoch(self, epoch: int) -> None:
        """Train the bias in epochs 0 .. bias_epochs - 1 (counted from 0), freeze it after.

        With nothing trainable in it the layer needs no gradient, and neither does the next
        conv's input: the backward pass skips the largest input-gradient of the network
        (1.14x faster training epochs for conv-groups 42-84-84 on 2 EPYC cores).
        """
        self.bias.requires_grad_(self.bias_epochs is None or epoch < self.bias_epochs)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Set the filters from normalized float images `x` (N, C, H, W), a few thousand suffice."""
        c, k = self.in_channels, self.kernel_size[0]
        # (N, C, H', W', k, k) -> one row per patch, in the conv weight's (C, k, k) order
        patches = x.float().unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
        patches = patches.double()
        moment = patches.T @ patches / len(patches)
        eigval, eigvec = torch.linalg.eigh(moment)  # ascending eigenvalues, eigenvectors in columns
        filters = (eigvec / torch.sqrt(eigval.clamp_min(0) + self.eps)).T.flip(0)  # strongest first
        filters = filters.reshape(c * k * k, c, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight.dtype))


def init_from_data(model: nn.Module, x: torch.Tensor) -> bool:
    """Run every data-initialized layer's `init_from_data` on images `x`; True if there was one."""
    found = False
    for m in model.modules():
        if hasattr(m, "init_from_data"):
            p = next(m.parameters())
            m.init_from_data(x.to(p.device))
            found = True
    return found


@torch.no_grad()
def dirac_init(conv: nn.Conv2d) -> None:
    """Make the first min(out, in) filters of `conv` identities (a 1 at the kernel's centre), as airbench does.

    A w -> w conv then starts as the identity and a c -> w conv (w > c) passes its c input
    channels through beside w - c randomly initialised ones: the deep stack starts close
    to a shallow one, which trains faster in the first epochs.
    """
    n = min(conv.out_channels, conv.in_channels)
    nn.init.dirac_(conv.weight[:n])


class SqueezeExcite(nn.Module):
    """Channel gates from the map's global average (Hu et al. 2018): x * sigmoid(W2 gelu(W1 mean(x))).

    For a group of w channels and `reduction` r it adds 2 w (w // r) + w // r + w parameters,
    a few thousand here, and almost no compute: the gates depend on the whole image, which
    3x3 convs at low resolution see only through the final pooling.
    """

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1, self.fc2 = nn.Linear(channels, hidden), nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = torch.sigmoid(self.fc2(nn.functional.gelu(self.fc1(x.mean((2, 3))))))
        return x * gates[:, :, None, None].to(x.dtype)


class Residual(nn.Sequential):
    """x + layers(x): a residual branch around a stack that keeps the shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


@MODELS.register("conv-groups")
def conv_groups(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    stem: Optional[Annotated[int, Range(ge=1)]] = None,  # channels of the first 3x3 conv (default 24)
    widths: list[int] = (42, 84, 84),  # one group each: conv, 2x2 max-pool, BN, GELU, conv, BN, GELU
    whiten: bool = False,  # first layer: frozen 2x2 patch whitening (2 C 4 = 24 channels for RGB), then GELU
    whiten_bias_epochs: Optional[Annotated[int, Range(ge=0)]] = None,  # train its bias this many epochs (default: all)
    dirac: bool = False,  # identity-like init: each group conv's first in-channels filters pass their input through
    depth: Annotated[int, Range(ge=2, le=8)] = 2,  # convs per group; from 3 on, all but the first in a residual branch
    se: Optional[Annotated[int, Range(ge=1)]] = None,  # squeeze-excite gates closing each group, this reduction ratio
) -> nn.Module:
    """A VGG-style net of conv groups; widths (42, 84, 84) give 249,598 parameters for 10 classes.

    With `whiten` the 3x3 stem conv and its BN make way for a PatchWhitening layer and
    its bias: 248,926 trainable parameters (and 288 frozen), 25% more images/s on 2 CPU cores in bf16.
    """
    widths = [int(w) for w in widths]
    if not widths or any(w < 1 for w in widths):
        raise ConfigError(f"model.widths must be a non-empty list of positive channel counts, got {widths}")
    if whiten_bias_epochs is not None and not whiten:
        raise ConfigError(f"model.whiten_bias_epochs={whiten_bias_epochs} needs model.whiten=true; set it or "
                          f"remove model.whiten_bias_epochs")
    if whiten:
        if stem is not None:
            raise ConfigError(f"model.stem={stem} cannot be set with model.whiten=true (the whitening layer has "
                              f"2 x channels x 4 outputs); remove model.stem")
        first = PatchWhitening(in_shape[0], bias_epochs=whiten_bias_epochs)
        layers: list[nn.Module] = [first, nn.GELU()]
        c = first.out_channels
    else:
        c = stem or 24
        layers = [nn.Conv2d(in_shape[0], c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.GELU()]
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(w), nn.GELU()]
        rest: list[nn.Module] = []
        for _ in range(depth - 1):
            rest += [nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.GELU()]
        if se is not None:
            rest.append(SqueezeExcite(w, se))  # on the residual branch, before the sum (as in SE-ResNet)
        # Two or more convs after the pooling train as one residual branch, so the deeper group
        # starts (with dirac) near the shallow one; a single conv stays plain.
        layers += [Residual(*rest)] if depth >= 3 else rest
        c = w
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    model = nn.Sequential(*layers)
    if dirac:
        for m in model.modules():
            if type(m) is nn.Conv2d:  # not the frozen whitening layer (a subclass)
                dirac_init(m)
    return model
