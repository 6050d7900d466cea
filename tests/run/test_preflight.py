"""The preflight: a bad config fails in about a second, before anything is decoded, downloaded or written."""
import pytest
import torch

import imgclf
from imgclf.cli.main import main

# CIFAR-10 from a folder that does not hold it, downloads off: any attempt to read data would
# fail with "not found", so each error below proves its check ran before the data were touched.
NO_DATA = ["data.name=cifar10", "data.download=false"]
CONV = ["model.name=conv-groups", "model.widths=[8,16]"]


@pytest.mark.parametrize("overrides, words", [
    (CONV + ["data.augment.crop_padding=4", "data.augment.early_crop=40"], ["early_crop=40", "smaller than", "32"]),
    (["model.name=cnn", "data.augment.crop_padding=4", "data.augment.early_crop=24"],
     ["early_crop=24", "cannot take 3x24x24", "global pooling"]),
    (CONV + ["data.augment.crop_size=40"], ["crop_size", "larger than the 32x32"]),
    (CONV + ["train.max_params=1000"], ["trainable parameters", "train.max_params"]),
    (["model.name=cnn", "model.spec=c8-p-p-p-p-p-p-f10"], ["model.spec", "below 1x1"]),
    (["model.name=mlp", "model.hidden=[4000, 4000]", "train.max_params=1000000"], ["over the cap"]),
])
def test_each_kind_of_check_fails_before_any_data_is_read(overrides, words, tmp_path):
    with pytest.raises(imgclf.ImgclfError) as e:
        imgclf.train(None, NO_DATA + [f"data.data_dir={tmp_path / 'nothing'}", *overrides], echo=False)
    msg = str(e.value)
    assert all(w in msg for w in words), msg
    assert "\n" not in msg and "not found" not in msg  # one line, and no data file was looked for
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # nothing written


def test_a_folder_of_unknown_classes_is_budgeted_at_least_at_two(tmp_path):
    with pytest.raises(imgclf.BudgetError, match="at least"):
        imgclf.train(None, ["data.name=folder", f"data.path={tmp_path}", "model.name=mlp", "model.hidden=[2000]",
                            "train.max_params=1000"], echo=False)


def test_cuda_asked_for_without_a_gpu_is_refused_before_data(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(imgclf.ConfigError, match="train.device"):
        imgclf.train(None, NO_DATA + [f"data.data_dir={tmp_path}", "train.device=cuda"], echo=False)


def test_cli_exits_2_with_one_line_and_an_empty_cache(tmp_path, capsys):
    code = main(["train", "--set", "data.name=cifar10", "--data-dir", str(tmp_path / "none"), "--set",
                 "data.download=false", "--max-params", "1000"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "train.max_params" in err
    assert not (tmp_path / "cache").exists()


def test_every_shipped_config_passes_the_preflight(tmp_path, monkeypatch):
    from imgclf.config.load import load_config
    from imgclf.core.ready import ready_configs
    from imgclf.models.pretrained import imagenet_file
    from imgclf.run.preflight import preflight

    # The transfer configs name weights the preflight looks for: ImageNet's in torch's cache and the
    # source run, both where a user who followed the README would have them.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached, _ = imagenet_file("resnet18")
    cached.parent.mkdir(parents=True)
    cached.touch()
    (tmp_path / "runs" / "transfer-source").mkdir(parents=True)
    (tmp_path / "runs" / "transfer-source" / "best.pt").touch()
    monkeypatch.chdir(tmp_path)
    paths = list(ready_configs().values())
    for path in paths:
        assert preflight(load_config(path, ["data.download=false"])) is None, path
    assert len(paths) >= 35  # every shipped config was read (the glob found the folder)
    assert not (tmp_path / "cache").exists()  # and not one image was decoded to check them


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(["mlp", "cnn", "conv-groups", "resnet-cifar"]),
       st.dictionaries(st.sampled_from(["hidden", "spec", "widths", "depth", "dropout", "blocks", "stem", "se"]),
                       st.integers(-3, 40) | st.lists(st.integers(-3, 40), max_size=3) | st.text("cpfdb0123456789-.k",
                                                                                                   max_size=12)
                       | st.floats(-1, 2), max_size=3))
def test_any_small_model_options_pass_the_preflight_or_fail_in_one_line(name, options):
    from imgclf.config.load import from_dict
    from imgclf.run.preflight import preflight

    try:
        preflight(from_dict({"model": {"name": name, **options}}))
    except imgclf.ImgclfError as e:
        assert str(e) and "\n" not in str(e)
