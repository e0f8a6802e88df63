"""UncertaintyWeighting (Kendall et al. 2018): weights c_i exp(-s_i), regularizer sum_i s_i / 2."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.weighting import UncertaintyWeighting

from ._reference import C, R, losses


def test_weights_and_regularizer_equal_the_papers_eq_7_and_10():
    method = UncertaintyWeighting(initial_log_variance=0.3).build(["ctr", "time"], [C, R], keras.optimizers.SGD(1.0))
    weighted = method.weigh(losses(0.6, 2.0))
    # Classification: 1 / sigma^2 = exp(-s); regression: 1 / (2 sigma^2) = exp(-s) / 2.
    expected = np.array([np.exp(-0.3), 0.5 * np.exp(-0.3)])
    np.testing.assert_allclose(weighted.weights, expected, rtol=1e-6)
    # log sigma_1 + log sigma_2 = (s_1 + s_2) / 2.
    assert float(weighted.regularizer) == pytest.approx(0.3, rel=1e-6)
    np.testing.assert_allclose(weighted.effective, expected, rtol=1e-6)
    np.testing.assert_allclose(method.current_weights(), expected, rtol=1e-6)
    assert weighted.shared_gradients is None


def test_log_variances_take_one_sgd_step_on_the_weighted_loss():
    method = UncertaintyWeighting(initial_log_variance=0.3).build(["ctr", "time"], [C, R], keras.optimizers.SGD(0.5))
    values = losses(0.6, 2.0)
    with tf.GradientTape() as tape:
        weighted = method.weigh(values)
        total = tf.tensordot(weighted.weights, values, 1) + weighted.regularizer
    method.apply_gradients(tape.gradient(total, method.trainable_variables))
    # d/ds_i (c_i exp(-s_i) L_i + s_i / 2) = -c_i exp(-s_i) L_i + 1/2.
    s = np.array([0.3, 0.3])
    c = np.array([1.0, 0.5])
    expected = s - 0.5 * (-c * np.exp(-s) * np.array([0.6, 2.0]) + 0.5)
    np.testing.assert_allclose(method.log_variance.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(method.current_weights(), c * np.exp(-expected), rtol=1e-6)


def test_the_method_optimizer_is_a_copy_without_weight_decay():
    model_optimizer = keras.optimizers.SGD(0.25, weight_decay=0.1)
    method = UncertaintyWeighting().build(["a"], [C], model_optimizer)
    assert method.optimizer is not model_optimizer
    assert type(method.optimizer) is type(model_optimizer)
    assert float(tf.convert_to_tensor(method.optimizer.learning_rate)) == pytest.approx(0.25)
    assert not method.optimizer.get_config().get("weight_decay")
