"""scikit-learn's bundled 8x8 handwritten digits: the embedded default data set."""
from __future__ import annotations

import numpy as np
import torch

from ..config.schema import DataConfig
from .registry import DATASETS, RawData


@DATASETS.register("digits", shape=(1, 8, 8), classes=10, train_images=1_797)
def digits(cfg: DataConfig) -> RawData:
    """1,797 grayscale 8x8 digits shipped with scikit-learn; no test split (carved by data.test_fraction)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    # Pixel values are counts 0..16; scale to the 0..255 range every other data set uses.
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return RawData(torch.from_numpy(x), torch.from_numpy(d.target.astype(np.int64)), None, None,
                   [str(i) for i in range(10)])
