"""GradNorm (Chen et al. 2018): ``weigh`` returns the weights' gradient, ``apply_gradients``
takes one optimizer step on them and renormalizes (what ``train_step`` does with them)."""

import numpy as np
import pytest

from tf_mtl.compat import keras
from tf_mtl.weighting import GradNorm

from ._reference import C, R, losses, task_gradients

# Gradients of the three terms on W with norms 1, 2 and 4.
NORMS = np.array([1.0, 2.0, 4.0])
GRADIENTS = task_gradients([1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 2, 0, 0], [0, 0, 4, 0, 0, 0, 0])


def build(alpha=1.5, learning_rate=None, optimizer_lr=0.1):
    method = GradNorm(alpha=alpha, learning_rate=learning_rate)
    return method.build(["a", "b", "c"], [C, C, R], keras.optimizers.SGD(optimizer_lr))


def step(method, *values):
    weighted = method.weigh(losses(*values), GRADIENTS)
    method.apply_gradients(weighted.variable_gradients)
    return weighted


def test_first_step_moves_the_weights_towards_the_mean_gradient_norm():
    method = build()
    weighted = step(method, 1.0, 2.0, 4.0)
    # The model's step uses the weights from before the update.
    np.testing.assert_array_equal(weighted.weights, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(method.initial_losses.numpy(), [1.0, 2.0, 4.0])
    # Step 0: every relative rate is 1, so the target is mean(G) = 7/3 for G = w * norms =
    # (1, 2, 4); dL_grad/dw_i = sign(G_i - 7/3) * norm_i = (-1, -2, +4); SGD(0.1) gives
    # (1.1, 1.2, 0.6), renormalized to sum to 3.
    (gradient,) = weighted.variable_gradients
    np.testing.assert_allclose(gradient, [-1.0, -2.0, 4.0], rtol=1e-6)
    expected = 3.0 * np.array([1.1, 1.2, 0.6]) / 2.9
    np.testing.assert_allclose(method.task_weights.numpy(), expected, rtol=1e-6)
    assert method.task_weights.numpy().sum() == pytest.approx(3.0)
    np.testing.assert_array_equal(method.current_weights(), [1.0, 1.0, 1.0])


def test_second_step_targets_the_relative_inverse_training_rates():
    method = build(alpha=1.5)
    step(method, 1.0, 2.0, 4.0)
    w1 = 3.0 * np.array([1.1, 1.2, 0.6]) / 2.9
    weighted = step(method, 0.5, 2.0, 2.0)
    np.testing.assert_allclose(weighted.weights, w1, rtol=1e-6)
    # L_i(t) / L_i(0) = (0.5, 1, 0.5), over its mean 2/3: r = (0.75, 1.5, 0.75).
    r = np.array([0.75, 1.5, 0.75])
    g = w1 * NORMS
    target = g.mean() * r**1.5
    moved = w1 - 0.1 * np.sign(g - target) * NORMS
    expected = 3.0 * moved / moved.sum()
    np.testing.assert_allclose(method.task_weights.numpy(), expected, rtol=1e-6)
    # The initial losses are those of the first step only.
    np.testing.assert_array_equal(method.initial_losses.numpy(), [1.0, 2.0, 4.0])


def test_learning_rate_overrides_the_optimizers():
    method = build(learning_rate=0.05, optimizer_lr=10.0)
    step(method, 1.0, 2.0, 4.0)
    expected = 3.0 * np.array([1.05, 1.1, 0.8]) / 2.95
    np.testing.assert_allclose(method.task_weights.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("learning_rate, expected", [(None, [1.1, 1.2, 0.6]), (0.05, [1.05, 1.1, 0.8])])
def test_a_model_optimizer_with_a_learning_rate_schedule(learning_rate, expected):
    # Its rate at step 0 is 0.1; an explicit learning_rate replaces the schedule.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    method = GradNorm(learning_rate=learning_rate).build(["a", "b", "c"], [C, C, R], keras.optimizers.SGD(schedule))
    step(method, 1.0, 2.0, 4.0)
    np.testing.assert_allclose(method.task_weights.numpy(), 3.0 * np.array(expected) / sum(expected), rtol=1e-6)


def test_negative_weights_are_set_to_zero_before_renormalizing():
    method = build(optimizer_lr=0.5)
    step(method, 1.0, 2.0, 4.0)
    # (1 + 0.5, 1 + 1, 1 - 2) -> (1.5, 2, 0) -> 3 * (1.5, 2, 0) / 3.5.
    np.testing.assert_allclose(method.task_weights.numpy(), [9 / 7, 12 / 7, 0.0], rtol=1e-6)


def test_alpha_zero_equalizes_the_weighted_gradient_norms():
    method = build(alpha=0.0, optimizer_lr=0.01)
    for _ in range(300):
        step(method, 1.0, 2.0, 4.0)
    weighted_norms = method.task_weights.numpy() * NORMS
    # w_i ||g_i|| equal for every term: w proportional to 1 / norm, summing to 3.
    np.testing.assert_allclose(method.task_weights.numpy(), 3.0 * (1 / NORMS) / (1 / NORMS).sum(), atol=0.03)
    assert weighted_norms.max() - weighted_norms.min() < 0.1


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="alpha=-1"):
        GradNorm(alpha=-1)
    with pytest.raises(ValueError, match="learning_rate=0"):
        GradNorm(learning_rate=0)
