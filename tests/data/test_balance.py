"""Class balance: counts, the imbalance warning, inverse-frequency weights and the balanced sampler."""
import torch

from imgclf.data.balance import balanced_order, class_counts, imbalance_ratio, inverse_frequency, warning


def test_inverse_frequency_weights_make_every_class_count_alike():
    y = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    counts = class_counts(y, 4)
    assert counts.tolist() == [90, 9, 1, 0]
    w = inverse_frequency(counts)
    # each present class's images weigh the same in total; an absent class weighs nothing
    totals = (w * counts).tolist()
    assert abs(totals[0] - totals[1]) < 1e-4 and abs(totals[1] - totals[2]) < 1e-4 and w[3] == 0
    assert torch.allclose(inverse_frequency(class_counts(torch.tensor([0, 1, 0, 1]), 2)), torch.ones(2))
    assert imbalance_ratio(counts) == 90.0 and imbalance_ratio(class_counts(torch.tensor([0, 1]), 2)) == 1.0


def test_the_balanced_sampler_draws_every_class_alike_and_is_seeded():
    y = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    order = balanced_order(y, 4, 30_000, torch.Generator().manual_seed(0))  # class 3 has no image
    drawn = class_counts(y[order], 4).double() / len(order)
    assert torch.allclose(drawn[:3], torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02) and drawn[3] == 0
    assert len(torch.unique(order[y[order] == 2])) == 10  # every image of the rare class, many times
    again = balanced_order(y, 4, 30_000, torch.Generator().manual_seed(0))
    assert torch.equal(order, again)


def test_a_warning_names_the_largest_and_smallest_class_from_ten_times():
    names = ["cat", "dog", "owl"]
    assert warning(torch.tensor([90, 10, 20]), names) is None  # 9x
    line = warning(torch.tensor([100, 20, 10]), names)
    assert "'cat' has 100" in line and "'owl' 10" in line and "10x" in line and "class_weights: auto" in line
    assert "consider" not in warning(torch.tensor([100, 20, 10]), names, remedied=True)
