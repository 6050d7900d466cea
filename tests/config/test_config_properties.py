"""Property-based tests of the config loader: any key, any YAML value gives a valid config or one
line (a ConfigError), never a traceback."""
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgclf.config.load import flatten, from_dict, read_yaml, save_config
from imgclf.config.schema import ExperimentConfig
from imgclf.core.errors import ConfigError

SETTINGS = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
KEYS = sorted(flatten(ExperimentConfig().to_dict()))  # every real dotted key
scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                            max_size=3), max_leaves=6)
keys = st.sampled_from(KEYS) | st.sampled_from(["model.hidden", "model.spec", "model.widths", "model.depth"]) | \
    st.text(max_size=20)


def _one_line_or_valid(fn):
    """Either a config that survives its own round trip (dict and YAML), or one ConfigError line."""
    try:
        cfg = fn()
        assert isinstance(cfg, ExperimentConfig)
        assert from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()  # what it resolved to is itself valid
        assert from_dict(yaml.safe_load(save_config(cfg))).to_dict() == cfg.to_dict()  # and is what config.yaml holds
        return True
    except ConfigError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))
        return False


@SETTINGS
@given(st.lists(st.tuples(keys, values), max_size=4))
def test_any_override_gives_a_config_or_one_line(pairs):
    overrides = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                 for k, v in pairs]
    _one_line_or_valid(lambda: from_dict({}, overrides))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["data", "model", "optim", "schedule", "train"]) | st.text(max_size=6),
                       values, max_size=4))
def test_any_mapping_gives_a_config_or_one_line(raw):
    _one_line_or_valid(lambda: from_dict(raw))


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_yaml_file_gives_a_mapping_or_one_line(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        assert isinstance(read_yaml(p), dict)
    except ConfigError as e:
        assert "\n" not in str(e) and str(p) in str(e)
