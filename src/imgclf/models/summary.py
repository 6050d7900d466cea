"""Per-layer table of kernel shapes, output shapes, parameters and multiply-adds.

Multiply-adds follow the seed reports' tables: a conv counts
out_channels x out_h x out_w x (in_channels / groups) x kh x kw, a linear
layer in x out, batch norm one per channel; pools, activations and biases
count none.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import torch
from torch import nn

SKIP = (nn.ReLU, nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d)


@dataclass
class LayerRow:
    name: str
    kind: str
    kernel: str
    output: str
    params: int
    macs: int


@dataclass
class Summary:
    rows: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    total_macs: int = 0
    size_bytes: int = 0
    input_shape: tuple = ()

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape), "total_params": self.total_params,
            "trainable_params": self.trainable_params, "mult_adds": self.total_macs,
            "size_bytes": self.size_bytes, "layers": [r.__dict__ for r in self.rows],
        }


def _frozen_affine(m: nn.Module) -> int:
    """A frozen batch norm (torchvision's FrozenBatchNorm2d) keeps its scale and shift as buffers:
    still the layer's parameters, counted as non-trainable ones."""
    from torchvision.ops import FrozenBatchNorm2d

    return 2 * m.weight.numel() if isinstance(m, FrozenBatchNorm2d) else 0


def _bn_features(m: nn.Module) -> int:
    if isinstance(m, nn.modules.batchnorm._BatchNorm) or _frozen_affine(m):
        return m.weight.numel()
    return 0


def _macs(m: nn.Module, out: torch.Tensor) -> int:
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        return out[0].numel() * (m.in_channels // m.groups) * kh * kw
    if isinstance(m, nn.Linear):
        return out[0].numel() * m.in_features
    return _bn_features(m)


def _kernel(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        return str([m.in_channels // m.groups, m.out_channels, *m.kernel_size])
    if isinstance(m, nn.Linear):
        return str([m.in_features, m.out_features])
    return str([_bn_features(m)]) if _bn_features(m) else "-"


def saved_size(model: nn.Module) -> int:
    """Bytes of the model's state_dict as torch.save writes it."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def summarize(model: nn.Module, input_shape: tuple[int, int, int]) -> Summary:
    """Run one zero image through `model` (on its device) and tabulate every counted layer."""
    s = Summary(input_shape=tuple(input_shape))
    hooks = []
    counted: set[int] = set()  # a layer run twice (shared weights) lists its parameters once

    def hook(name):
        def fn(m, inp, out):
            if isinstance(out, torch.Tensor):
                own = 0 if id(m) in counted else sum(p.numel() for p in m.parameters(recurse=False)) + _frozen_affine(m)
                counted.add(id(m))
                s.rows.append(LayerRow(name, type(m).__name__, _kernel(m), str([1, *out.shape[1:]]), own, _macs(m, out)))
        return fn

    for name, m in model.named_modules():
        if len(list(m.children())) == 0 and not isinstance(m, SKIP):
            hooks.append(m.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        with torch.no_grad():
            try:
                model(torch.zeros(1, *input_shape, device=device))
            except RuntimeError as e:  # shapes that do not fit the architecture
                from ..core.errors import ConfigError

                raise ConfigError(
                    f"the model cannot take a {'x'.join(map(str, input_shape))} input "
                    f"({str(e).splitlines()[0][:150]}); use larger images or another model"
                ) from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    s.total_params = sum(p.numel() for p in model.parameters()) + sum(_frozen_affine(m) for m in model.modules())
    s.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    s.total_macs = sum(r.macs for r in s.rows)
    s.size_bytes = saved_size(model)
    return s


def short(n: int) -> str:
    """A count as the course reports write it: 1.79k, 2.69M, 37.02M; '-' for none."""
    if not n:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def format_summary(s: Summary, title: str = "", style: str = "exact") -> str:
    """The table as text: counts with thousands separators (exact), or as the reports print them
    (report: 1.79k, '-' for a layer without weights, totals in both forms)."""
    head = ("Layer", "Kernel Shape", "Output Shape", "Params", "Mult-Adds")
    fmt = short if style == "report" else (lambda n: f"{n:,}")
    body = [(r.name, r.kernel, r.output, fmt(r.params), fmt(r.macs)) for r in s.rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(5)]
    align = ["<", "<", "<", ">", ">"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    rule = "-" * len(line(head))
    out = [title] if title else []
    out += [line(head), rule, *(line(b) for b in body), rule]
    out += [
        f"Input shape:          {'x'.join(map(str, s.input_shape))}",
        f"Total params:         {s.total_params:,}" + (f" ({short(s.total_params)})" if style == "report" else ""),
        f"Trainable params:     {s.trainable_params:,}",
        f"Non-trainable params: {s.total_params - s.trainable_params:,}",
        f"Mult-Adds:            {s.total_macs:,}" + (f" ({short(s.total_macs)})" if style == "report" else ""),
        f"Size as saved:        {s.size_bytes:,} bytes ({s.size_bytes / 2**20:.2f} MiB)",
    ]
    return "\n".join(out)
