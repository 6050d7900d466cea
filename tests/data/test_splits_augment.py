import pytest
import torch

from imgclf.config.load import load_config
from imgclf.data import augment as A
from imgclf.data import load_raw, make_splits
from imgclf.data.loader import Transform, batches
from imgclf.data.registry import RawData
from imgclf.core.errors import DataError
from imgclf.data.splits import channel_stats


def data_cfg(*o):
    return load_config(None, list(o)).data


def toy(n=100, c=3, h=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, c, h, h), generator=g, dtype=torch.uint8)
    return RawData(x, torch.arange(n) % 5, x[:20].clone(), torch.arange(20) % 5, list("abcde"))


def test_val_split_is_seeded_disjoint_and_sized():
    raw = toy()
    a = make_splits(raw, data_cfg("data.val_fraction=0.2"))
    b = make_splits(raw, data_cfg("data.val_fraction=0.2"))
    c = make_splits(raw, data_cfg("data.val_fraction=0.2", "data.split_seed=7"))
    assert len(a.train) == 80 and len(a.val) == 20
    assert torch.equal(a.val.x, b.val.x) and not torch.equal(a.val.x, c.val.x)
    rows = {tuple(r.flatten().tolist()) for r in a.train.x}
    assert not any(tuple(r.flatten().tolist()) in rows for r in a.val.x)


def test_test_split_carved_when_source_has_none():
    s = make_splits(load_raw(data_cfg()), data_cfg("data.test_fraction=0.25"))
    assert len(s.test) == round(1797 * 0.25)
    assert len(s.train) + len(s.val) + len(s.test) == 1797


def test_normalization_stats_come_from_train_only():
    raw = toy()
    raw.test_x = torch.full_like(raw.test_x, 255)  # a test split far from train must not move the stats
    s = make_splits(raw, data_cfg())
    m, sd = channel_stats(s.train.x)
    assert torch.allclose(s.mean, m) and torch.allclose(s.std, sd)
    assert s.mean.max() < 0.6
    t = Transform(data_cfg().augment, "dataset", s.mean, s.std)
    z = t.eval(s.train.x)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std((0, 2, 3)), torch.ones(3), atol=1e-2)


def test_a_reports_own_mean_and_std_replace_the_train_splits():
    s = make_splits(toy(), data_cfg("data.mean=[0.491,0.482,0.447]", "data.std=[0.202,0.199,0.201]"))
    assert s.mean.tolist() == pytest.approx([0.491, 0.482, 0.447]) and s.std.tolist() == pytest.approx([0.202, 0.199, 0.201])
    with pytest.raises(DataError, match="one per channel"):
        make_splits(toy(), data_cfg("data.std=[0.2]"))


def test_per_image_standardization():
    x = toy().train_x[:4]
    z = Transform(data_cfg().augment, "per-image", torch.zeros(3), torch.ones(3)).eval(x)
    assert torch.allclose(z.mean((1, 2, 3)), torch.zeros(4), atol=1e-5)
    flat = Transform(data_cfg().augment, "per-image", torch.zeros(3), torch.ones(3)).eval(torch.full((1, 3, 4, 4), 7, dtype=torch.uint8))
    assert torch.isfinite(flat).all()


def test_centered_maps_pixels_0_and_255_to_minus_1_and_1_and_none_to_0_and_1():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 3, 1, 3).contiguous()
    centered = Transform(data_cfg().augment, "centered", torch.zeros(3), torch.ones(3)).eval(x)
    assert centered[0, 0, 0].tolist() == pytest.approx([-1.0, 1.0, -0.6])  # the tutorial's (x - 0.5) / 0.5
    none = Transform(data_cfg().augment, "none", torch.zeros(3), torch.ones(3)).eval(x)
    assert none[0, 0, 0].tolist() == pytest.approx([0.0, 1.0, 0.2])


def test_crop_padding_matches_per_image_reference():
    x = toy(6).train_x
    g = torch.Generator().manual_seed(3)
    out = A.random_crop_padded(x, 2, g)
    g = torch.Generator().manual_seed(3)
    oy = torch.randint(0, 5, (6,), generator=g)
    ox = torch.randint(0, 5, (6,), generator=g)
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        assert torch.equal(out[i], xp[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8])


def test_fused_crop_and_flip_matches_per_image_reference():
    x = toy(40).train_x
    out = A.random_crop_padded_flip(x, 2, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    oy = torch.randint(0, 5, (40,), generator=g)
    ox = torch.randint(0, 5, (40,), generator=g)
    flip = torch.rand(40, generator=g) < 0.5
    assert 5 < int(flip.sum()) < 35  # both kinds occur
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(40):
        crop = xp[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8]
        assert torch.equal(out[i], crop.flip(2) if flip[i] else crop)


def test_smaller_crop_is_a_window_of_the_padded_image():
    x = toy(30).train_x  # 8x8 images, padded by 2 to 12x12: windows of 5 start at 0..7
    flip = torch.arange(30) % 3 == 0
    out = A.random_crop_padded_flip(x, 2, torch.Generator().manual_seed(6), flip=flip, size=5)
    g = torch.Generator().manual_seed(6)
    oy = torch.randint(0, 8, (30,), generator=g)
    ox = torch.randint(0, 8, (30,), generator=g)
    assert int(oy.max()) >= 6  # the far windows are drawn too
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(30):
        crop = xp[i, :, oy[i]:oy[i] + 5, ox[i]:ox[i] + 5]
        assert torch.equal(out[i], crop.flip(2) if flip[i] else crop)


def test_random_and_center_crop():
    x = toy(4).train_x
    out = A.random_crop(x, 5, torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 5, 5)
    assert torch.equal(A.center_crop(x, 6), x[..., 1:7, 1:7])


def test_hflip_flips_about_half():
    x = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8).repeat(200, 1, 1, 1)
    out = A.random_hflip(x, True, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 7).sum().item()
    assert 70 < flipped < 130
    assert all(torch.equal(o, x[0]) or torch.equal(o, x[0].flip(2)) for o in out)


def test_cutout_zeros_a_square():
    x = torch.ones(10, 1, 16, 16)
    out = A.cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum((1, 2, 3))
    assert (zeros > 0).all() and (zeros <= 16).all()


def test_trivial_augment_gives_each_image_one_op_at_a_bounded_magnitude():
    x = torch.randint(0, 256, (400, 3, 8, 8), dtype=torch.uint8)
    assert A.trivial_augment(x, 0.0, torch.Generator()) is x
    out = A.trivial_augment(x, 1.0, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    changed = (out != x).flatten(1).any(1).float().mean().item()
    # 1 op in 14 is the identity, and a few draw magnitude 0: most images change, not all
    assert 0.6 < changed < 0.97
    # the widest solarize inverts every pixel; the widest posterize keeps 2 bits (multiples of 64)
    assert torch.equal(A._trivial_op(x, "solarize", 1.0), 255 - x)
    assert (A._trivial_op(x, "posterize", 1.0) % 64 == 0).all()
    # a 32-pixel shift of an 8-pixel image leaves only the zero fill
    assert (A._trivial_op(x, "translate_x", 32.0) == 0).all()
    # weaker strength, smaller changes on average
    weak = A.trivial_augment(x, 0.1, torch.Generator().manual_seed(0))
    assert (weak.float() - x.float()).abs().mean() < (out.float() - x.float()).abs().mean()


def test_rotation_zero_and_small_angles_keep_centre():
    x = torch.zeros(2, 1, 9, 9)
    x[:, :, 4, 4] = 1
    out = A.random_rotate(x, 10, torch.Generator().manual_seed(0))
    assert out[:, 0, 4, 4].min() > 0.5


def test_loader_covers_each_example_once_and_drops_singleton_batch():
    raw = toy(33)
    s = make_splits(raw, data_cfg("data.val_fraction=0"))
    t = Transform(data_cfg().augment, "none", s.mean, s.std)
    seen = []
    for xb, yb in batches(s.train, 8, t, torch.device("cpu"), train=True, generator=torch.Generator().manual_seed(0)):
        seen.append(len(yb))
    assert sum(seen) == 32 and min(seen) >= 2  # 33 % 8 == 1: the lone last image is dropped
    ev = [len(yb) for _, yb in batches(s.train, 8, t, torch.device("cpu"), train=False)]
    assert sum(ev) == 33


def test_max_train_and_max_test_take_a_random_subset_of_every_class():
    """Image folders list images class by class: the first N would hold only the first classes."""
    y = torch.arange(10).repeat_interleave(30)  # class-sorted, as an image folder decodes
    x = torch.arange(300, dtype=torch.uint8).view(300, 1, 1, 1).expand(300, 1, 4, 4).contiguous()
    raw = RawData(x, y, x[:200].clone(), y[:200].clone(), [str(i) for i in range(10)])
    s = make_splits(raw, data_cfg("data.val_fraction=0.2", "data.max_train=50", "data.max_test=40"))
    assert len(s.train) == 50 and len(s.test) == 40 and len(s.val) == 40
    assert len(s.train.y.unique()) >= 8 and len(s.test.y.unique()) >= 6
    assert torch.equal(s.train.y, s.train.y.sort().values)  # original order kept
    again = make_splits(raw, data_cfg("data.val_fraction=0.2", "data.max_train=50", "data.max_test=40"))
    assert torch.equal(again.train.x, s.train.x)  # seeded


@pytest.mark.parametrize("crop", [0, 2])
def test_alternating_flip_mirrors_each_image_on_every_other_epoch(crop):
    raw = toy(n=40)
    cfg = data_cfg("data.augment.hflip=true", "data.augment.alternate_flip=true", f"data.augment.crop_padding={crop}",
                   "data.normalization=none", "data.val_fraction=0")
    s = make_splits(raw, cfg)
    tf = Transform(cfg.augment, "none", s.mean, s.std)

    def epoch(e):  # the same order and crops each epoch: only the flips differ
        g = torch.Generator().manual_seed(5)
        return torch.cat([xb for xb, _ in batches(s.train, 8, tf, torch.device("cpu"), train=True, generator=g,
                                                  epoch=e, seed=3)])

    e0, e1, e2 = epoch(0), epoch(1), epoch(2)
    assert torch.equal(e1, e0.flip(3))  # every image seen the other way round in the next epoch
    assert torch.equal(e2, e0)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(5))
    if crop == 0:
        flipped = (e0 != s.train.x[order].float() / 255).flatten(1).any(1)
        assert 10 < int(flipped.sum()) < 30  # a random half in the first epoch
    with pytest.raises(Exception, match="alternate_flip: needs data.augment.hflip"):
        data_cfg("data.augment.alternate_flip=true")


def test_zoom_scales_about_the_centre():
    x = torch.zeros(64, 1, 21, 21)
    x[:, :, 8:13, 8:13] = 1  # a 5x5 square in the middle
    out = A.random_zoom(x, 0.5, torch.Generator().manual_seed(0))
    area = out.sum((1, 2, 3))
    assert out[:, 0, 10, 10].min() > 0.99  # the centre stays
    assert area.min() < 25 * 0.7 and area.max() > 25 * 1.4  # zoomed out and in across the batch
    assert torch.equal(A.random_zoom(x, 0.0, torch.Generator()), x)
