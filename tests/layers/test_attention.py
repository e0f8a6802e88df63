"""Tests of InformationTransfer, AITM's adaptive information transfer module."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import LEGACY_KERAS, keras
from tf_mtl.layers.attention import InformationTransfer

from ._reference import random_weights, relu, softmax, value

RNG = np.random.default_rng(0)
OWN = RNG.normal(size=(7, 5)).astype(np.float32)  # q_t
PREVIOUS = RNG.normal(size=(7, 6)).astype(np.float32)  # z_{t-1}, another width


def _reference(layer, own, previous):
    """The docstring's formula: p = relu(W z + b); w_u = softmax_u(<h1 u, h2 u> / sqrt(k)); z_t = sum_u w_u h3 u."""
    p = relu(previous.astype(np.float64) @ value(layer.transfer.kernel) + value(layer.transfer.bias))
    candidates = np.stack([p, own.astype(np.float64)], axis=1)
    h1, h2, h3 = (candidates @ value(d.kernel) for d in (layer.query, layer.key, layer.value))
    weights = softmax((h1 * h2).sum(-1) / math.sqrt(layer.attention_dim))
    return (weights[..., None] * h3).sum(1), weights


def test_weight_shapes():
    layer = InformationTransfer(4)
    layer([OWN, PREVIOUS])
    assert tuple(layer.transfer.kernel.shape) == (6, 5) and tuple(layer.transfer.bias.shape) == (5,)
    for dense in (layer.query, layer.key, layer.value):
        assert tuple(dense.kernel.shape) == (5, 4) and not dense.use_bias
    assert len(layer.weights) == 5


@pytest.mark.parametrize("attention_dim, seed", [(4, 1), (1, 2), (16, 3)])
def test_output_equals_numpy_formula(attention_dim, seed):
    layer = InformationTransfer(attention_dim)
    layer([OWN, PREVIOUS])
    random_weights(layer, seed=seed, scale=0.7)
    z, weights = layer([OWN, PREVIOUS])
    assert z.shape == (7, attention_dim) and weights.shape == (7, 2)
    expected_z, expected_weights = _reference(layer, OWN, PREVIOUS)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.sum(weights, axis=-1), np.ones(7), rtol=1e-6)
    np.testing.assert_allclose(z, expected_z, rtol=1e-5, atol=1e-6)


def test_known_weights():
    """With identity projections and a transfer that outputs 0, the own representation gets all weight."""
    own = np.array([[3.0, 0.0]], np.float32)
    layer = InformationTransfer(2)
    layer([own, own])
    for dense in (layer.query, layer.key, layer.value):
        dense.kernel.assign(tf.eye(2))
    layer.transfer.kernel.assign(tf.zeros((2, 2)))
    z, weights = layer([own, own])
    # Scores: <0, 0> / sqrt(2) = 0 for the transferred zeros, 9 / sqrt(2) for [3, 0].
    w_own = 1.0 / (1.0 + math.exp(-9.0 / math.sqrt(2.0)))
    np.testing.assert_allclose(weights, [[1.0 - w_own, w_own]], rtol=1e-6)
    np.testing.assert_allclose(z, [[3.0 * w_own, 0.0]], rtol=1e-6)


def test_in_a_functional_model():
    own, previous = keras.Input((5,)), keras.Input((6,))
    layer = InformationTransfer(3, name="ait")
    z, weights = layer([own, previous])
    model = keras.Model([own, previous], [z, weights])
    assert [tuple(s) for s in model.output_shape] == [(None, 3), (None, 2)]
    expected_z, expected_weights = _reference(layer, OWN, PREVIOUS)
    out_z, out_weights = model([OWN, PREVIOUS])
    np.testing.assert_allclose(out_z, expected_z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_weights, expected_weights, rtol=1e-5, atol=1e-7)


def test_config_round_trip():
    layer = InformationTransfer(3, name="ait")
    config = layer.get_config()
    assert config["attention_dim"] == 3
    clone = InformationTransfer.from_config(config)
    layer([OWN, PREVIOUS])
    clone([OWN, PREVIOUS])
    clone.set_weights(layer.get_weights())
    for a, b in zip(clone([OWN, PREVIOUS]), layer([OWN, PREVIOUS])):
        np.testing.assert_array_equal(a, b)


def _weight_names(layer):
    return [v.name if LEGACY_KERAS else v.path for v in layer.weights]


def test_weight_names_are_unique():
    layer = InformationTransfer(3, name="ait")
    layer([OWN, PREVIOUS])
    names = _weight_names(layer)
    assert len(set(names)) == len(names), names


def test_weights_file_round_trip(tmp_path):
    """Keras 2 writes HDF5 weights by name (``.h5``), Keras 3 by path (``.weights.h5``)."""

    def build():
        own, previous = keras.Input((5,)), keras.Input((6,))
        z, _ = InformationTransfer(3)([own, previous])
        return keras.Model([own, previous], z)

    model, clone = build(), build()
    path = str(tmp_path / ("model.h5" if LEGACY_KERAS else "model.weights.h5"))
    model.save_weights(path)
    clone.load_weights(path)
    np.testing.assert_array_equal(clone([OWN, PREVIOUS]), model([OWN, PREVIOUS]))


@pytest.mark.parametrize("attention_dim", [0, -1, 2.0, None])
def test_argument_errors(attention_dim):
    with pytest.raises(ValueError) as info:
        InformationTransfer(attention_dim)
    assert str(info.value) == f"InformationTransfer: attention_dim: expected a positive integer. Received: {attention_dim!r}"
