"""The one contract every data set's decoded form meets, checked for every loader and every cache
read, so that a new format gets the checks for free: uint8 images (N, C, H, W), int64 labels
in [0, classes), as many labels as images, at least two classes, and splits that agree."""
from __future__ import annotations

from typing import Optional

import torch

from ..core.errors import DataError
from .on_disk import DiskImages
from .registry import RawData


def check_raw(raw: RawData, name: str, classes: Optional[int] = None, where: str = "") -> RawData:
    """Return `raw` if it meets the contract, else raise a one-line DataError naming the data set and the fault."""
    at = f"data set {name}" + (f" ({where})" if where else "")

    def fail(problem: str, fix: str = "check or re-download its files") -> None:
        raise DataError(f"{at}: {problem}; {fix}")

    n_cls = len(raw.classes)
    if classes is not None and n_cls != classes:
        fail(f"{n_cls} class names where {name} has {classes}")
    if n_cls < 2:
        fail(f"{n_cls} class ({', '.join(map(str, raw.classes)) or 'none'}): a classifier needs at least two",
             "add images of another class")
    if raw.train_x is None or raw.train_y is None or len(raw.train_y) == 0:
        fail("no training images")
    shape = tuple(raw.train_x.shape[1:])
    for split, x, y in (("training", raw.train_x, raw.train_y), ("test", raw.test_x, raw.test_y),
                        ("validation", raw.val_x, raw.val_y)):
        if x is None and y is None:
            continue
        if x is None or y is None:
            fail(f"the {split} split has {'labels but no images' if x is None else 'images but no labels'}")
        if not isinstance(x, (torch.Tensor, DiskImages)) or x.dtype != torch.uint8 or x.ndim != 4:
            fail(f"{split} images are {getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))},"
                 f" not uint8 (N, C, H, W)")
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.ndim != 1:
            fail(f"{split} labels are {getattr(y, 'dtype', type(y).__name__)} of shape {tuple(getattr(y, 'shape', ()))},"
                 f" not int64 (N,)")
        if len(x) != len(y):
            fail(f"{len(x):,} {split} images but {len(y):,} labels")
        if tuple(x.shape[1:]) != shape:
            fail(f"{split} images are {'x'.join(map(str, x.shape[1:]))}, training images {'x'.join(map(str, shape))}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_cls):
            bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
            fail(f"a {split} label is {bad}, outside 0..{n_cls - 1} for its {n_cls} classes")
    for split, names in (raw.ids or {}).items():
        y = {"train": raw.train_y, "val": raw.val_y, "test": raw.test_y}.get(split)
        if y is None or len(names) != len(y):
            fail(f"{len(names):,} image names for the {split} split's {0 if y is None else len(y):,} images")
    if torch.unique(raw.train_y).numel() < 2:
        fail(f"all {len(raw.train_y):,} training images are of class {raw.classes[int(raw.train_y[0])]!r}",
             "add images of another class")
    return raw
