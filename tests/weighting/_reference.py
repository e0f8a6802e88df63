"""Inputs the weighting tests hand to ``weigh``, and what they read back."""

import numpy as np
import tensorflow as tf

C, R = "classification", "regression"
# Two shared variables per term (a 2x2 kernel and a bias of 3) so that flattening and
# unflattening are exercised; the vectors below are their concatenation.
SHAPES = ((2, 2), (3,))


def task_gradients(*vectors):
    """One gradient list per term, shaped like ``SHAPES``, from flat vectors of 7 values."""
    result = []
    for vector in vectors:
        vector = np.asarray(vector, np.float32)
        result.append([tf.constant(vector[:4].reshape(2, 2)), tf.constant(vector[4:])])
    return result


def flat(gradients):
    """The concatenation of a gradient list as float64 numpy."""
    return np.concatenate([np.asarray(g, np.float64).reshape(-1) for g in gradients])


def losses(*values):
    return tf.constant(values, tf.float32)
