"""Tests of GatedMixture: softmax gate weights, expert mixing and gate dropout."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.layers.gate import GatedMixture

from ._reference import random_weights, softmax, value

RNG = np.random.default_rng(0)
EXPERTS = RNG.normal(size=(8, 3, 4)).astype(np.float32)
GATE_INPUT = RNG.normal(size=(8, 5)).astype(np.float32)


def _reference(layer, experts, gate_input):
    weights = softmax(gate_input.astype(np.float64) @ value(layer.gate.kernel) + value(layer.gate.bias))
    return np.einsum("be,bed->bd", weights, experts), weights


def test_weights_are_softmax_and_mixed_is_their_einsum_with_experts():
    layer = GatedMixture(3)
    layer([EXPERTS, GATE_INPUT])
    assert tuple(layer.gate.kernel.shape) == (5, 3)
    random_weights(layer, seed=1)
    mixed, weights = layer([EXPERTS, GATE_INPUT])
    assert mixed.shape == (8, 4) and weights.shape == (8, 3)
    expected_mixed, expected_weights = _reference(layer, EXPERTS, GATE_INPUT)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5)
    np.testing.assert_allclose(np.sum(weights, axis=-1), np.ones(8), rtol=1e-6)
    np.testing.assert_allclose(mixed, expected_mixed, rtol=1e-5, atol=1e-6)


def test_zero_gate_averages_the_experts():
    layer = GatedMixture(3)
    layer.build([(None, 3, 4), (None, 5)])
    layer.gate.kernel.assign(tf.zeros((5, 3)))
    mixed, weights = layer([EXPERTS, GATE_INPUT])
    np.testing.assert_allclose(weights, np.full((8, 3), 1 / 3), rtol=1e-6)
    np.testing.assert_allclose(mixed, EXPERTS.mean(axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [None, False])
def test_no_gate_dropout_at_inference(training):
    layer = GatedMixture(3, gate_dropout=0.9)
    layer([EXPERTS, GATE_INPUT])
    random_weights(layer, seed=2)
    mixed, weights = layer([EXPERTS, GATE_INPUT], training=training)
    expected_mixed, expected_weights = _reference(layer, EXPERTS, GATE_INPUT)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5)
    np.testing.assert_allclose(mixed, expected_mixed, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_experts, rate", [(2, 0.5), (4, 0.3)])
def test_gate_dropout_in_training_renormalizes_kept_weights(num_experts, rate):
    tf.random.set_seed(0)
    batch = 2048
    experts = np.random.default_rng(3).normal(size=(batch, num_experts, 2)).astype(np.float32)
    gate_input = np.random.default_rng(4).normal(size=(batch, 5)).astype(np.float32)
    layer = GatedMixture(num_experts, gate_dropout=rate)
    _, undropped = layer([experts, gate_input])
    undropped = undropped.numpy().astype(np.float64)
    mixed, weights = layer([experts, gate_input], training=True)
    weights = weights.numpy().astype(np.float64)
    np.testing.assert_allclose(weights.sum(axis=-1), np.ones(batch), rtol=1e-5)
    # Softmax weights are never 0, so the zeros are exactly the dropped experts; a row where every
    # expert was dropped keeps its undropped weights (no zero at all), which the same formula covers.
    kept = weights > 0
    expected = undropped * kept / (undropped * kept).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(mixed, np.einsum("be,bed->bd", weights, experts), rtol=1e-5, atol=1e-6)
    # A weight is 0 when dropped in a row where not all were: rate * (1 - rate ** (n - 1)).
    zero_fraction = (weights == 0).mean()
    assert abs(zero_fraction - rate * (1 - rate ** (num_experts - 1))) < 0.03
    # Rows without a zero (nothing or everything dropped) hold exactly the undropped weights.
    full = kept.all(axis=-1)
    assert full.any() and not full.all()
    np.testing.assert_allclose(weights[full], undropped[full], rtol=1e-5)


def test_gate_dropout_all_dropped_rows_keep_undropped_weights():
    tf.random.set_seed(1)
    layer = GatedMixture(2, gate_dropout=0.95)
    experts = np.ones((256, 2, 1), np.float32)
    gate_input = np.random.default_rng(5).normal(size=(256, 5)).astype(np.float32)
    _, undropped = layer([experts, gate_input])
    _, weights = layer([experts, gate_input], training=True)
    rows = np.all(weights.numpy() > 0, axis=-1)
    # With rate 0.95 almost every row loses both experts and falls back to its undropped weights.
    assert rows.mean() > 0.8
    np.testing.assert_allclose(weights.numpy()[rows], undropped.numpy()[rows], rtol=1e-6)


def test_in_a_functional_model():
    experts, gate_input = keras.Input((3, 4)), keras.Input((5,))
    mixed, weights = GatedMixture(3, name="gate")([experts, gate_input])
    model = keras.Model([experts, gate_input], [mixed, weights])
    assert [tuple(s) for s in model.output_shape] == [(None, 4), (None, 3)]
    layer = model.get_layer("gate")
    out_mixed, out_weights = model([EXPERTS, GATE_INPUT])
    expected_mixed, expected_weights = _reference(layer, EXPERTS, GATE_INPUT)
    np.testing.assert_allclose(out_mixed, expected_mixed, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_weights, expected_weights, rtol=1e-5)


def test_config_round_trip():
    layer = GatedMixture(3, gate_dropout=0.2, name="g")
    config = layer.get_config()
    assert (config["num_experts"], config["gate_dropout"], config["name"]) == (3, 0.2, "g")
    clone = GatedMixture.from_config(config)
    layer([EXPERTS, GATE_INPUT])
    clone([EXPERTS, GATE_INPUT])
    clone.set_weights(layer.get_weights())
    for a, b in zip(clone([EXPERTS, GATE_INPUT]), layer([EXPERTS, GATE_INPUT])):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_experts": 0}, "num_experts: expected a positive integer. Received: 0"),
        ({"num_experts": 2.0}, "num_experts: expected a positive integer. Received: 2.0"),
        ({"num_experts": 2, "gate_dropout": 1.0}, "gate_dropout: expected a number in [0, 1). Received: 1.0"),
        ({"num_experts": 2, "gate_dropout": -0.5}, "gate_dropout: expected a number in [0, 1). Received: -0.5"),
        ({"num_experts": 2, "gate_dropout": "0.1"}, "gate_dropout: expected a number in [0, 1). Received: '0.1'"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        GatedMixture(**kwargs)
    assert str(info.value) == f"GatedMixture: {message}"


def test_wrong_number_of_experts():
    with pytest.raises(ValueError, match=r"expected 2 experts\. Received experts of shape"):
        GatedMixture(2).build([(None, 3, 4), (None, 5)])
