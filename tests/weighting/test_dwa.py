"""DynamicWeightAverage (Liu et al. 2019): weights from the last two epochs' mean losses."""

import numpy as np
import pytest

from tf_mtl.weighting import DynamicWeightAverage

from ._reference import C, R, losses


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def run_epoch(method, *steps):
    weights = [method.weigh(losses(*values)).weights.numpy() for values in steps]
    method.end_epoch()
    return weights


def test_weights_over_three_epochs():
    method = DynamicWeightAverage(temperature=2.0).build(["ctr", "cvr", "time"], [C, C, R])
    # Epoch means: (1, 2, 4), then (0.5, 1.5, 4), then (0.25, 1.5, 1).
    first = run_epoch(method, (1.0, 1.0, 5.0), (1.0, 3.0, 3.0))
    second = run_epoch(method, (0.5, 1.0, 4.0), (0.5, 2.0, 4.0))
    # The first two epochs weigh every term 1 (the paper's w_k(1) = w_k(2) = 1).
    np.testing.assert_array_equal(first, np.ones((2, 3)))
    np.testing.assert_array_equal(second, np.ones((2, 3)))
    # Epoch 3: r = L(2) / L(1) = (0.5, 0.75, 1); w = K exp(r / T) / sum exp(r / T).
    third_expected = 3.0 * softmax(np.array([0.5, 0.75, 1.0]) / 2.0)
    third = run_epoch(method, (0.25, 1.0, 1.0), (0.25, 2.0, 1.0))
    np.testing.assert_allclose(third, [third_expected, third_expected], rtol=1e-6)
    # After epoch 3: r = L(3) / L(2) = (0.5, 1, 0.25).
    fourth_expected = 3.0 * softmax(np.array([0.5, 1.0, 0.25]) / 2.0)
    np.testing.assert_allclose(method.weigh(losses(1.0, 1.0, 1.0)).weights, fourth_expected, rtol=1e-6)
    np.testing.assert_allclose(method.current_weights(), fourth_expected, rtol=1e-6)
    assert int(method.epochs.numpy()) == 3


def test_a_lower_temperature_sharpens_the_weights():
    weights = {}
    for temperature in (0.5, 2.0, 100.0):
        method = DynamicWeightAverage(temperature=temperature).build(["a", "b"], [C, C])
        run_epoch(method, (1.0, 1.0))
        run_epoch(method, (0.5, 1.0))
        weights[temperature] = method.weigh(losses(1.0, 1.0)).weights.numpy()
        np.testing.assert_allclose(weights[temperature], 2.0 * softmax(np.array([0.5, 1.0]) / temperature), rtol=1e-6)
    assert weights[0.5][1] > weights[2.0][1] > weights[100.0][1] > 1.0


def test_an_epoch_without_steps_changes_nothing():
    method = DynamicWeightAverage().build(["a", "b"], [C, C])
    run_epoch(method, (1.0, 1.0))
    method.end_epoch()
    method.end_epoch()
    assert int(method.epochs.numpy()) == 1
    run_epoch(method, (0.5, 2.0))
    expected = 2.0 * softmax(np.array([0.5, 2.0]) / 2.0)
    # current_weights reports the last step's weights until a step uses the new ones.
    np.testing.assert_array_equal(method.current_weights(), [1.0, 1.0])
    np.testing.assert_allclose(method.weigh(losses(1.0, 1.0)).weights, expected, rtol=1e-6)


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature=0"):
        DynamicWeightAverage(temperature=0)
