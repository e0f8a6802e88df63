"""A loss that turns NaN or Inf stops training with an error naming the term, epoch and step,
and leaves the last checkpoint as the previous epoch wrote it."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.training import MTLTrainer, NonFiniteLossError

from ._data import C, R, tiny_model

BATCH, STEPS = 64, 4
# Batch 6 of the unshuffled data: epoch 2 (batches 4 to 7), step 3.
BAD_ROW = 6 * BATCH + 10


def poisoned(click, column, value):
    """12 unshuffled batches of 64 rows with ``value`` in ``column`` at ``BAD_ROW``."""
    _, x, y = click
    n = 12 * BATCH
    x = {k: v[:n].copy() for k, v in x.items()}
    y = {k: y[k][:n].copy() for k in ("ctr", "dwell")}
    (x if column in x else y)[column][BAD_ROW] = value
    # tf.data directly: DataGenerator refuses non-finite feature values before training.
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


def trainer_on(click, path, n_epoch=3, seed=0):
    model = tiny_model(click[0], "shared_bottom", task_names=("ctr", "dwell"), task_types=(C, R), seed=seed)
    return MTLTrainer(
        model, optimizer_params={"lr": 1e-2}, adaptive_params="uwl", n_epoch=n_epoch, model_path=str(path),
        steps_per_epoch=STEPS, verbose=0,
    )


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("dwell", 1e30, r"Loss of dwell = inf at epoch 2, step 3\."),
        # The loss of the step that reads the row may stay finite (its outputs saturate) while
        # its gradient is not (inf * 0): the NaN weights show in a later step's loss or, if the
        # losses stay finite (Keras 2 here), in the check of the variables at the end of the epoch.
        (
            "item_price",
            np.inf,
            r"Loss of (ctr|dwell) = (nan|inf)(, dwell = (nan|inf))? at epoch 2, step [34]\.|"
            r"NaN or Inf in \[.*\] at the end of epoch 2, whose losses were finite",
        ),
    ],
)
def test_non_finite_loss_stops_with_the_term_epoch_and_step(click, tmp_path, monkeypatch, column, value, message):
    train = poisoned(click, column, value)
    ended = []
    original = MTLTrainer._validate

    def validate(self, dataset):
        ended.append([np.asarray(v) for v in self.model.variables])
        return original(self, dataset)

    monkeypatch.setattr(MTLTrainer, "_validate", validate)
    trainer = trainer_on(click, tmp_path)
    with pytest.raises(NonFiniteLossError, match=message) as error:
        trainer.fit(train)
    assert str(tmp_path / "checkpoints") in str(error.value)
    assert len(ended) == 1, "epoch 1 ended, epoch 2 did not"

    # On disk: epoch 1's checkpoint and history, nothing of epoch 2.
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-1")
    with open(tmp_path / "history.json") as file:
        assert [r["epoch"] for r in json.load(file)] == [1]
    # A fresh trainer restores it (every saved value matched) to the state after epoch 1.
    restored = trainer_on(click, tmp_path, n_epoch=1, seed=3)
    history = restored.fit(train)
    assert [r["epoch"] for r in history] == [1]
    assert len(ended) == 1, "the restored run trained no further"
    for got, expected in zip(restored.model.variables, ended[0]):
        np.testing.assert_array_equal(np.asarray(got), expected)
    assert int(restored.optimizer.iterations.numpy()) == STEPS


def test_non_finite_variables_behind_finite_losses_are_not_checkpointed(click, tmp_path, monkeypatch):
    """Whatever the losses say, an epoch whose variables hold NaN is not saved."""
    original = MTLTrainer._train_epoch

    def train_epoch(self, train_function, iterator, steps, epoch):
        logs = original(self, train_function, iterator, steps, epoch)
        if epoch == 2:
            kernel = self.model.get_layer("ctr").output_unit.kernel
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))
        return logs

    monkeypatch.setattr(MTLTrainer, "_train_epoch", train_epoch)
    with pytest.raises(NonFiniteLossError, match=r"NaN or Inf in \['ctr/output/kernel(:0)?'\] at the end of epoch 2"):
        trainer_on(click, tmp_path).fit(poisoned(click, "dwell", 1.0))
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-1")
