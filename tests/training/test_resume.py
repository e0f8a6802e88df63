"""Checkpoints and resume: a run stopped after any epoch and started again ends exactly as an
uninterrupted run. (Runs killed with SIGKILL mid-epoch and mid-checkpoint-write:
``tests/reliability/test_training_faults.py``.)"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.training import MTLTrainer

from ._data import labels, loaders, tiny_model


def train(click, path, n_epoch, seed, method):
    """A run on ``path``: MMoE whose experts have dropout and batch normalization."""
    features, x, y = click
    train_data, val, _ = loaders(x, labels(y, ["ctr", "cvr"]))
    model = tiny_model(features, "mmoe", seed=seed, expert_params={"dims": [8], "dropout": 0.3, "batch_norm": True})
    trainer = MTLTrainer(
        model, optimizer_params={"lr": 1e-2, "weight_decay": 1e-4}, adaptive_params={"method": method},
        n_epoch=n_epoch, earlystop_patience=3, model_path=str(path), verbose=0,
    )
    history = trainer.fit(train_data, val)
    return trainer, history


def state(trainer):
    """Everything that must match: model variables (weights, batch-norm statistics, dropout
    generator states), the optimizer's slots and the weighting's state."""
    variables = list(trainer.model.variables) + list(trainer.optimizer.variables) + list(trainer.weighting.variables)
    return [np.asarray(v) for v in variables]


@pytest.mark.parametrize("method", ["uwl", "dwa"])
def test_resume_after_one_epoch_ends_as_the_uninterrupted_run(click, tmp_path, method):
    uninterrupted, history = train(click, tmp_path / "a", 3, seed=0, method=method)
    train(click, tmp_path / "b", 1, seed=0, method=method)
    # A fresh model with other initial weights: everything must come from the checkpoint.
    resumed, resumed_history = train(click, tmp_path / "b", 3, seed=5, method=method)
    assert [r["epoch"] for r in resumed_history] == [1, 2, 3]
    with open(tmp_path / "b" / "history.json") as file:
        assert [r["epoch"] for r in json.load(file)] == [1, 2, 3]
    for key in ("train", "val", "weights", "monitor"):
        assert [r[key] for r in resumed_history] == [r[key] for r in history], key
    expected, actual = state(uninterrupted), state(resumed)
    assert len(expected) == len(actual)
    for a, b in zip(actual, expected):
        np.testing.assert_array_equal(a, b)
    # The weighting state compared above has moved: the task weights are no longer 1.
    assert not np.allclose(resumed.weighting.current_weights().numpy(), 1.0, atol=1e-3)


def test_checkpoints_keep_the_last_epochs(click, tmp_path):
    train(click, tmp_path, 3, seed=0, method="uwl")
    checkpoints = tmp_path / "checkpoints"
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-3")
    # max_to_keep=2: epoch 1's checkpoint is gone.
    assert sorted(p.name for p in checkpoints.glob("ckpt-*.index")) == ["ckpt-2.index", "ckpt-3.index"]


def test_fit_without_resume_starts_over(click, click_loaders, tmp_path):
    train, val, _ = click_loaders
    trainer = MTLTrainer(tiny_model(click[0]), n_epoch=1, model_path=str(tmp_path), verbose=0)
    assert [r["epoch"] for r in trainer.fit(train.take(5), val)] == [1]
    # Resumed, the finished run trains no further; started over, it trains its epoch again.
    assert [r["epoch"] for r in trainer.fit(train.take(5), val)] == [1]
    assert int(trainer.optimizer.iterations.numpy()) == 5
    assert [r["epoch"] for r in trainer.fit(train.take(5), val, resume=False)] == [1]
    assert int(trainer.optimizer.iterations.numpy()) == 10
