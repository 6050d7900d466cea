"""data.image_size and data.channels apply to every data set, on the device, batch by batch."""
import numpy as np
import torch
from conftest import make_idx_dir
from PIL import Image

import imgclf
from imgclf.config.load import load_config
from imgclf.data.adapt import adapt
from imgclf.engine.checkpoint import load_checkpoint
from imgclf.models.sizing import known_shape


def test_gray_to_rgb_and_back_and_resizes():
    g = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    up = adapt(g, (3, 32, 32))
    assert up.shape == (4, 3, 32, 32) and up.dtype == torch.uint8
    assert torch.equal(up[:, 0], up[:, 1]) and torch.equal(up[:, 1], up[:, 2])  # gray repeated
    assert adapt(g, (1, 28, 28)) is g  # nothing to do: the same tensor
    rgb = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    gray = adapt(rgb, (1, 8, 8))
    pil = [np.asarray(Image.fromarray(im.permute(1, 2, 0).numpy(), "RGB").convert("L")) for im in rgb]
    assert np.abs(gray[:, 0].numpy().astype(int) - np.stack(pil).astype(int)).max() <= 1  # PIL's luma


def test_shrinking_is_antialiased():
    board = (torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2 * 255  # a one-pixel checkerboard
    small = adapt(board.to(torch.uint8).expand(1, 1, 32, 32), (1, 8, 8)).float()
    assert (small - 127.5).abs().max() <= 2  # averaged to gray, not aliased to black or white


def test_image_size_and_channels_take_effect_on_mnist_format_data(tmp_path):
    d = make_idx_dir(tmp_path / "idx", n_train=60, n_test=20)
    o = ["data.name=mnist", f"data.data_dir={d}", "data.download=false", "data.image_size=16", "data.channels=3",
         "model.spec=c8-p-f16", "train.epochs=1", "data.val_fraction=0"]
    assert known_shape(load_config(None, o).data) == ((3, 16, 16), 10)  # what the preflight builds on
    run = imgclf.train(None, o, echo=False)
    state = load_checkpoint(run.path / "last.pt")
    assert state["data_shape"] == [3, 16, 16] and state["input_shape"] == [3, 16, 16]
    assert len(state["mean"]) == 3 and state["mean"][0] == state["mean"][1] == state["mean"][2]  # gray's stats x3
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "digit.png")
    assert len(run.predict([tmp_path / "digit.png"])[0]) == 5
    assert run.evaluate("test")["n"] == 20
