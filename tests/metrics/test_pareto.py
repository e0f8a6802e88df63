import os

import pandas as pd
import pytest

from tf_mtl.metrics import pareto_front, plot_pareto

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Loss weightings of one model. "ctr_auc" and "cvr_auc" are maximised, "log_loss" minimised.
RUNS = {
    "equal": {"ctr_auc": 0.72, "cvr_auc": 0.78, "log_loss": 0.40},
    "ctr_heavy": {"ctr_auc": 0.75, "cvr_auc": 0.74, "log_loss": 0.41},
    "cvr_heavy": {"ctr_auc": 0.70, "cvr_auc": 0.80, "log_loss": 0.42},
    "bad": {"ctr_auc": 0.70, "cvr_auc": 0.74, "log_loss": 0.45},  # worse than "equal" on all three
    "tied_worse": {"ctr_auc": 0.72, "cvr_auc": 0.77, "log_loss": 0.40},  # ties "equal" twice, worse once
    "low_loss": {"ctr_auc": 0.60, "cvr_auc": 0.60, "log_loss": 0.30},  # only its loss is best
}


def test_front_over_every_metric_with_inferred_directions():
    assert pareto_front(RUNS) == ["ctr_heavy", "cvr_heavy", "equal", "low_loss"]


def test_directions_choose_the_metrics_compared():
    assert pareto_front(RUNS, {"ctr_auc": "max", "cvr_auc": "max"}) == ["ctr_heavy", "cvr_heavy", "equal"]
    assert pareto_front(RUNS, {"log_loss": "min"}) == ["low_loss"]
    assert pareto_front(RUNS, {"log_loss": "max"}) == ["bad"]
    # On these two metrics "tied_worse" equals "equal": duplicates, both on the front.
    assert pareto_front(RUNS, {"ctr_auc": "max", "log_loss": "min"}) == ["ctr_heavy", "equal", "low_loss", "tied_worse"]


def test_duplicates_are_on_the_front_together_or_off_it_together():
    runs = {"b": {"auc": 0.7, "loss": 0.3}, "a": {"auc": 0.7, "loss": 0.3}, "c": {"auc": 0.6, "loss": 0.3}}
    assert pareto_front(runs) == ["a", "b"]
    runs = {"b": {"auc": 0.6, "loss": 0.3}, "a": {"auc": 0.6, "loss": 0.3}, "c": {"auc": 0.7, "loss": 0.3}}
    assert pareto_front(runs) == ["c"]
    assert pareto_front({"only": {"auc": 0.5}}) == ["only"]


def test_a_dataframe_gives_the_same_front():
    frame = pd.DataFrame.from_dict(RUNS, orient="index")
    assert pareto_front(frame) == pareto_front(RUNS)
    assert pareto_front(frame, {"ctr_auc": "max", "cvr_auc": "max"}) == ["ctr_heavy", "cvr_heavy", "equal"]


@pytest.mark.parametrize(
    "metric, direction",
    [("ctr/auc", "max"), ("GAUC", "max"), ("val_loss", "min"), ("RMSE", "min"), ("time_mae", "min")],
)
def test_directions_are_inferred_from_names(metric, direction):
    runs = {"up": {metric: 2.0}, "down": {metric: 1.0}}
    assert pareto_front(runs) == (["up"] if direction == "max" else ["down"])


@pytest.mark.parametrize(
    "runs, directions, message",
    [
        ({"a": {"ndcg": 0.5}}, None, "cannot infer whether metric 'ndcg' is to be maximised or minimised"),
        ({"a": {"auc_loss": 0.5}}, None, "'auc_loss' is to be maximised or minimised; its name matches both"),
        ({"a": {"auc": 0.5}}, {"auc": "up"}, "directions: 'auc' must be 'max' or 'min'. Received: 'up'."),
        ({"a": {"auc": 0.5}}, {}, "directions: expected a non-empty dict"),
        ({}, None, "runs: needs at least one run. Received none."),
        (pd.DataFrame(), None, "runs: needs at least one run. Received none."),
        ([{"auc": 0.5}], None, "expected a dict {run_name: {metric_name: value}} or a pandas DataFrame"),
        ({"a": 0.5}, None, "each run maps metric names to values. Received run 'a': float."),
        ({"a": {"auc": 0.5, "ctr_auc": 0.6}, "b": {"auc": 0.6}}, None, "run 'b' has no metric 'ctr_auc'"),
        ({"a": {"ctr_auc": 0.5}}, {"ctr_acu": "max"}, "run 'a' has no metric 'ctr_acu'; did you mean 'ctr_auc'?"),
        ({"a": {"auc": float("nan")}}, None, "run 'a' metric 'auc' is nan"),
        ({"a": {"auc": "high"}}, None, "run 'a' metric 'auc' is not a number. Received: 'high'."),
        (pd.DataFrame({"auc": [0.5, 0.6]}, index=["a", "a"]), None, "Received duplicates: ['a']."),
    ],
)
def test_errors_say_what_was_received(runs, directions, message):
    with pytest.raises(ValueError) as info:
        pareto_front(runs, directions)
    assert message in str(info.value)


def test_plot_writes_a_png_and_returns_the_two_metric_front(tmp_path):
    path = tmp_path / "pareto.png"
    path.write_bytes(b"an older plot")
    front = plot_pareto(RUNS, "ctr_auc", "log_loss", path)
    assert front == ["ctr_heavy", "equal", "low_loss", "tied_worse"]
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert os.listdir(tmp_path) == ["pareto.png"]  # no partial file left behind


def test_plot_takes_given_directions_and_a_dataframe(tmp_path):
    path = str(tmp_path / "front.png")
    frame = pd.DataFrame.from_dict(RUNS, orient="index")
    front = plot_pareto(frame, "ctr_auc", "cvr_auc", path, {"ctr_auc": "min", "ndcg": "max"})
    assert front == ["cvr_heavy", "low_loss"]
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC


def test_a_failed_plot_keeps_the_old_file_and_leaves_no_partial_one(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    path = tmp_path / "pareto.png"
    path.write_bytes(b"an older plot")
    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_pareto(RUNS, "ctr_auc", "cvr_auc", path)
    assert path.read_bytes() == b"an older plot"
    assert os.listdir(tmp_path) == ["pareto.png"]


@pytest.mark.parametrize(
    "x, y, directions, message",
    [
        ("ctr_auc", "ctr_auc", None, "needs two different metrics. Received x_metric=y_metric='ctr_auc'."),
        ("ctr_auc", "steps", None, "cannot infer whether metric 'steps'"),
        ("ctr_auc", "cvr_auc", {"cvr_auc": "down"}, "'cvr_auc' must be 'max' or 'min'. Received: 'down'."),
    ],
)
def test_plot_errors(tmp_path, x, y, directions, message):
    with pytest.raises(ValueError) as info:
        plot_pareto(RUNS, x, y, tmp_path / "p.png", directions)
    assert message in str(info.value)
    assert os.listdir(tmp_path) == []
