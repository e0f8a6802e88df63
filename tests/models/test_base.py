"""What every model shares: outputs, labels, losses, compile/fit, errors, serialization."""

import numpy as np
import pytest
import tensorflow as tf

import tf_mtl.features
from tf_mtl.compat import keras
from tf_mtl.models import MMOE, PLE, SharedBottom, SingleTask, build_model, load_model
from tf_mtl.models.base import MultiTaskModel, embed_features, make_tasks, task_towers

C, R = "classification", "regression"


def small_model(features, task_types=(C, R), **kwargs):
    return SharedBottom(features, list(task_types), {"dims": [8]}, [{"dims": [4]}, {}], task_names=["click", "time"], **kwargs)


def test_outputs_are_a_dict_keyed_by_task_name(features, inputs):
    outputs = small_model(features)(inputs)
    assert sorted(outputs) == ["click", "time"]
    assert outputs["click"].shape == (64,)
    assert np.all((outputs["click"].numpy() > 0) & (outputs["click"].numpy() < 1))


def test_unknown_ids_and_unseen_strings_get_finite_predictions(features, inputs):
    model = small_model(features)
    outputs = model.predict(
        {**inputs, "user": np.full(64, 10**9), "city": np.array(["nowhere"] * 64)}, verbose=0, batch_size=64
    )
    assert all(np.isfinite(v).all() for v in outputs.values())


def test_inputs_that_are_not_features_are_left_out(features, inputs):
    """Keras 3 would feed a dict's values by sorted position: "aaa" would land in "city"."""
    model = small_model(features)
    expected = model(inputs)
    outputs = model({**inputs, "aaa": np.full(64, 1e6, np.float32), "zzz": np.zeros(64)})
    for name in expected:
        np.testing.assert_array_equal(outputs[name], expected[name])


def test_classification_labels_other_than_0_and_1_fail_the_step(features, inputs):
    model = small_model(features)
    model.compile(optimizer="sgd")
    y = {"click": np.zeros(64, np.float32), "time": np.zeros(64, np.float32)}
    y["click"][5] = 2.0
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Task click is a classification task.*\] \[1\] \[2\]"):
        model.fit(inputs, y, batch_size=64, epochs=1, verbose=0)
    # A row whose weight is 0 may hold any label (a placeholder for a missing one).
    weights = np.ones(64, np.float32)
    weights[5] = 0.0
    history = model.fit(inputs, y, sample_weight=weights, batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_default_task_names():
    from tf_mtl.features import SparseFeature

    model = MMOE([SparseFeature("u", 5, 2)], [C, C, R], 2, {"dims": [4]}, [{}, {}, {}])
    assert model.task_names == ["task1", "task2", "task3"]


def test_task_losses_equal_a_hand_computation(features, inputs):
    model = small_model(features)
    y = {"click": np.tile([0.0, 1.0], 32), "time": np.linspace(0, 3, 64)}
    pred = model(inputs)
    losses = model.compute_task_losses(y, pred)
    p = np.clip(pred["click"].numpy(), 1e-7, 1 - 1e-7)
    expected_click = np.mean(-(y["click"] * np.log(p) + (1 - y["click"]) * np.log(1 - p)))
    np.testing.assert_allclose(losses["click"].numpy(), expected_click, rtol=1e-5)
    np.testing.assert_allclose(losses["time"].numpy(), np.mean((y["time"] - pred["time"].numpy()) ** 2), rtol=1e-5)


def test_labels_as_an_array_in_task_order(features, inputs):
    model = small_model(features)
    y = np.stack([np.tile([0.0, 1.0], 32), np.linspace(0, 3, 64)], axis=1)
    pred = model(inputs)
    by_array = model.compute_task_losses(y, pred)
    by_dict = model.compute_task_losses({"click": y[:, 0], "time": y[:, 1]}, pred)
    for name in by_dict:
        np.testing.assert_allclose(by_array[name].numpy(), by_dict[name].numpy())


def test_missing_label_names_the_task(features, inputs):
    model = small_model(features)
    with pytest.raises(KeyError, match="time"):
        model.compute_task_losses({"click": np.zeros(64)}, model(inputs))


def test_compile_loss_weights_and_custom_loss(features, inputs):
    model = small_model(features)
    model.compile(optimizer="adam", loss={"time": "mae"}, loss_weights={"click": 2.0, "time": 0.5})
    y = {"click": np.tile([0.0, 1.0], 32), "time": np.linspace(0, 3, 64)}
    pred = model(inputs)
    losses = model.compute_task_losses(y, pred)
    np.testing.assert_allclose(losses["time"].numpy(), np.mean(np.abs(y["time"] - pred["time"].numpy())), rtol=1e-5)
    total = model.total_loss(losses, {})
    np.testing.assert_allclose(total.numpy(), 2.0 * losses["click"].numpy() + 0.5 * losses["time"].numpy(), rtol=1e-6)


def _log_loss(labels, probabilities):
    p = tf.clip_by_value(probabilities, 1e-7, 1 - 1e-7)
    return -(labels * tf.math.log(p) + (1 - labels) * tf.math.log(1 - p))


def _sgd_step_matches_gradient(model, x, y, expected_total, loss_weights=None, sample_weight=None):
    """One full-batch SGD step of ``fit`` (learning rate 1) moves every trainable variable by
    minus the gradient of ``expected_total(predictions)``, which the test writes out by hand."""
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss_weights=loss_weights)
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        total = expected_total(model(x, training=True))
    gradients = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(total, variables)]
    before = [v.numpy() for v in variables]
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=64, epochs=1, shuffle=False, verbose=0).history
    assert history["loss"][0] == pytest.approx(float(total), rel=1e-5)
    for variable, old, gradient in zip(variables, before, gradients):
        np.testing.assert_allclose(old - variable.numpy(), gradient, rtol=1e-4, atol=1e-6, err_msg=variable.name)


def test_fit_follows_the_gradient_of_the_weighted_sample_weighted_task_losses(features, inputs):
    model = small_model(features)
    y = {"click": (inputs["price"] > 10).astype("float32"), "time": inputs["price"] / 5.0}
    rows = np.linspace(0.0, 2.0, 64).astype("float32")  # row 0 weighs nothing

    def expected_total(pred):
        click = tf.reduce_sum(rows * _log_loss(y["click"], pred["click"])) / rows.sum()
        time = tf.reduce_sum(rows * tf.square(y["time"] - pred["time"])) / rows.sum()
        return 2.0 * click + 0.5 * time

    _sgd_step_matches_gradient(model, inputs, y, expected_total, {"click": 2.0, "time": 0.5}, sample_weight=rows)
    # evaluate weights the task losses the same way.
    result = model.evaluate(inputs, y, sample_weight=rows, batch_size=64, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(float(expected_total(model(inputs))), rel=1e-5)


def test_regularization_losses_join_the_total(features, inputs):
    x_in, _, embedded = embed_features(features)
    bottom = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.05), name="bottom")
    tasks = make_tasks([C], ["click"])
    model = MultiTaskModel(x_in, task_towers([bottom(embedded)], tasks, [{}]), features, tasks, {})
    y = (inputs["price"] > 10).astype("float32")
    pred = model(inputs)
    penalty = 0.05 * np.sum(bottom.kernel.numpy().astype(np.float64) ** 2)
    losses = model.compute_task_losses(y, pred)
    assert float(model.total_loss(losses, {})) == pytest.approx(float(losses["click"]) + penalty, rel=1e-5)

    def expected_total(pred):
        return tf.reduce_mean(_log_loss(y, pred["click"])) + 0.05 * tf.reduce_sum(tf.square(bottom.kernel))

    _sgd_step_matches_gradient(model, inputs, y, expected_total)


def test_compiled_metrics_compare_each_output_with_its_own_label(features, inputs):
    model = small_model(features)
    model.compile(
        optimizer="adam",
        metrics={"click": [keras.metrics.MeanSquaredError(name="mse")], "time": [keras.metrics.MeanAbsoluteError(name="mae")]},
    )
    y = {"click": (inputs["price"] > 10).astype("float32"), "time": inputs["price"] / 5.0}
    result = model.evaluate(inputs, y, batch_size=64, verbose=0, return_dict=True)
    pred = model.predict(inputs, verbose=0)
    assert result["click_mse"] == pytest.approx(np.mean((y["click"] - pred["click"]) ** 2), rel=1e-5)
    assert result["time_mae"] == pytest.approx(np.mean(np.abs(y["time"] - pred["time"])), rel=1e-5)


def test_compile_names_a_misspelled_task(features):
    with pytest.raises(ValueError, match="'clik' is not a loss term.*did you mean 'click'"):
        small_model(features).compile(optimizer="adam", loss_weights={"clik": 1.0})


def test_mixed_classification_and_regression_train(features, inputs):
    keras.utils.set_random_seed(1)
    model = small_model(features)
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    y = {"click": (inputs["price"] > 10).astype("float32"), "time": inputs["price"] / 5.0}
    history = model.fit(inputs, y, batch_size=16, epochs=15, verbose=0)
    assert history.history["click_loss"][-1] < 0.5 * history.history["click_loss"][0]
    assert history.history["time_loss"][-1] < 0.2 * history.history["time_loss"][0]
    assert history.history["loss"][-1] == pytest.approx(
        history.history["click_loss"][-1] + history.history["time_loss"][-1], rel=1e-4
    )


def test_fit_on_tf_data_with_keras_metrics(features, inputs):
    model = small_model(features)
    model.compile(optimizer="adam", metrics={"click": [keras.metrics.AUC(name="auc")]})
    y = {"click": (inputs["price"] > 10).astype("float32"), "time": inputs["price"]}
    data = tf.data.Dataset.from_tensor_slices((inputs, y)).batch(16)
    history = model.fit(data, validation_data=data, epochs=1, verbose=0)
    assert {"loss", "click_loss", "time_loss", "val_loss"} <= set(history.history)
    assert any("auc" in key for key in history.history)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda f: SharedBottom(f, [C, "clasification"], {"dims": [4]}, [{}, {}]),
         "task_types[1]: unknown task type 'clasification'; did you mean 'classification'?"),
        (lambda f: SharedBottom(f, [C, C], {"dim": [4]}, [{}, {}]), "SharedBottom: bottom_params.dim: unknown key; did you mean 'dims'?"),
        (lambda f: SharedBottom(f, [C, C], {"dims": [4]}, [{}]),
         "SharedBottom: tower_params_list: expected one dict per task (2 tasks: ['task1', 'task2']). Received: [{}]"),
        (lambda f: SharedBottom(f, [C, C], {"dims": [4]}, [{}, {"dropuot": 0.1}]),
         "SharedBottom: tower_params_list[1].dropuot: unknown key; did you mean 'dropout'?"),
        (lambda f: SingleTask(f, [C, C], {"dims": [4, -8]}, [{}, {}]), "SingleTask: bottom_params.dims[1]: expected a positive integer. Received: -8"),
        (lambda f: MMOE(f, [C, C], 0, {"dims": [4]}, [{}, {}]), "MMOE: n_expert: expected a positive integer. Received: 0"),
        (lambda f: MMOE(f, [C, C], 2, {"dims": 4}, [{}, {}]),
         "MMOE: expert_params.dims: expected a list of layer widths such as [256, 128]. Received: 4"),
        (lambda f: MMOE(f, [C, C], 2, {"dims": [4]}, [{}, {"dims": [0]}]), "MMOE: tower_params_list[1].dims[0]: expected a positive integer. Received: 0"),
        (lambda f: MMOE(f, [C, C], 2, {"dims": [4], "batch_norm": "no"}, [{}, {}]),
         "MMOE: expert_params.batch_norm: expected true or false. Received: 'no'"),
        (lambda f: PLE(f, [C, C], 1, 1, 1, {"dims": [4]}, [{}, {}], task_names=["a", "a"]),
         "task_names[1]: 'a' is used more than once (also task_names[0])."),
        (lambda f: MMOE(list(f) + [f[0]], [C, C], 2, {"dims": [4]}, [{}, {}]), "features[4].name: 'user' is used more than once (also features[0])."),
        (lambda f: build_model("mmeo", f, [C, C]), "Unknown model 'mmeo'; did you mean 'mmoe'?"),
    ],
)
def test_errors_name_the_culprit(features, build, message):
    with pytest.raises(ValueError) as info:
        build(features)
    assert str(info.value) == message


def test_missing_input_names_the_feature(features, inputs):
    model = small_model(features)
    del inputs["city"]
    with pytest.raises(Exception, match="city"):
        model(inputs)


@pytest.mark.parametrize("name", ["shared_bottom", "esmm", "mmoe", "omoe", "ple", "aitm", "single_task"])
def test_serialization_round_trip(features, inputs, name, tmp_path):
    model = build_model(name, features, [C, C], expert_params={"dims": [8]}) if name in ("mmoe", "omoe", "ple") else (
        build_model(name, features, [C, C])
    )
    model.compile(optimizer="adam", loss_weights=[1.0, 0.5])
    model.fit(inputs, {t: np.ones(64) for t in model.task_names}, batch_size=32, epochs=1, verbose=0)
    expected = model.predict(inputs, verbose=0)

    weighting = model.get_compile_config()["weighting"]
    assert weighting == {"method": "fixed", "weights": [1.0, 0.5]}

    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    for restored in (clone, loaded):
        got = restored.predict(inputs, verbose=0)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-7)
    assert int(loaded.optimizer.iterations.numpy()) == 2
    # The loaded model weights its loss terms as the saved one did.
    assert loaded.get_compile_config()["weighting"] == weighting
    ones = {name: tf.constant(1.0) for name in model.loss_term_names}
    assert float(loaded.total_loss(ones, {})) == pytest.approx(1.5)


def test_embedding_and_dense_variables_partition_the_trainable_ones(features):
    model = small_model(features)
    embedding = model.embedding_trainable_variables
    assert sorted(v.shape[0] for v in embedding) == [4, 51]
    assert len(embedding) + len(model.dense_trainable_variables) == len(model.trainable_variables)


def test_embedding_gradients_touch_only_the_batch_rows(features, inputs):
    model = small_model(features)
    with tf.GradientTape() as tape:
        loss = model.compute_task_losses({"click": np.ones(64), "time": np.zeros(64)}, model(inputs))["click"]
    gradients = tape.gradient(loss, model.embedding_trainable_variables)
    assert all(isinstance(g, tf.IndexedSlices) for g in gradients)


def test_a_misspelled_model_argument_is_refused():
    with pytest.raises(ValueError, match=r"^MMOE: n_experts: unknown argument; did you mean 'n_expert'\?$"):
        build_model("mmoe", [tf_mtl.features.SparseFeature("user", 10, 2)], ["classification"], n_experts=8)


def test_load_model_reads_a_saved_model_and_refuses_other_files(features, inputs, tmp_path):
    model = small_model(features)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is SharedBottom and loaded.task_names == ["click", "time"]
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0)["click"], model.predict(inputs, verbose=0)["click"], rtol=1e-6)
    with pytest.raises(ValueError, match=r"model\.h5: expected a \.keras file"):
        load_model(tmp_path / "model.h5")
    plain = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(str(plain))
    with pytest.raises(ValueError, match=r"plain\.keras: holds a Sequential, not a tf_mtl model"):
        load_model(plain)
