"""Export a run's kept model for serving outside imgclf: ONNX (run by onnxruntime) or torch.export's
ExportedProgram (`.pt2`; TorchScript is deprecated upstream); load exported files to predict.

The exported model takes what a client has: raw uint8 images, (N, C, H, W) at the shape the run's
data were decoded at (`source_shape`, e.g. 1x28x28 for Fashion-MNIST), any batch size N. It does
the run's evaluation preprocessing itself (scale, channel conversion, resize, center crop,
normalization) and returns float32 logits (N, classes). The class names travel inside the file
(ONNX metadata `classes`, an `imgclf.json` entry of the .pt2), as does the input contract.

Every export is verified in the same call: the exported file runs on the run's test images and
its logits must match PyTorch's within 1e-4 of their scale, else the export is refused.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..config.schema import ExperimentConfig
from ..core import run_files as RF
from ..core.errors import ConfigError, DataError, ImgclfError
from ..run.build import prepare_data
from ..run.folder import Run, load_run
from .restore import restore, top_classes

FORMATS = RF.EXPORT_SUFFIXES
TOLERANCE = 1e-4  # largest |exported - PyTorch| logit difference, in units of max(1, largest |logit|)
ONNX_OPSET = 20  # Resize with antialias needs 18 or later


class ExportError(ImgclfError):
    """The exported model does not reproduce PyTorch's, or the format cannot express the model."""


class Served(nn.Module):
    """A run's model behind its evaluation preprocessing: uint8 (N, C, H, W) in, logits out.

    The resize and channel conversion stay in float (see data/adapt.py), so another runtime's
    last-bit differences stay last-bit differences."""

    def __init__(self, model: nn.Module, transform):
        super().__init__()
        self.model, self.transform = model, transform

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.transform.eval(images, rounded=False)).float()


def served_model(run) -> tuple[Served, dict]:
    """The run's kept model, ready to export, and what the file should record about it."""
    run, cfg, state, model, transform = restore(run, torch.device("cpu"))
    source = tuple(state.get("source_shape") or state["data_shape"])
    info = {"classes": [str(c) for c in state["classes"]], "source_shape": list(source),
            "input": f"uint8 images (N, {source[0]}, {source[1]}, {source[2]}), values 0-255, any batch size N",
            "output": f"float32 logits (N, {len(state['classes'])}); softmax gives the probabilities",
            "preprocessing": preprocessing_words(cfg, source, tuple(state["data_shape"]), tuple(state["input_shape"])),
            "model": cfg.model.name, "run": str(run.path.resolve())}
    return Served(model.float().eval(), transform).eval(), info


def preprocessing_words(cfg: ExperimentConfig, source, data_shape, input_shape) -> str:
    """What the exported model does to the images before the network, in words."""
    steps = ["/255"]
    if source[0] != data_shape[0]:
        steps.append(f"{source[0]} to {data_shape[0]} channel(s)")
    if source[1:] != data_shape[1:]:
        aa = " antialiased" if data_shape[1] < source[1] else ""
        steps.append(f"bilinear{aa} resize {source[1]}x{source[2]} to {data_shape[1]}x{data_shape[2]}")
    if input_shape[1:] != data_shape[1:]:
        steps.append(f"center crop {input_shape[1]}x{input_shape[2]}")
    steps.append(f"normalization {cfg.data.normalization}")
    return ", ".join(steps)


def onnx_caveats(served: Served, example: torch.Tensor) -> list[str]:
    """What ONNX may not express as PyTorch computes it, one line each (the verification then decides)."""
    notes, target, source = [], served.transform.shape, tuple(example.shape[1:])
    if target is not None and (target[1] < source[1] or target[2] < source[2]):
        notes.append(f"antialiased resize: ONNX Resize with antialias=1 (opset {ONNX_OPSET}); runtimes that predate "
                     "opset 18 cannot run it")
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((tuple(i[0].shape[-2:]), tuple(o.shape[-2:]))))
             for m in served.modules() if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))]
    with torch.no_grad():
        served(example)
    for h in hooks:
        h.remove()
    for (hi, wi), (ho, wo) in seen:
        if hi % ho or wi % wo:
            notes.append(f"adaptive pooling from {hi}x{wi} to {ho}x{wo} has uneven windows, which ONNX pooling "
                         "cannot express directly; the exporter decomposes it")
    return notes


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=1 << 16)


def write(served: Served, info: dict, fmt: str, path: Path, example: torch.Tensor) -> None:
    """Export `served` to `path` (written through a temporary file, then renamed)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # torch.export wants the suffix
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporters' deprecation chatter is not the user's concern
            if fmt == "pt2":
                ep = torch.export.export(served, (example,), dynamic_shapes=({0: _batch_dim()},))
                torch.export.save(ep, str(tmp), extra_files={"imgclf.json": json.dumps(info)})
            else:
                _write_onnx(served, info, example, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_onnx(served: Served, info: dict, example: torch.Tensor, tmp: Path) -> None:
    try:
        import onnx  # local: optional (imgclf[export]) and slow to import
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxruntime: pip install 'imgclf[export]'") from None
    program = torch.onnx.export(served, (example,), dynamo=True, dynamic_shapes=({0: _batch_dim()},),
                                input_names=["images"], output_names=["logits"], opset_version=ONNX_OPSET,
                                verbose=False)
    program.save(str(tmp))
    proto = onnx.load(str(tmp))
    onnx.helper.set_model_props(proto, {k: v if isinstance(v, str) else json.dumps(v) for k, v in info.items()})
    onnx.save(proto, str(tmp))


class Exported:
    """An exported file loaded for inference: `logits(uint8 images)`, its class names and input shape."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path} not found; export a run with: imgclf export RUN")
        suffix = self.path.suffix.lower()
        if suffix == ".onnx":
            self._load_onnx()
        elif suffix == ".pt2":
            self._load_pt2()
        else:
            raise ConfigError(f"{self.path}: an exported model ends in .onnx or .pt2")
        self.classes = list(self.info["classes"])
        self.source_shape = tuple(self.info["source_shape"])

    def _load_onnx(self) -> None:
        try:
            import onnxruntime as ort  # local: optional (imgclf[export]) and slow to import
        except ImportError:
            raise ConfigError("running an ONNX model needs onnxruntime: pip install 'imgclf[export]'") from None
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own classes for damaged files
            raise DataError(f"{self.path} is not a readable ONNX model ({type(e).__name__}); export it again") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = _info({k: (json.loads(v) if k in ("classes", "source_shape") else v) for k, v in meta.items()},
                          self.path)
        self.run = lambda x: torch.from_numpy(self.session.run(None, {"images": x.numpy()})[0])

    def _load_pt2(self) -> None:
        extra = {"imgclf.json": ""}
        try:
            program = torch.export.load(str(self.path), extra_files=extra)
        except Exception as e:  # a damaged archive raises zip, pickle or runtime errors
            raise DataError(f"{self.path} is not a readable ExportedProgram ({type(e).__name__}); export it again") \
                from None
        self.info = _info(json.loads(extra["imgclf.json"] or "{}"), self.path)
        module = program.module()
        self.run = lambda x: module(x).detach()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Float32 logits of a uint8 batch (N, C, H, W) at the source shape."""
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != self.source_shape:
            raise DataError(f"{self.path} takes uint8 images of shape (N, {', '.join(map(str, self.source_shape))}), "
                            f"got {images.dtype} {tuple(images.shape)}")
        with torch.no_grad():
            return self.run(images.contiguous()).float()


def predict_exported(path: str | os.PathLike, images, top: int = 5) -> list[list[tuple[str, float]]]:
    """Top-`top` (class, probability) pairs for each image from an exported .onnx or .pt2 file."""
    exported = Exported(path)
    return top_classes(exported.logits, images, exported.source_shape, exported.classes, top)


def _info(info: dict, path: Path) -> dict:
    if not {"classes", "source_shape"} <= set(info):
        raise DataError(f"{path} was not exported by imgclf (no class names in it); export it with: imgclf export RUN")
    return info


def test_images(run, cfg: ExperimentConfig, source: tuple, n: int) -> tuple[torch.Tensor, str]:
    """Up to `n` of the run's test images as decoded, or seeded random images when the data cannot be read."""
    try:
        x = prepare_data(cfg).test.x[:n]
        if tuple(x.shape[1:]) == source:
            return x, f"{len(x)} test images"
    except ImgclfError:
        pass
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, *source), generator=g, dtype=torch.uint8), \
        f"{n} random images (the run's data cannot be read here)"


def export(run, fmt: str = "onnx", output: Optional[str | os.PathLike] = None, images: int = 64,
           log=print) -> dict:
    """Export a run's kept model as `fmt` (onnx or pt2), verify it against PyTorch, and say what was checked."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not known; choose {' or '.join(FORMATS)}")
    run = run if isinstance(run, Run) else load_run(run)
    served, info = served_model(run)
    source = tuple(info["source_shape"])
    path = Path(output) if output else run.path / RF.export_name(fmt)
    if path.suffix.lower() != FORMATS[fmt]:
        raise ConfigError(f"--output {path}: a {fmt} export ends in {FORMATS[fmt]}")
    x, what = test_images(run, run.config, source, images)
    notes = onnx_caveats(served, x[:2]) if fmt == "onnx" else []
    for line in notes:
        log(f"note: {line}")
    try:
        write(served, info, fmt, path, x[:2])
    except ImgclfError:
        raise
    except Exception as e:  # the exporters raise many classes; the model is what they could not express
        raise ExportError(f"model {run.config.model.name} cannot be exported to {fmt} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160] if str(e) else ''}); try --format "
                          f"{'pt2' if fmt == 'onnx' else 'onnx'}") from None
    with torch.no_grad():
        want = served(x)
    got = Exported(path).logits(x)
    diff = float((got - want).abs().max())
    scale = max(1.0, float(want.abs().max()))
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    if diff > TOLERANCE * scale:
        path.unlink(missing_ok=True)
        raise ExportError(f"the {fmt} export differs from PyTorch by {diff:.2e} on {what} (tolerance "
                          f"{TOLERANCE * scale:.1e}); nothing was kept; try --format {'pt2' if fmt == 'onnx' else 'onnx'}")
    log(f"exported {path} ({path.stat().st_size / 2**20:.2f} MiB): {info['input']}; {info['preprocessing']}")
    log(f"verified on {what}: max |logit difference| {diff:.2e} <= {TOLERANCE * scale:.1e}, "
        f"top-1 agrees on {agree}/{len(x)}")
    return {"path": str(path), "format": fmt, "max_diff": diff, "tolerance": TOLERANCE * scale,
            "images": len(x), "top1_agree": agree, "notes": notes}
