"""Per-example task losses. Their weighted mean over a batch is the model's ``loss_sums``
ratio, summed over replicas first (``tf_mtl.weighting.step``)."""

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
