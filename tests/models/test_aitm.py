import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.models import AITM

C = "classification"


def aitm(features, **kwargs):
    return AITM(features, [C, C, C], {"dims": [8]}, [{}, {}, {}], **kwargs)


def test_calibrator_is_zero_when_each_step_is_no_likelier_than_the_one_before(features):
    outputs = {"task1": tf.constant([0.9, 0.5]), "task2": tf.constant([0.4, 0.5]), "task3": tf.constant([0.1, 0.2])}
    assert aitm(features).auxiliary_losses(outputs)["calibration"].numpy() == 0.0


def test_calibrator_penalises_a_later_step_predicted_likelier(features):
    outputs = {"task1": tf.constant([0.5, 0.5]), "task2": tf.constant([0.3, 0.7]), "task3": tf.constant([0.3, 0.9])}
    # alpha * (mean(max(p2 - p1, 0)) + mean(max(p3 - p2, 0))) = 0.6 * ((0 + 0.2) / 2 + (0 + 0.2) / 2)
    loss = aitm(features).auxiliary_losses(outputs)["calibration"].numpy()
    np.testing.assert_allclose(loss, 0.6 * 0.2, rtol=1e-5)


def test_calibration_weight_zero_turns_it_off(features, inputs):
    model = aitm(features, calibration_weight=0.0)
    assert model.auxiliary_losses(model(inputs)) == {}


def test_attention_weights_over_transferred_and_own_representation(features, inputs):
    model = aitm(features, attention_params={"dim": 6})
    gates = model.gate_weights(inputs)
    assert sorted(gates) == ["task2", "task3"]
    for weights in gates.values():
        assert weights.shape == (64, 2)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("task2").output_unit.kernel.shape == (6, 1)


def test_total_loss_adds_the_calibrator(features, inputs):
    model = aitm(features)
    y = {t: np.ones(64) for t in model.task_names}
    pred = model(inputs)
    losses = model.compute_task_losses(y, pred)
    auxiliary = model.auxiliary_losses(pred)
    expected = sum(v.numpy() for v in losses.values()) + auxiliary["calibration"].numpy()
    np.testing.assert_allclose(model.total_loss(losses, auxiliary).numpy(), expected, rtol=1e-6)


def test_each_task_attends_over_its_own_network_and_the_previous_tasks_output(features, inputs):
    """z_1 = q_1 and z_t = AIT(q_t, z_{t-1}): task 3 receives z_2, not task 2's own network q_2."""
    model = aitm(features)
    x = {name: tf.constant(value) for name, value in inputs.items()}
    embedded = model.get_layer("feature_embedding")(x)
    z = model.get_layer("task1_bottom")(embedded)
    expected = {"task1": model.get_layer("task1")(z).numpy()}
    gates = model.gate_weights(x)
    for task in ("task2", "task3"):
        own = model.get_layer(f"{task}_bottom")(embedded)
        z, weights = model.get_layer(f"{task}_transfer")([own, z])
        np.testing.assert_allclose(gates[task], weights, rtol=1e-5, atol=1e-7)
        expected[task] = model.get_layer(task)(z).numpy()
    outputs = model(x)
    for task, value in expected.items():
        np.testing.assert_allclose(outputs[task], value, rtol=1e-5, atol=1e-6)


def test_fit_and_evaluate_add_the_calibrator_to_the_weighted_total(features, inputs):
    keras.utils.set_random_seed(0)
    model = aitm(features)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss_weights=[2.0, 1.0, 0.5])
    y = {t: (inputs["price"] > 10).astype("float32") for t in model.task_names}
    history = model.fit(inputs, y, batch_size=64, epochs=1, shuffle=False, verbose=0).history
    evaluated = model.evaluate(inputs, y, batch_size=64, verbose=0, return_dict=True)
    for logs in ({k: v[0] for k, v in history.items()}, evaluated):
        assert logs["calibration_loss"] > 0  # random towers break the funnel order on some rows
        expected = 2.0 * logs["task1_loss"] + logs["task2_loss"] + 0.5 * logs["task3_loss"] + logs["calibration_loss"]
        assert logs["loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task_types": [C, "regression"]}, "task_types[1]: expected 'classification'. Received: 'regression'"),
        ({"task_types": [C]}, "task_types: AITM transfers information between tasks: it needs at least 2. Received: ['classification']"),
        ({"attention_params": {"dims": 4}}, "attention_params.dims: unknown key; did you mean 'dim'?"),
        ({"attention_params": {"dim": 0}}, "attention_params.dim: expected a positive integer. Received: 0"),
        ({"attention_params": [4]}, "attention_params: expected a mapping with keys among ['dim']. Received: [4]"),
        ({"calibration_weight": -0.1}, "calibration_weight: expected a number >= 0. Received: -0.1"),
        ({"calibration_weight": "0.6"}, "calibration_weight: expected a finite number. Received: '0.6'"),
    ],
)
def test_errors(features, kwargs, message):
    task_types = kwargs.pop("task_types", [C, C])
    with pytest.raises(ValueError) as info:
        AITM(features, task_types, {"dims": [8]}, [{}] * len(task_types), **kwargs)
    assert str(info.value) == f"AITM: {message}"
