"""What a run writes under ``model_path``: history.json, TensorBoard scalars, the PNG of its
curves; and what each epoch records: task weights and gate utilisation."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.training import report

GROUPS = ("train", "val", "weights", "gates")


def best_epoch(history):
    return [r["epoch"] for r in history if r["monitor"]["improved"]][-1]


def test_history_json_is_the_returned_history(reference_run):
    with open(reference_run.path / "history.json") as file:
        assert json.load(file) == reference_run.history


def read_scalars(logs):
    """``{(tag, step): value}`` of every scalar in the event files under ``logs``."""
    scalars = {}
    files = sorted(logs.glob("events.out.tfevents.*"))
    assert files, f"no event file under {logs}"
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars", value.tag
                scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    return scalars


def test_tensorboard_scalars_hold_every_figure_of_every_epoch(reference_run):
    scalars = read_scalars(reference_run.path / "logs")
    expected = {
        (f"{group}/{name}", record["epoch"]): value
        for record in reference_run.history
        for group in GROUPS
        for name, value in record[group].items()
    }
    assert sorted(scalars) == sorted(expected)
    for key, value in expected.items():
        assert scalars[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    tags = {tag for tag, _ in scalars}
    named = {"train/loss", "train/ctr_loss", "val/ctr/auc", "val/cvr/gauc", "val/loss", "weights/cvr", "gates/ctr/expert_1"}
    assert named <= tags


def test_training_curves_png(reference_run):
    data = (reference_run.path / "training_curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_each_epoch_records_the_task_weights(reference_run):
    trainer, history = reference_run.trainer, reference_run.history
    weights = [[r["weights"][name] for name in ("ctr", "cvr")] for r in history]
    # Uncertainty weighting: exp(-s) per classification term, s learned with the model.
    np.testing.assert_allclose(weights[-1], np.exp(-trainer.weighting.log_variance.numpy()), rtol=1e-6)
    assert weights[0] != pytest.approx(weights[-1], abs=1e-3)


def test_each_epoch_records_the_gate_utilisation_of_mmoe(reference_run):
    trainer, history = reference_run.trainer, reference_run.history
    for record in history:
        gates = record["gates"]
        assert sorted(gates) == ["ctr/expert_0", "ctr/expert_1", "cvr/expert_0", "cvr/expert_1"]
        for task in ("ctr", "cvr"):
            assert gates[f"{task}/expert_0"] + gates[f"{task}/expert_1"] == pytest.approx(1.0, abs=1e-6)
    # The model now holds the best epoch's weights: its gates on the first validation batch are
    # what that epoch recorded.
    x, _ = next(iter(reference_run.val))
    recorded = history[best_epoch(history) - 1]["gates"]
    for task, weights in trainer.model.gate_weights(x).items():
        for i, value in enumerate(weights.mean(axis=0)):
            assert recorded[f"{task}/expert_{i}"] == pytest.approx(float(value), rel=1e-6)


def test_epoch_line():
    record = {
        "epoch": 2,
        "train": {"loss": 0.5, "ctr_loss": 0.25},
        "val": {"ctr/auc": 0.75, "loss": 0.4, "ctr_loss": 0.2},
        "weights": {"ctr": 1.0, "cvr": 0.5},
        "seconds": 1.25,
    }
    # Per-task validation losses repeat the log losses: the line leaves them out.
    assert report.epoch_line(record, 3, True) == (
        "epoch 2/3  loss 0.5000  ctr_loss 0.2500  val ctr/auc 0.7500  val loss 0.4000  "
        "weights ctr 1.000 cvr 0.500  1.2s  *best*"
    )
