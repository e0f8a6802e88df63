"""Per-example task losses, and their (masked, weighted) mean over a batch."""

import tensorflow as tf

# Keras clips probabilities by the same epsilon in its binary cross-entropy.
EPSILON = 1e-7


def log_loss(labels, probabilities):
    """Binary cross-entropy of probabilities, per example."""
    p = tf.clip_by_value(probabilities, EPSILON, 1.0 - EPSILON)
    return -(labels * tf.math.log(p) + (1.0 - labels) * tf.math.log(1.0 - p))


def squared_error(labels, predictions):
    return tf.square(labels - predictions)


TASK_LOSSES = {"classification": log_loss, "regression": squared_error}


def weighted_mean(values, weights=None):
    """Mean of ``values`` weighted by ``weights`` (a mask, sample weights or both); 0 if no weight."""
    if weights is None:
        return tf.reduce_mean(values)
    weights = tf.cast(weights, values.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))
