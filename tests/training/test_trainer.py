"""MTLTrainer's reference API: construction, fit, evaluate, predict and export_onnx."""

import numpy as np
import onnxruntime
import pytest

from tf_mtl.compat import keras
from tf_mtl.metrics import auc, evaluate, gauc
from tf_mtl.training import MTLTrainer, make_optimizer
from tf_mtl.weighting import UncertaintyWeighting

from ._data import C, R, labels, loaders, tiny_model


def outputs_and_labels(model, dataset):
    """Model outputs and labels of a dataset of ``(x, y)`` batches, as numpy arrays by name."""
    outputs, columns = {}, {}
    for x, y in dataset:
        for name, value in model(x, training=False).items():
            outputs.setdefault(name, []).append(np.asarray(value).reshape(-1))
        for name, value in y.items():
            columns.setdefault(name, []).append(np.asarray(value))
        columns.setdefault("user_id", []).append(np.asarray(x["user_id"]))
    return ({k: np.concatenate(v) for k, v in d.items()} for d in (outputs, columns))


def test_fit_trains_with_the_reference_arguments(reference_run):
    trainer, history = reference_run.trainer, reference_run.history
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert float(trainer.optimizer.learning_rate) == pytest.approx(1e-2)
    assert trainer.optimizer.weight_decay == pytest.approx(1e-5)
    assert isinstance(trainer.weighting, UncertaintyWeighting)
    # The log-variances learned: the effective weights moved away from 1.
    assert np.all(np.abs(trainer.weighting.log_variance.numpy()) > 1e-3)
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    # group_by adds GAUC per user to the validation figures.
    assert {"ctr/auc", "ctr/gauc", "cvr/auc", "cvr/gauc", "loss", "ctr_loss", "cvr_loss"} <= set(history[0]["val"])
    # Learned signal: the hidden model reaches 0.87; chance is 0.5.
    assert trainer.evaluate(trainer.model, reference_run.test)[0] > 0.6


def test_evaluate_is_auc_per_task_in_task_order(reference_run):
    trainer, test = reference_run.trainer, reference_run.test
    outputs, columns = outputs_and_labels(trainer.model, test)
    scores = trainer.evaluate(trainer.model, test)
    assert scores == pytest.approx([auc(columns["ctr"], outputs["ctr"]), auc(columns["cvr"], outputs["cvr"])], abs=1e-12)
    library = evaluate(trainer.model, test)
    assert scores == [library["ctr"]["auc"], library["cvr"]["auc"]]


def test_evaluate_detailed_with_gauc_per_user(reference_run):
    trainer, test = reference_run.trainer, reference_run.test
    outputs, columns = outputs_and_labels(trainer.model, test)
    detailed = trainer.evaluate(trainer.model, test, detailed=True, group_by="user_id")
    assert sorted(detailed) == ["ctr", "cvr"]
    assert sorted(detailed["ctr"]) == ["auc", "gauc", "log_loss"]
    for task in ("ctr", "cvr"):
        assert detailed[task]["gauc"] == pytest.approx(gauc(columns[task], outputs[task], columns["user_id"]), abs=1e-12)
    assert detailed == evaluate(trainer.model, test, group_by="user_id")
    assert "gauc" not in trainer.evaluate(trainer.model, test, detailed=True)["ctr"]


def test_evaluate_regression_is_rmse(click, tmp_path):
    features, x, y = click
    _, _, test = loaders(x, labels(y, ["ctr", "dwell"]))
    model = tiny_model(features, "shared_bottom", task_names=("ctr", "dwell"), task_types=(C, R))
    trainer = MTLTrainer(model, [C, R], model_path=str(tmp_path), verbose=0)
    outputs, columns = outputs_and_labels(model, test)
    expected = [auc(columns["ctr"], outputs["ctr"]), float(np.sqrt(np.mean((outputs["dwell"] - columns["dwell"]) ** 2)))]
    scores = trainer.evaluate(model, test)
    assert scores == pytest.approx(expected, rel=1e-6)
    library = evaluate(model, test)
    assert scores == [library["ctr"]["auc"], library["dwell"]["rmse"]]
    assert trainer.monitor.weights == {"ctr/auc": 0.5, "dwell/rmse": 0.5}


def test_evaluate_scores_esmm_cvr_on_clicked_rows(click, tmp_path):
    features, x, y = click
    _, _, test = loaders(x, labels(y, ["ctr", "cvr"]))
    model = tiny_model(features, "esmm")
    trainer = MTLTrainer(model, [C, C], model_path=str(tmp_path), verbose=0)
    outputs, columns = outputs_and_labels(model, test)
    clicked = columns["ctr"] > 0.5
    assert 0 < clicked.sum() < clicked.size
    ctr, cvr = trainer.evaluate(model, test)
    assert ctr == pytest.approx(auc(columns["ctr"], outputs["ctr"]), abs=1e-12)
    assert cvr == pytest.approx(auc(columns["cvr"][clicked], outputs["cvr"][clicked]), abs=1e-12)
    assert cvr != pytest.approx(auc(columns["cvr"], outputs["cvr"]), abs=1e-6)
    assert [ctr, cvr] == [evaluate(model, test)[name]["auc"] for name in ("ctr", "cvr")]
    # ESMM's third output is reported in detail, not in the per-task list.
    assert sorted(trainer.evaluate(model, test, detailed=True)) == ["ctcvr", "ctr", "cvr"]
    # predict: the tasks only, in task order.
    scores = trainer.predict(model, test)
    assert scores.shape == (len(columns["ctr"]), 2)
    np.testing.assert_allclose(scores, np.stack([outputs["ctr"], outputs["cvr"]], axis=1), rtol=1e-5, atol=1e-7)


def test_predict_is_n_by_tasks_in_task_order(reference_run):
    trainer, test = reference_run.trainer, reference_run.test
    outputs, columns = outputs_and_labels(trainer.model, test)
    expected = np.stack([outputs["ctr"], outputs["cvr"]], axis=1)
    scores = trainer.predict(trainer.model, test)
    assert scores.shape == (900, 2)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    # Batches of features only predict the same.
    np.testing.assert_allclose(trainer.predict(trainer.model, test.map(lambda x, y: x)), expected, rtol=1e-5, atol=1e-7)
    assert trainer.predict(trainer.model, test.take(0)).shape == (0, 2)


def test_export_onnx_runs_in_onnxruntime_with_the_models_outputs(reference_run, click, tmp_path):
    trainer = reference_run.trainer
    path = str(tmp_path / "model.onnx")
    assert trainer.export_onnx(path) == path
    session = onnxruntime.InferenceSession(path)
    features, x, _ = click
    inputs = {f.name: x[f.name][:257] for f in features}
    expected = {k: v.numpy() for k, v in trainer.model(inputs, training=False).items()}
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
    assert sorted(got) == ["ctr", "cvr"]
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-5, err_msg=name)


def test_task_types_that_differ_from_the_model_name_the_tasks(click):
    model = tiny_model(click[0], "mmoe")
    with pytest.raises(ValueError, match=r"task_types \['classification', 'regression'\] differ from the model's tasks "
                       r"\{'ctr': 'classification', 'cvr': 'classification'\}"):
        MTLTrainer(model, [C, R])


@pytest.mark.parametrize("name, value", [("n_epoch", 0), ("earlystop_patience", 1.5)])
def test_epoch_counts_must_be_positive_integers(click, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be an integer >= 1. Received: {name}={value}"):
        MTLTrainer(tiny_model(click[0], "mmoe"), **{name: value})


def test_a_dataset_of_unknown_length_needs_steps_per_epoch(click, click_loaders, tmp_path):
    train, _, _ = click_loaders
    trainer = MTLTrainer(tiny_model(click[0], "mmoe"), model_path=str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="length is unknown or infinite; pass steps_per_epoch"):
        trainer.fit(train.repeat())


def test_fit_takes_a_dataset_not_arrays(click, tmp_path):
    _, x, y = click
    trainer = MTLTrainer(tiny_model(click[0], "mmoe"), model_path=str(tmp_path), verbose=0)
    with pytest.raises(TypeError, match=r"tf.data.Dataset of \(x, y\) batches.*Received: tuple"):
        trainer.fit((x, y))


def test_make_optimizer_takes_lr_and_weight_decay():
    optimizer = make_optimizer(None, {"lr": 0.05, "weight_decay": 1e-4})
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(0.05)
    assert optimizer.weight_decay == pytest.approx(1e-4)
    sgd = make_optimizer("sgd", {"lr": 0.1, "momentum": 0.9})
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == pytest.approx(0.9)
    with pytest.raises(ValueError, match=r"optimizer_params \{.betta.: 0.9\} do not fit LazyAdam"):
        make_optimizer(None, {"betta": 0.9})


def test_weight_decay_shrinks_weights_without_gradient(click, tmp_path):
    """Decoupled decay: a tower whose loss term weighs 0 still shrinks by ``lr * decay`` per step."""
    features, x, y = click
    train, _, _ = loaders(x, labels(y, ["ctr", "cvr"]), batch_size=4200)
    model = tiny_model(features, "mmoe")
    before = [np.asarray(v) for v in model.get_layer("cvr").trainable_variables]
    trainer = MTLTrainer(
        model, optimizer_fn="sgd", optimizer_params={"lr": 0.1, "weight_decay": 0.5},
        adaptive_params={"method": "fixed", "weights": [1.0, 0.0]}, n_epoch=1, model_path=str(tmp_path), verbose=0,
    )
    trainer.fit(train)
    for start, variable in zip(before, model.get_layer("cvr").trainable_variables):
        np.testing.assert_allclose(np.asarray(variable), start * (1 - 0.1 * 0.5), rtol=1e-6)


def test_callbacks_see_every_step_and_epoch(click_loaders, click, tmp_path):
    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches, self.epochs = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.batches.append((batch, logs["loss"]))

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((epoch, sorted(logs)))

    train, val, _ = click_loaders
    record = Record()
    model = tiny_model(click[0], "mmoe")
    trainer = MTLTrainer(model, [C, C], n_epoch=2, model_path=str(tmp_path), verbose=0, callbacks=[record])
    history = trainer.fit(train, val)
    steps = len(train)
    assert record.model is model
    assert [b for b, _ in record.batches] == list(range(steps)) * 2
    assert np.mean([loss for _, loss in record.batches[:steps]]) == pytest.approx(history[0]["train"]["loss"], rel=1e-6)
    assert [e for e, _ in record.epochs] == [0, 1] and "val_ctr/auc" in record.epochs[0][1] and "loss" in record.epochs[0][1]
