"""``label_weights`` and ``loss_masks`` given to MTLTrainer reach the loss terms, exactly."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.data import DataGenerator
from tf_mtl.training import MTLTrainer

from ._data import labels, tiny_model

EPSILON = 1e-7


def log_loss(label, probability):
    p = np.clip(probability.astype(np.float64), EPSILON, 1 - EPSILON)
    return -(label * np.log(p) + (1 - label) * np.log(1 - p))


def batch(click, n=256, rows=None, extra=None):
    """The first ``n`` rows (or ``rows``) as tensors: features and labels ``ctr``, ``cvr`` (+ ``extra``)."""
    _, x, y = click
    rows = np.arange(n) if rows is None else rows
    columns = ["ctr", "cvr"] + list(extra or {})
    y = {**y, **(extra or {})}
    return {k: tf.constant(v[rows]) for k, v in x.items()}, {k: tf.constant(y[k][rows]) for k in columns}


def trainer_with(click, path, **options):
    model = tiny_model(click[0], "mmoe")
    return MTLTrainer(model, optimizer_params={"lr": 1e-2}, model_path=str(path), verbose=0, **options)


def test_label_weights_weigh_the_positive_rows_of_a_term(click, tmp_path):
    trainer = trainer_with(click, tmp_path, label_weights={"ctr": 3.0})
    x, y = batch(click)
    outputs = trainer.model(x, training=False)
    losses = trainer.model.compute_task_losses(y, outputs)
    click_label, buy = y["ctr"].numpy(), y["cvr"].numpy()
    assert 0 < click_label.sum() < len(click_label)
    weights = np.where(click_label > 0.5, 3.0, 1.0)
    expected = np.sum(weights * log_loss(click_label, outputs["ctr"].numpy())) / np.sum(weights)
    assert float(losses["ctr"]) == pytest.approx(expected, rel=1e-5)
    assert float(losses["ctr"]) != pytest.approx(np.mean(log_loss(click_label, outputs["ctr"].numpy())), rel=1e-3)
    assert float(losses["cvr"]) == pytest.approx(np.mean(log_loss(buy, outputs["cvr"].numpy())), rel=1e-5)


def test_label_weights_name_an_unknown_term(click, tmp_path):
    with pytest.raises(ValueError, match=r"label_weights: 'ctrr' is not a loss term of this model; did you mean 'ctr'\?"):
        trainer_with(click, tmp_path, label_weights={"ctrr": 3.0})


def test_loss_mask_counts_the_clicked_rows_only(click, tmp_path):
    trainer = trainer_with(click, tmp_path, loss_masks={"cvr": "ctr"})
    x, y = batch(click)
    outputs = trainer.model(x, training=False)
    losses = trainer.model.compute_task_losses(y, outputs)
    clicked = y["ctr"].numpy() > 0.5
    expected = np.mean(log_loss(y["cvr"].numpy()[clicked], outputs["cvr"].numpy()[clicked]))
    assert float(losses["cvr"]) == pytest.approx(expected, rel=1e-5)
    assert float(losses["ctr"]) == pytest.approx(np.mean(log_loss(y["ctr"].numpy(), outputs["ctr"].numpy())), rel=1e-5)


def cvr_tower_gradients(model, x, y):
    tower = model.get_layer("cvr").trainable_variables
    with tf.GradientTape() as tape:
        loss = model.compute_task_losses(y, model(x, training=True))["cvr"]
    return loss, [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, tower)]


def test_a_masked_term_has_no_gradient_on_unclicked_rows(click, tmp_path):
    trainer = trainer_with(click, tmp_path, loss_masks={"cvr": "ctr"})
    unclicked = np.flatnonzero(click[2]["ctr"] == 0)[:128]
    loss, gradients = cvr_tower_gradients(trainer.model, *batch(click, rows=unclicked))
    assert float(loss) == 0.0
    assert all(np.all(g == 0) for g in gradients)
    # With clicked rows in the batch the same tower gets a gradient.
    _, gradients = cvr_tower_gradients(trainer.model, *batch(click))
    assert any(np.any(g != 0) for g in gradients)


def test_a_mask_column_can_be_an_extra_label(click, tmp_path):
    _, x, y = click
    # "viewed": a column that is no task and differs from the click label.
    viewed = (x["position"] <= 8).astype(np.float32)
    trainer = trainer_with(click, tmp_path, loss_masks={"cvr": "viewed"}, n_epoch=1)
    xb, yb = batch(click, extra={"viewed": viewed})
    outputs = trainer.model(xb, training=False)
    keep = yb["viewed"].numpy() > 0.5
    assert keep.sum() != (yb["ctr"].numpy() > 0.5).sum()
    expected = np.mean(log_loss(yb["cvr"].numpy()[keep], outputs["cvr"].numpy()[keep]))
    assert float(trainer.model.compute_task_losses(yb, outputs)["cvr"]) == pytest.approx(expected, rel=1e-5)

    # Through fit: batches carry the extra column, validation masks with it too.
    label_columns = {**labels(y, ["ctr", "cvr"]), "viewed": viewed}
    train, val, _ = DataGenerator(x, label_columns).generate_dataloader(split_ratio=[0.7, 0.15], batch_size=256)
    history = trainer.fit(train.take(3), val)
    outputs, columns = {"cvr": []}, {"cvr": [], "viewed": []}
    for xv, yv in val:
        outputs["cvr"].append(trainer.model(xv, training=False)["cvr"].numpy())
        for name in columns:
            columns[name].append(yv[name].numpy())
    prediction, buy, keep = (np.concatenate(v) for v in (outputs["cvr"], columns["cvr"], columns["viewed"]))
    keep = keep > 0.5
    assert history[0]["val"]["cvr_loss"] == pytest.approx(np.mean(log_loss(buy[keep], prediction[keep])), rel=1e-5)


def test_training_on_unclicked_rows_leaves_the_masked_tower_alone(click, tmp_path):
    _, x, y = click
    rows = np.flatnonzero(y["ctr"] == 0)[:512]
    unclicked = DataGenerator({k: v[rows] for k, v in x.items()}, {k: y[k][rows] for k in ("ctr", "cvr")})
    train, _, _ = unclicked.generate_dataloader(batch_size=128)
    trainer = trainer_with(click, tmp_path, loss_masks={"cvr": "ctr"}, n_epoch=1)
    model = trainer.model
    before = {name: [np.asarray(v) for v in model.get_layer(name).trainable_variables] for name in ("ctr", "cvr")}
    history = trainer.fit(train)
    assert history[0]["train"]["cvr_loss"] == 0.0
    after = {name: [np.asarray(v) for v in model.get_layer(name).trainable_variables] for name in ("ctr", "cvr")}
    for start, end in zip(before["cvr"], after["cvr"]):
        np.testing.assert_array_equal(end, start)
    assert any(not np.array_equal(start, end) for start, end in zip(before["ctr"], after["ctr"]))
