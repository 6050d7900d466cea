"""Property-based test of the checkpoint reader: random truncations and byte flips of a real run
checkpoint load as a whole checkpoint whose weights fit the model, or give one line (a RunError)."""
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgclf
from imgclf.core.errors import RunError
from imgclf.engine.checkpoint import check_model, load_checkpoint
from imgclf.models import build_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    run = imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=1"], name="r", runs_dir=runs, echo=False)
    return (run.path / "last.pt").read_bytes()


@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.floats(0, 1) | st.just(1.0), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4))
def test_a_damaged_checkpoint_loads_whole_or_is_one_line(checkpoint, cut, flips):
    data = bytearray(checkpoint[: int(len(checkpoint) * cut)])
    for where, bits in flips:
        if data:
            data[int(where * (len(data) - 1))] ^= bits
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "last.pt"
        path.write_bytes(bytes(data))
        try:
            state = load_checkpoint(path)
            model = build_model("cnn", {"spec": "c8-p-f16"}, tuple(state["input_shape"]), len(state["classes"]))
            check_model(model, state["model"], path)
        except RunError as e:
            assert str(e) and "\n" not in str(e) and "last.pt" in str(e)
