"""Tests of Tower, a task's head: MLP, one output unit, sigmoid or identity."""

import numpy as np
import pytest

from tf_mtl.compat import keras
from tf_mtl.layers.tower import Tower
from tf_mtl.tasks import OUTPUT_ACTIVATION, TASK_TYPES

from ._reference import mlp, random_weights, sigmoid, value

X = np.random.default_rng(0).normal(size=(9, 5)).astype(np.float32)


def _logits(tower, x):
    hidden = x if tower.hidden is None else mlp(x, [value(k) for k in tower.hidden.kernels], [value(b) for b in tower.hidden.biases])
    return (hidden @ value(tower.output_unit.kernel) + value(tower.output_unit.bias))[:, 0]


@pytest.mark.parametrize("dims", [(), (4,), (6, 3)])
def test_regression_is_linear_in_the_last_layer(dims):
    tower = Tower("regression", dims)
    tower(X)
    random_weights(tower, seed=len(dims), scale=2.0)
    out = tower(X)
    assert out.shape == (9,)
    np.testing.assert_allclose(out, _logits(tower, X), rtol=1e-5, atol=1e-5)


def test_regression_without_hidden_layers_is_an_affine_map():
    tower = Tower("regression")
    tower(X)
    tower.output_unit.kernel.assign(np.array([[1.0], [-2.0], [0.5], [0.0], [3.0]], np.float32))
    tower.output_unit.bias.assign([10.0])
    x = np.array([[1, 1, 2, 7, 0], [0, 0, 0, 0, 4]], np.float32)
    np.testing.assert_array_equal(tower(x), [10.0, 22.0])  # unbounded: no activation


@pytest.mark.parametrize("dims", [(), (4,)])
def test_classification_is_sigmoid_of_the_dense_output(dims):
    tower = Tower("classification", dims)
    regression = Tower("regression", dims)
    tower(X)
    regression(X)
    random_weights(tower, seed=7)
    regression.set_weights(tower.get_weights())
    out = tower(X).numpy()
    assert out.shape == (9,)
    assert (out > 0).all() and (out < 1).all()
    np.testing.assert_allclose(out, sigmoid(_logits(tower, X)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out, sigmoid(regression(X).numpy().astype(np.float64)), rtol=1e-5, atol=1e-7)


def test_known_weights():
    tower = Tower("classification", [2], activation="linear")
    tower(X[:, :3])
    tower.hidden.kernels[0].assign(np.ones((3, 2), np.float32))
    tower.output_unit.kernel.assign(np.array([[1.0], [-0.5]], np.float32))
    tower.output_unit.bias.assign([0.25])
    # sum(x) * (1 - 0.5) + 0.25
    x = np.array([[1.0, 2.0, 1.0], [-1.0, 0.0, 0.5]], np.float32)
    np.testing.assert_allclose(tower(x), sigmoid(np.array([2.25, 0.0])), rtol=1e-6)


def test_hidden_mlp_options_are_passed_on():
    tower = Tower("regression", [8, 4], activation="tanh", dropout=0.5, batch_norm=True)
    assert (tower.hidden.dims, tower.hidden.activation, tower.hidden.dropout, tower.hidden.batch_norm) == ([8, 4], "tanh", 0.5, True)
    tower(X)
    np.testing.assert_array_equal(tower(X), tower(X, training=False))
    assert tower(X, training=True).shape == (9,)


def test_output_activation_per_task_type():
    assert TASK_TYPES == ("classification", "regression")
    assert OUTPUT_ACTIVATION == {"classification": "sigmoid", "regression": "linear"}
    for task_type in TASK_TYPES:
        assert Tower(task_type).output_unit.activation == keras.activations.get(OUTPUT_ACTIVATION[task_type])


def test_in_a_functional_model():
    inputs = keras.Input((5,))
    tower = Tower("classification", [3])
    model = keras.Model(inputs, tower(inputs))
    assert tuple(model.output_shape) == (None,)
    assert tuple(tower.compute_output_shape((None, 5))) == (None,)
    np.testing.assert_allclose(model(X), sigmoid(_logits(tower, X)), rtol=1e-5, atol=1e-7)


def test_config_round_trip():
    tower = Tower("classification", [4], activation="tanh", dropout=0.1, name="ctr")
    config = tower.get_config()
    expected = {"task_type": "classification", "dims": [4], "activation": "tanh", "dropout": 0.1, "batch_norm": False}
    assert {k: config[k] for k in expected} == expected
    clone = Tower.from_config(config)
    tower(X)
    clone(X)
    clone.set_weights(tower.get_weights())
    np.testing.assert_array_equal(clone(X), tower(X))


def test_unknown_task_type():
    with pytest.raises(ValueError) as info:
        Tower("ranking")
    assert str(info.value) == "Tower: task_type: expected one of ['classification', 'regression']. Received: 'ranking'"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dims": [8, 0]}, "Tower: dims[1]: expected a positive integer. Received: 0"),
        ({"dims": 8}, "Tower: dims: expected a list of layer widths such as [256, 128]. Received: 8"),
        ({"dropout": "0.1"}, "Tower: dropout: expected a number in [0, 1). Received: '0.1'"),
        ({"batch_norm": "yes"}, "Tower: batch_norm: expected true or false. Received: 'yes'"),
    ],
)
def test_hidden_layer_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError) as info:
        Tower("classification", **kwargs)
    assert str(info.value) == message
