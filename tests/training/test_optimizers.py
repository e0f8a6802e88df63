"""LazyAdam: Keras' Adam on dense gradients, row-wise updates on embedding tables."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.training import LazyAdam, make_optimizer


def _rows(gradient, indices, rows=6):
    return tf.IndexedSlices(tf.constant(gradient, tf.float32), tf.constant(indices, tf.int64), tf.constant([rows, 2], tf.int64))


def _apply(optimizer, variable, gradients):
    for gradient in gradients:
        optimizer.apply_gradients([(gradient, variable)])
    return variable.numpy()


def _table():
    return tf.Variable(np.arange(12, dtype=np.float32).reshape(6, 2) / 10)


def test_dense_gradients_get_keras_adams_formula():
    gradients = [tf.constant([[0.5, -1.0], [0.2, 0.0]]), tf.constant([[-0.3, 0.1], [0.4, 2.0]])]
    kwargs = {"learning_rate": 0.1, "weight_decay": 0.01}
    lazy = _apply(LazyAdam(**kwargs), tf.Variable(np.ones((2, 2), np.float32)), gradients)
    dense = _apply(keras.optimizers.Adam(**kwargs), tf.Variable(np.ones((2, 2), np.float32)), gradients)
    # One fused kernel (ResourceApplyAdam) rounds differently from Keras' separate ops.
    np.testing.assert_allclose(lazy, dense, rtol=1e-5)


def test_rows_used_every_step_move_as_with_dense_adam_and_the_others_stay():
    steps = [_rows([[1.0, -1.0], [0.5, 0.2]], [1, 4]), _rows([[-0.2, 0.3], [0.1, 0.1]], [1, 4])]
    optimizer, table = LazyAdam(learning_rate=0.1), _table()
    lazy = _apply(optimizer, table, steps)
    dense = _apply(keras.optimizers.Adam(learning_rate=0.1), _table(), [tf.convert_to_tensor(g) for g in steps])
    np.testing.assert_allclose(lazy[[1, 4]], dense[[1, 4]], atol=1e-5)
    np.testing.assert_array_equal(lazy[[0, 2, 3, 5]], _table().numpy()[[0, 2, 3, 5]])
    # Dense Adam keeps moving a row after its last use (momentum); the lazy one does not.
    after = _apply(optimizer, table, [_rows([[1.0, 1.0]], [0])])
    np.testing.assert_array_equal(after[[1, 4]], lazy[[1, 4]])
    assert not np.allclose(after[0], lazy[0])


def test_repeated_rows_are_summed_first():
    repeated = _apply(LazyAdam(learning_rate=0.1), _table(), [_rows([[1.0, 0.0], [0.5, 2.0], [0.0, 1.0]], [2, 2, 3])])
    summed = _apply(LazyAdam(learning_rate=0.1), _table(), [_rows([[1.5, 2.0], [0.0, 1.0]], [2, 3])])
    np.testing.assert_allclose(repeated, summed, rtol=1e-6)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_weight_decay_and_amsgrad_touch_the_used_rows_only(amsgrad):
    start = _table().numpy()
    table = _apply(LazyAdam(learning_rate=0.1, weight_decay=0.5, amsgrad=amsgrad), _table(), [_rows([[0.0, 0.0]], [5])])
    # A zero gradient leaves Adam's step at 0: what moves row 5 is the decay, lr * 0.5 of it.
    np.testing.assert_allclose(table[5], start[5] * (1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(table[:5], start[:5])


def test_make_optimizer_defaults_to_lazy_adam_and_names_keras_adam():
    assert type(make_optimizer(None, {"lr": 0.01})) is LazyAdam
    assert type(make_optimizer("lazy_adam")) is LazyAdam
    assert type(make_optimizer("adam")) is keras.optimizers.Adam


def test_a_compiled_model_keeps_lazy_adam_through_its_config():
    optimizer = LazyAdam(learning_rate=0.02, weight_decay=1e-4)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is LazyAdam
    assert float(restored.learning_rate) == pytest.approx(0.02) and restored.weight_decay == pytest.approx(1e-4)
