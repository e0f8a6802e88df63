"""What early stopping watches (``Monitor``), and how a run stops and restores its best epoch.

The runs script the validation figures (``MTLTrainer._validate`` patched to return a given
sequence and to record the weights it was called with), so which epoch is best is known.
"""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.training import MTLTrainer, Monitor
from tf_mtl.training.monitor import direction

from ._data import tiny_model


@pytest.fixture(scope="module")
def model(click):
    return tiny_model(click[0], "mmoe")


@pytest.mark.parametrize(
    "name, sign",
    [
        ("ctr/auc", 1), ("cvr/gauc", 1),
        ("ctr/log_loss", -1), ("dwell/rmse", -1), ("dwell/mae", -1), ("loss", -1), ("ctr_loss", -1),
    ],
)
def test_direction_counts_auc_up_and_losses_down(name, sign):
    assert direction(name) == sign


def test_weighted_sum_of_figures_in_their_directions(model):
    monitor = Monitor({"ctr/auc": 0.3, "cvr/log_loss": 0.7}, model)
    assert monitor.score({"ctr/auc": 0.8, "cvr/log_loss": 0.2, "loss": 9.0}) == pytest.approx(0.3 * 0.8 - 0.7 * 0.2)
    assert monitor.name == "0.3*ctr/auc + 0.7*cvr/log_loss"
    assert Monitor("loss", model).score({"loss": 0.25}) == -0.25
    assert Monitor("cvr/auc", model).name == "cvr/auc"


def test_default_is_the_mean_auc_of_the_tasks(model):
    monitor = Monitor(None, model)
    assert monitor.weights == {"ctr/auc": 0.5, "cvr/auc": 0.5}
    assert monitor.score({"ctr/auc": 0.6, "cvr/auc": 0.8}) == pytest.approx(0.7)


def test_non_finite_figures_score_minus_infinity(model):
    assert Monitor("ctr/auc", model).score({"ctr/auc": float("nan")}) == -math.inf
    assert Monitor("loss", model).score({"loss": float("inf")}) == -math.inf


def test_unknown_figure_names_hint_at_the_known_ones(model):
    figures = {"ctr/auc": 0.6, "cvr/auc": 0.7, "loss": 0.3}
    with pytest.raises(KeyError, match=r"monitor: 'ctr/acu' is not a validation figure; did you mean 'ctr/auc'\?"):
        Monitor("ctr/acu", model).score(figures)
    with pytest.raises(KeyError, match=r"'precision' is not a validation figure. Figures: \['ctr/auc', 'cvr/auc', 'loss'\]"):
        Monitor({"precision": 1.0}, model).score(figures)


@pytest.mark.parametrize("spec", [{}, ["ctr/auc"], 3])
def test_monitor_must_be_a_name_or_a_dict(model, spec):
    with pytest.raises(ValueError, match="monitor must be a figure name or a dict"):
        Monitor(spec, model)


def scripted_validation(monkeypatch, figures):
    """``_validate`` returns ``figures[epoch - 1]``; the returned list gets the model's weights
    at each call (the weights the epoch ended with)."""
    weights = []

    def validate(self, dataset):
        weights.append(self.model.get_weights())
        return dict(figures[len(weights) - 1])

    monkeypatch.setattr(MTLTrainer, "_validate", validate)
    return weights


def run(click, click_loaders, path, monitor, figures, monkeypatch, n_epoch, patience):
    train, val, _ = click_loaders
    weights = scripted_validation(monkeypatch, figures)
    model = tiny_model(click[0], "mmoe")
    trainer = MTLTrainer(
        model, optimizer_params={"lr": 1e-2}, n_epoch=n_epoch, earlystop_patience=patience, model_path=str(path),
        monitor=monitor, verbose=2,
    )
    # Few steps per epoch: each epoch must only change the weights.
    history = trainer.fit(train.take(3), val)
    return trainer, history, weights


def assert_weights_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_array_equal(a, b)


def assert_best_epoch(trainer, path, weights, best_epoch, click):
    assert_weights_equal(trainer.model.get_weights(), weights[best_epoch - 1])
    assert not np.array_equal(weights[best_epoch - 1][-1], weights[-1][-1]), "later epochs must have changed the weights"
    best = tf.train.latest_checkpoint(os.path.join(path, "best"))
    assert best.endswith(f"ckpt-{best_epoch}")
    # The best epoch's model, as the trainer saves it: the model and its variables by position
    # (Keras 3 layers keep some variables where tf.train.Checkpoint does not look).
    fresh = tiny_model(click[0], "mmoe", seed=7)
    tf.train.Checkpoint(model=fresh, variables=list(fresh.variables)).restore(best).expect_partial()
    assert_weights_equal(fresh.get_weights(), weights[best_epoch - 1])


def test_auc_stops_after_patience_epochs_and_restores_the_best(click, click_loaders, tmp_path, monkeypatch, capsys):
    # Epoch 2 is best; 3, 4 and 5 do not beat it (a tie does not count); epoch 6 never runs.
    scores = [0.60, 0.70, 0.65, 0.69, 0.70, 0.99]
    trainer, history, weights = run(
        click, click_loaders, tmp_path, "ctr/auc", [{"ctr/auc": s} for s in scores], monkeypatch, n_epoch=6, patience=3
    )
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert [r["monitor"]["improved"] for r in history] == [True, True, False, False, False]
    assert [r["monitor"]["score"] for r in history] == scores[:5]
    assert "Early stopping: ctr/auc did not improve for 3 epochs." in capsys.readouterr().out
    assert_best_epoch(trainer, tmp_path, weights, 2, click)


def test_a_loss_counts_downwards(click, click_loaders, tmp_path, monkeypatch):
    losses = [0.50, 0.40, 0.45, 0.41, 0.30]
    trainer, history, weights = run(
        click, click_loaders, tmp_path, "ctr/log_loss", [{"ctr/log_loss": v} for v in losses], monkeypatch, n_epoch=5,
        patience=2,
    )
    assert [r["monitor"]["improved"] for r in history] == [True, True, False, False]
    assert_best_epoch(trainer, tmp_path, weights, 2, click)


def test_a_weighted_monitor_weighs_its_figures(click, click_loaders, tmp_path, monkeypatch):
    # The CTR AUC alone would pick epoch 3 and the CVR loss alone epoch 2; 0.3 * auc - 0.7 * loss
    # scores -0.14, -0.03, -0.06: epoch 2.
    figures = [
        {"ctr/auc": 0.70, "cvr/log_loss": 0.50},
        {"ctr/auc": 0.60, "cvr/log_loss": 0.30},
        {"ctr/auc": 0.90, "cvr/log_loss": 0.47},
    ]
    trainer, history, weights = run(
        click, click_loaders, tmp_path, {"ctr/auc": 0.3, "cvr/log_loss": 0.7}, figures, monkeypatch, n_epoch=3, patience=5
    )
    assert [r["monitor"]["score"] for r in history] == pytest.approx([-0.14, -0.03, -0.059])
    assert_best_epoch(trainer, tmp_path, weights, 2, click)


def test_without_validation_data_the_training_loss_is_watched(click, click_loaders, tmp_path):
    train, _, _ = click_loaders
    trainer = MTLTrainer(tiny_model(click[0]), n_epoch=2, model_path=str(tmp_path), verbose=0)
    history = trainer.fit(train.take(2))
    for record in history:
        assert record["monitor"]["name"] == "loss"
        assert record["monitor"]["score"] == -record["train"]["loss"]
        assert record["val"] == {} and record["gates"] == {}


def test_a_misspelt_monitor_fails_with_a_hint(click, click_loaders, tmp_path):
    train, val, _ = click_loaders
    trainer = MTLTrainer(tiny_model(click[0]), n_epoch=2, model_path=str(tmp_path), monitor="cvr/acu", verbose=0)
    with pytest.raises(KeyError, match="did you mean 'cvr/auc'"):
        trainer.fit(train.take(1), val)
    # Before any training: nothing was checkpointed.
    assert not (tmp_path / "checkpoints").exists() and int(trainer.optimizer.iterations.numpy()) == 0


def test_a_stopped_run_resumed_trains_no_further(click, click_loaders, tmp_path, monkeypatch):
    scores = [0.7, 0.6, 0.6]
    run(click, click_loaders, tmp_path, "ctr/auc", [{"ctr/auc": s} for s in scores], monkeypatch, n_epoch=3, patience=2)
    trainer, history, weights = run(
        click, click_loaders, tmp_path, "ctr/auc", [{"ctr/auc": 0.9}], monkeypatch, n_epoch=10, patience=2
    )
    assert weights == [] and [r["epoch"] for r in history] == [1, 2, 3]
