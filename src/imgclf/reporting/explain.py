"""Looking inside a trained CNN: feature maps of conv layers and Grad-CAM heat maps, drawn for one
image of a run (`explain`) from the weights inference restores."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core import run_files as RF
from ..core.errors import ConfigError
from ..data.augment import center_crop
from ..inference.restore import read_image, restore
from ..run.folder import Run
from .figures import pyplot, save_figure


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the model's Conv2d layers, in forward order of definition."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _no_inplace(model: nn.Module) -> nn.Module:
    """A copy whose ReLUs do not overwrite their input (hooks must see the conv outputs intact)."""
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model


def _layer(model: nn.Module, name: str) -> nn.Module:
    mods = dict(model.named_modules())
    if name not in mods or not isinstance(mods[name], nn.Conv2d):
        raise ConfigError(f"layer {name!r} is not a conv layer of this model; choose one of: {', '.join(conv_layers(model))}")
    return mods[name]


def feature_maps(model: nn.Module, x: torch.Tensor, layers: Optional[list[str]] = None) -> dict[str, torch.Tensor]:
    """Each named conv layer's activation (after ReLU) for one input x (1, C, H, W): name -> (channels, h, w)."""
    model = _no_inplace(model)
    names = layers or conv_layers(model)
    out: dict[str, torch.Tensor] = {}
    hooks = [_layer(model, n).register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.detach()[0].relu()))
             for n in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def grad_cam(model: nn.Module, x: torch.Tensor, layer: Optional[str] = None, target: Optional[int] = None):
    """Grad-CAM of class `target` (default: the predicted one) at a conv layer (default: the last).

    Returns (heat (H, W) in 0..1 at the input's resolution, target class, class probabilities).
    """
    model = _no_inplace(model)
    names = conv_layers(model)
    if not names:
        raise ConfigError("Grad-CAM needs a model with conv layers (this one has none)")
    mod = _layer(model, layer or names[-1])
    store: dict[str, torch.Tensor] = {}

    def fwd(m, i, o):
        store["act"] = o
        o.register_hook(lambda g: store.__setitem__("grad", g))

    h = mod.register_forward_hook(fwd)
    try:
        x = x.clone().requires_grad_(False)
        logits = model(x)
        probs = logits.softmax(1)[0].detach()
        cls = int(probs.argmax()) if target is None else int(target)
        model.zero_grad(set_to_none=True)
        logits[0, cls].backward()
    finally:
        h.remove()
    act, grad = store["act"][0].detach(), store["grad"][0]
    weights = grad.mean(dim=(1, 2))  # one weight per channel: its average gradient
    cam = (weights[:, None, None] * act).sum(0).relu()
    cam = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    cam = cam / cam.max() if float(cam.max()) > 0 else cam
    return cam, cls, probs


def _image01(x_uint8: torch.Tensor) -> np.ndarray:
    im = x_uint8.permute(1, 2, 0).numpy().astype(float) / 255.0
    return im[..., 0] if im.shape[2] == 1 else im


def explain_figures(model: nn.Module, x_norm: torch.Tensor, x_uint8: torch.Tensor, classes: list[str], out_dir,
                    layer: Optional[str] = None, target: Optional[int] = None, max_maps: int = 32) -> dict:
    """Write feature-map grids, channel-summed overlays and Grad-CAM overlays; return paths and the prediction."""
    plt = pyplot()
    out_dir = Path(out_dir)
    img = _image01(x_uint8)
    cmap = "gray" if img.ndim == 2 else None
    names = [layer] if layer else conv_layers(model)
    maps = feature_maps(model, x_norm, names)
    paths = []
    for name, fm in maps.items():
        n = min(len(fm), max_maps)
        cols = 8
        rows = (n + cols - 1) // cols
        fig, axes = plt.subplots(rows + 1, cols, figsize=(1.5 * cols, 1.6 * (rows + 1)), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        axes[0][0].imshow(img, cmap=cmap)
        axes[0][0].set_title("input", fontsize=8)
        summed = F.interpolate(fm.sum(0)[None, None], size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        axes[0][1].imshow(img, cmap=cmap)
        axes[0][1].imshow(summed.numpy(), cmap="jet", alpha=0.5)
        axes[0][1].set_title("sum of channels", fontsize=8)
        for i in range(n):
            ax = axes[1 + i // cols][i % cols]
            ax.imshow(fm[i].numpy(), cmap="viridis")
            ax.set_title(f"ch {i}", fontsize=7)
        fig.suptitle(f"feature maps of {name} ({len(fm)} channels, {fm.shape[1]}x{fm.shape[2]})")
        paths.append(save_figure(fig, out_dir / f"maps_{name.replace('.', '_')}"))
    cam, cls, probs = grad_cam(model, x_norm, layer, target)
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.4))
    axes[0].imshow(img, cmap=cmap)
    axes[0].set_title("input")
    axes[1].imshow(img, cmap=cmap)
    im = axes[1].imshow(cam.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    axes[1].set_title(f"Grad-CAM: {classes[cls]} ({100 * float(probs[cls]):.0f}%)")
    for ax in axes:
        ax.axis("off")
        ax.grid(False)
    fig.colorbar(im, ax=axes[1], fraction=0.046, label="relevance")
    paths.append(save_figure(fig, out_dir / f"gradcam_{classes[cls].replace('/', '_')}"))
    top = probs.topk(min(5, len(probs)))
    return {"paths": paths, "class": classes[cls], "cam": cam,
            "top": [(classes[int(i)], float(p)) for p, i in zip(top.values, top.indices)]}


def explain(run: Run | str | os.PathLike, image, layer: Optional[str] = None, target: Optional[str] = None,
            out_dir=None) -> dict:
    """Feature maps and Grad-CAM of a run's best checkpoint for one image (a path or a uint8 tensor)."""
    run, cfg, state, model, transform = restore(run, torch.device("cpu"))
    c, h, w = state["data_shape"]
    if isinstance(image, torch.Tensor):
        x, name = image, "tensor"
    else:
        x, name = read_image(image, c, h), Path(image).stem
    classes = list(state["classes"])
    cls = None
    if target is not None:
        if target not in classes:
            raise ConfigError(f"class {target!r} is not one of: {', '.join(classes)}")
        cls = classes.index(target)
    shown = center_crop(x, cfg.data.augment.crop_size) if cfg.data.augment.crop_size else x
    out = Path(out_dir) if out_dir else run.path / RF.EXPLAIN_DIR / name
    return explain_figures(model.float(), transform.eval(x[None]), shown, classes, out, layer, cls)
