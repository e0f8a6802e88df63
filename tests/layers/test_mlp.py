"""Tests of MLP (single and num_parallel expert groups) and check_mlp_params."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import LEGACY_KERAS, keras
from tf_mtl.layers.mlp import MLP, check_mlp_params

from ._reference import member, mlp, random_weights, relu, value

X = np.random.default_rng(42).normal(size=(6, 5)).astype(np.float32)


def test_known_weights_equal_numpy():
    layer = MLP([3, 2])
    layer.build((None, 5))
    kernels = [np.arange(15, dtype=np.float32).reshape(5, 3) / 10 - 0.7, np.array([[1, -1], [0.5, 2], [-1, 0]], np.float32)]
    biases = [np.array([0.1, -0.2, 0.3], np.float32), np.array([-0.5, 0.25], np.float32)]
    for variable, v in zip(layer.kernels + layer.biases, kernels + biases):
        variable.assign(v)
    out = layer(X)
    assert out.shape == (6, 2)
    np.testing.assert_allclose(out, mlp(X, kernels, biases), rtol=1e-5, atol=1e-6)


def test_ones_initialized_values():
    layer = MLP([2, 1], activation="linear")
    layer.build((None, 3))
    for kernel in layer.kernels:
        kernel.assign(tf.ones(kernel.shape))
    # [1, 2, 3] -> [6, 6] -> [12].
    np.testing.assert_array_equal(layer(tf.constant([[1.0, 2.0, 3.0], [0.0, 0.0, -1.0]])), [[12.0], [-2.0]])


@pytest.mark.parametrize("activation, fn", [("relu", relu), ("tanh", np.tanh), ("linear", lambda x: x)])
def test_activation(activation, fn):
    layer = MLP([4, 3], activation=activation)
    layer.build((None, 5))
    random_weights(layer, seed=1)
    expected = mlp(X, [value(k) for k in layer.kernels], [value(b) for b in layer.biases], fn)
    np.testing.assert_allclose(layer(X), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_member_input", [False, True], ids=["shared_input", "per_member_input"])
def test_num_parallel_equals_separate_mlps(per_member_input):
    k = 3
    layer = MLP([4, 2], num_parallel=k)
    x = np.random.default_rng(7).normal(size=(6, k, 5)).astype(np.float32) if per_member_input else X
    out = layer(x)
    assert out.shape == (6, k, 2)
    assert [tuple(v.shape) for v in layer.kernels + layer.biases] == [(k, 5, 4), (k, 4, 2), (k, 4), (k, 2)]
    random_weights(layer, seed=2)
    out = layer(x).numpy()
    for m in range(k):
        kernels, biases = member(layer, m)
        member_input = x[:, m] if per_member_input else x
        np.testing.assert_allclose(out[:, m], mlp(member_input, kernels, biases), rtol=1e-5, atol=1e-6)


def test_per_member_input_must_have_one_slice_per_member():
    with pytest.raises(ValueError, match=r"\(batch, 4, d\) for num_parallel=4. Received: input_shape=\(2, 2, 5\)"):
        MLP([3], num_parallel=4)(tf.ones((2, 2, 5)))


def test_num_parallel_members_start_different():
    layer = MLP([8, 8], num_parallel=4)
    layer.build((None, 8))
    for kernel in layer.kernels:
        values = kernel.numpy()
        for a in range(4):
            for b in range(a + 1, 4):
                assert not np.allclose(values[a], values[b])
    # A new initializer per kernel: layers of the same shape do not repeat each other either.
    assert not np.allclose(layer.kernels[0].numpy(), layer.kernels[1].numpy())
    np.testing.assert_array_equal(layer.biases[0].numpy(), np.zeros((4, 8)))


@pytest.mark.parametrize("num_parallel", [None, 4])
def test_kernel_std_is_glorot(num_parallel):
    fan_in, fan_out = 400, 200
    layer = MLP([fan_out, 100], num_parallel=num_parallel)
    layer.build((None, fan_in))
    for kernel, (n_in, n_out) in zip(layer.kernels, [(fan_in, fan_out), (fan_out, 100)]):
        values = kernel.numpy().reshape(num_parallel or 1, n_in, n_out)
        expected = np.sqrt(2.0 / (n_in + n_out))
        limit = np.sqrt(6.0 / (n_in + n_out))
        for m in range(num_parallel or 1):
            assert abs(values[m].std() / expected - 1.0) < 0.1
            assert np.abs(values[m]).max() <= np.float32(limit)  # the bound as rounded to float32


def test_dropout_only_in_training():
    layer = MLP([200], activation="linear", dropout=0.5)
    layer.build((None, 3))
    layer.kernels[0].assign(tf.ones((3, 200)))
    x = tf.constant([[1.0, 1.0, 1.0]] * 4)
    np.testing.assert_array_equal(layer(x), np.full((4, 200), 3.0))
    np.testing.assert_array_equal(layer(x, training=False), np.full((4, 200), 3.0))
    out = layer(x, training=True).numpy()
    # Dropped units are 0; kept ones are scaled by 1 / (1 - rate).
    assert set(np.unique(out)) == {0.0, 6.0}
    assert 0.3 < (out == 0).mean() < 0.7


def _batch_normalized(z, epsilon):
    return (z - z.mean(0)) / np.sqrt(z.var(0) + epsilon)


def test_batch_norm_uses_batch_statistics_in_training_and_moving_ones_at_inference():
    layer = MLP([3], activation="linear", batch_norm=True)
    x = np.random.default_rng(3).normal(2.0, 3.0, size=(64, 5)).astype(np.float32)
    layer.build((None, 5))
    epsilon = layer.norms[0].epsilon
    z = x.astype(np.float64) @ value(layer.kernels[0])
    # Fresh moving statistics are mean 0, variance 1.
    np.testing.assert_allclose(layer(x), z / np.sqrt(1.0 + epsilon), rtol=1e-5, atol=1e-5)
    out = layer(x, training=True)
    assert out.shape == (64, 3)
    np.testing.assert_allclose(out, _batch_normalized(z, epsilon), rtol=1e-3, atol=1e-4)
    norm = layer.norms[0]
    np.testing.assert_allclose(value(norm.moving_mean), 0.01 * z.mean(0), rtol=1e-4)
    moving = (z - value(norm.moving_mean)) / np.sqrt(value(norm.moving_variance) + epsilon)
    np.testing.assert_allclose(layer(x, training=False), moving, rtol=1e-4, atol=1e-4)


def test_batch_norm_with_num_parallel_normalizes_each_member():
    layer = MLP([4, 3], batch_norm=True, num_parallel=2, activation="linear")
    x = np.random.default_rng(4).normal(size=(32, 2, 5)).astype(np.float32)
    out = layer(x, training=True)
    assert out.shape == (32, 2, 3)
    assert [tuple(n.gamma.shape) for n in layer.norms] == [(8,), (6,)]
    expected = x.astype(np.float64)
    for kernel, bias, norm in zip(layer.kernels, layer.biases, layer.norms):
        expected = _batch_normalized(np.einsum("bki,kio->bko", expected, value(kernel)) + value(bias), norm.epsilon)
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dims": [4, 3]},
        {"dims": [4, 3], "num_parallel": 2},
        {"dims": [4], "batch_norm": True},
        pytest.param({"dims": [4, 3], "batch_norm": True}),
        pytest.param({"dims": [4, 3], "batch_norm": True, "num_parallel": 2}),
    ],
    ids=["plain", "parallel", "batch_norm_one_layer", "batch_norm_two_layers", "parallel_batch_norm_two_layers"],
)
def test_weight_names_are_unique(kwargs):
    layer = MLP(**kwargs, name="mlp")
    layer(X)
    names = [v.name if LEGACY_KERAS else v.path for v in layer.weights]
    assert len(set(names)) == len(names), names


def test_compute_output_shape():
    assert tuple(MLP([4, 2]).compute_output_shape((None, 5))) == (None, 2)
    assert tuple(MLP([4, 2], num_parallel=3).compute_output_shape((None, 5))) == (None, 3, 2)
    inputs = keras.Input((5,))
    assert tuple(keras.Model(inputs, MLP([4, 2], num_parallel=3)(inputs)).output_shape) == (None, 3, 2)


def test_config_round_trip():
    layer = MLP([4, 2], activation="tanh", dropout=0.25, batch_norm=True, num_parallel=3, name="experts")
    config = layer.get_config()
    assert {k: config[k] for k in ("dims", "activation", "dropout", "batch_norm", "num_parallel")} == {
        "dims": [4, 2],
        "activation": "tanh",
        "dropout": 0.25,
        "batch_norm": True,
        "num_parallel": 3,
    }
    clone = MLP.from_config(config)
    layer(X)
    clone(X)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(X), layer(X))
    assert clone.get_config() == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dims": []}, "dims: expected a list of layer widths such as [256, 128]. Received: []"),
        ({"dims": "64"}, "dims: expected a list of layer widths such as [256, 128]. Received: '64'"),
        ({"dims": [4, 0]}, "dims[1]: expected a positive integer. Received: 0"),
        ({"dims": [4, True]}, "dims[1]: expected a positive integer. Received: True"),
        ({"dims": [4], "dropout": 1.0}, "dropout: expected a number in [0, 1). Received: 1.0"),
        ({"dims": [4], "dropout": -0.1}, "dropout: expected a number in [0, 1). Received: -0.1"),
        ({"dims": [4], "num_parallel": 0}, "num_parallel: expected a positive integer. Received: 0"),
        ({"dims": [4], "activation": "no_such_activation"}, "activation: expected a Keras activation name such as 'relu'. Received: 'no_such_activation'"),
        ({"dims": [4], "batch_norm": 1}, "batch_norm: expected true or false. Received: 1"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        MLP(**kwargs)
    assert str(info.value) == f"MLP: {message}"


def test_a_callable_activation_is_taken():
    layer = MLP([2], activation=tf.nn.relu6)
    assert layer.activation_fn is tf.nn.relu6


def test_check_mlp_params_returns_a_copy():
    params = {"dims": [8], "dropout": 0.1}
    checked = check_mlp_params(params, "expert_params")
    assert checked == params and checked is not params
    assert check_mlp_params(None, "tower_params", required=()) == {}


@pytest.mark.parametrize(
    "params, where, message",
    [
        ({"dim": [8]}, "expert_params", "expert_params.dim: unknown key; did you mean 'dims'?"),
        (
            {"dims": [8], "drop_out": 0.1},
            "tower_params_list[1]",
            "tower_params_list[1].drop_out: unknown key; did you mean 'dropout'?",
        ),
        (
            {"dims": [8], "zzz": 1},
            "bottom_params",
            "bottom_params.zzz: unknown key. Known keys: ['dims', 'activation', 'dropout', 'batch_norm']",
        ),
        ({"dropout": 0.1}, "expert_params", "expert_params.dims: required, e.g. {'dims': [64]}. Received: {'dropout': 0.1}"),
        (None, "expert_params", "expert_params.dims: required, e.g. {'dims': [64]}. Received: {}"),
        ([8], "expert_params", "expert_params: expected a mapping with keys among ['dims', 'activation', 'dropout', 'batch_norm']. Received: [8]"),
        ({"dims": [64, -1]}, "expert_params", "expert_params.dims[1]: expected a positive integer. Received: -1"),
        ({"dims": [64], "dropout": "0.1"}, "bottom_params", "bottom_params.dropout: expected a number in [0, 1). Received: '0.1'"),
        ({"dims": [64], "activation": {"class_name": "zzz"}}, "expert_params",
         "expert_params.activation: expected a Keras activation name such as 'relu'. Received: {'class_name': 'zzz'}"),
    ],
)
def test_check_mlp_params_errors(params, where, message):
    with pytest.raises(ValueError) as info:
        check_mlp_params(params, where)
    assert str(info.value) == message
