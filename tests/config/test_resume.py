"""The one table of keys that may differ between a run and the command that continues or reuses it."""
from imgclf.config.load import from_dict
from imgclf.config.resume import (MAY_DIFFER, Change, changed_for_reuse, refused_by_same_command,
                                  refused_overrides, settings)

BASE = {"model": {"name": "cnn", "spec": "c8-p-f16"}, "train": {"epochs": 4}}


def cfg(*overrides):
    return from_dict(BASE, list(overrides))


def test_model_options_and_transfer_keys_are_one_key_each():
    s = settings(cfg("model.pretrained=some/run", "model.pretrained_sha256=abc"))
    assert s["model.spec"] == "c8-p-f16" and s["model.pretrained_sha256"] == "abc" and "model" not in s


def test_the_same_command_may_differ_in_free_keys_and_run_longer_only():
    saved = cfg("model.pretrained=some/run", "model.pretrained_sha256=abc", "train.threads=2")
    assert refused_by_same_command(saved, cfg("model.pretrained=some/run", "train.threads=1")) == []
    assert refused_by_same_command(saved, cfg("model.pretrained=some/run", "model.pretrained_sha256=abc",
                                              "train.epochs=9", "train.threads=2")) == []
    assert refused_by_same_command(saved, cfg("model.pretrained=some/run", "model.pretrained_sha256=abc",
                                              "train.epochs=3", "train.threads=2")) == [("train.epochs", 4, 3)]
    assert [k for k, _, _ in refused_by_same_command(saved, cfg("model.pretrained=other", "optim.lr=0.5"))] \
        == ["model.pretrained", "optim.lr"]  # the hash and the threads are free


def test_overrides_on_resume_may_touch_the_table_only_and_reuse_only_free_keys():
    saved = cfg()
    assert refused_overrides(saved, cfg("train.epochs=2", "train.device=cpu")) == []
    assert refused_overrides(saved, cfg("optim.lr=0.5", "model.spec=c4-f8")) == ["model.spec", "optim.lr"]
    assert changed_for_reuse(saved, cfg("train.threads=1", "data.data_dir=/elsewhere")) == []
    assert changed_for_reuse(saved, cfg("train.epochs=8")) == ["train.epochs"]  # a longer run is another result


def test_every_key_of_the_table_is_a_key_of_the_config():
    keys = set(settings(cfg("model.pretrained=r", "model.pretrained_sha256=abc")))
    assert set(MAY_DIFFER) <= keys and set(MAY_DIFFER.values()) == set(Change)
