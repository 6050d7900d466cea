"""The one test of the epoch log's wording: a tiny seeded digits run's train.log, line for line, with
the seconds and the run's folder masked. Every other test reads the run's data, not its log."""
import re

import imgclf

EXPECTED = """\
run <RUN>
data digits: 1,294 train / 144 val / 359 test images of 1x8x8, 10 classes
model mlp: 1,210 parameters, 1,184 mult-adds per image; device cpu
epoch 1/2  train loss 1.9228 acc  45.13%  val loss 1.1860 acc  72.92%  lr 0.0269  <T>s
epoch 2/2  train loss 0.8948 acc  81.53%  val loss 0.7627 acc  87.50%  lr 6.99e-05  <T>s
test loss 0.8275  top-1 80.78%  top-5 97.49%  (359 images, best epoch 2 by val_acc)
saved <RUN>/ (config.yaml, history.jsonl, metrics.json, summary.txt, best.pt, last.pt)
"""


def test_the_train_log_of_a_seeded_run_reads_as_its_golden_text():
    # One thread: the sums' order, hence the 4th decimal, is the same on any machine's core count.
    run = imgclf.train(None, ["model.name=mlp", "model.hidden=[16]", "train.epochs=2", "train.seed=0",
                              "train.threads=1"], name="golden", echo=False)
    text = (run.path / "train.log").read_text().replace(str(run.path), "<RUN>")
    assert re.sub(r"\b\d+\.\ds$", "<T>s", text, flags=re.M) == EXPECTED
    h = run.history  # the log's numbers are the history's, rounded
    assert [f"{x:.4f}" for x in h["train_loss"]] == ["1.9228", "0.8948"]
