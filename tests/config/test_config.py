import pytest
import yaml

from imgclf.config.load import from_dict, load_config, save_config
from imgclf.config.schema import ExperimentConfig, parse_duration
from imgclf.core.errors import ConfigError


def test_defaults_are_valid_and_round_trip(tmp_path):
    cfg = load_config()
    assert cfg.data.name == "digits" and cfg.model.name == "cnn"
    p = tmp_path / "c.yaml"
    p.write_text(save_config(cfg))
    assert load_config(p).to_dict() == cfg.to_dict()


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"optim": {"lr": 0.2}, "model": {"name": "mlp", "hidden": [32, 16]}}))
    cfg = load_config(p, ["optim.lr=0.01", "train.time_budget=2m", "model.dropout=0.5"])
    assert cfg.optim.lr == 0.01
    assert cfg.train.time_budget == 120.0
    assert cfg.model.options == {"hidden": [32, 16], "dropout": 0.5}


def test_model_name_override_drops_other_models_options():
    cfg = load_config(None, ["model.name=wide"])
    assert cfg.model.options == {}


@pytest.mark.parametrize("override, words", [
    ("optim.lrr=0.1", ["optim.lrr", "did you mean 'lr'"]),
    ("optimizer.lr=0.1", ["optimizer", "allowed keys"]),
    ("optim.lr=abc", ["optim.lr", "number"]),
    ("optim.lr=-1", ["optim.lr", "out of range"]),
    ("optim.name=adagrad", ["optim.name", "sgd"]),
    ("train.epochs=0", ["train.epochs", ">= 1"]),
    ("train.epochs=2.5", ["train.epochs", "integer"]),
    ("train.batch_size=true", ["train.batch_size", "integer"]),
    ("train.time_budget=soon", ["train.time_budget", "duration"]),
    ("data.val_fraction=1.5", ["data.val_fraction", "< 1"]),
    ("data.name=imagenet", ["data set", "cifar10"]),
    ("data.augment.hflip=maybe", ["data.augment.hflip", "true or false"]),
    ("data.normalization=zscore", ["data.normalization", "per-image"]),
    ("model.name=vgg", ["model", "wide-deep"]),
    ("model.hidden=[10]", ["model.hidden", "allowed keys"]),
    ("model.spec=5", ["model.spec", "string"]),
    ("optim.nesterov=true optim.momentum=0", ["nesterov"]),
    ("train.label_smoothing=nan", ["train.label_smoothing"]),
    ("optim.betas=[0.9]", ["optim.betas", "two"]),
    ("lr", ["key=value"]),
    ("=3", ["bad key"]),
    ("train=3", ["train", "mapping"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ConfigError) as e:
        load_config(None, override.split(" "))
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_no_val_split_is_allowed():
    cfg = load_config(None, ["data.val_fraction=0"])
    assert cfg.data.val_fraction == 0


@pytest.mark.parametrize("text, error", [
    ("optim: [1, 2", "not valid YAML"),
    ("- a\n- b\n", "mapping of sections"),
    ("optim: 3\n", "optim"),
    ("foo: {}\n", "unknown key foo"),
])
def test_bad_yaml_files(tmp_path, text, error):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_edited_config_object_is_revalidated():
    cfg = ExperimentConfig()
    cfg.optim.lr = -3.0
    with pytest.raises(ConfigError, match="optim.lr"):
        from_dict(cfg.to_dict())


def test_parse_duration():
    assert parse_duration("90s") == 90 and parse_duration("1.5h") == 5400 and parse_duration("60m") == 3600
    assert parse_duration("12") == 12
    with pytest.raises(ValueError):
        parse_duration("m")


def test_every_shipped_config_is_valid():
    from imgclf.core.ready import ready_configs

    files = list(ready_configs().values())
    assert len(files) >= 20
    for f in files:
        load_config(f)
