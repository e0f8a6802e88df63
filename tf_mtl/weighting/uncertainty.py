"""Uncertainty weighting: Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to
Weigh Losses for Scene Geometry and Semantics", CVPR 2018."""

import tensorflow as tf

from tf_mtl.weighting.base import LossWeighting, _state


class UncertaintyWeighting(LossWeighting):
    """Each term has a trainable log-variance ``s_i = log sigma_i^2``; the total loss is

        regression:      L_i / (2 sigma_i^2) + log sigma_i = 0.5 exp(-s_i) L_i + 0.5 s_i
        classification:  L_i / sigma_i^2     + log sigma_i =     exp(-s_i) L_i + 0.5 s_i

    (the paper's eq. 7 and 10). The log-variances are learned with the model and are not
    clamped, so a task's effective weight ``c_i exp(-s_i)`` is free in ``(0, inf)``.

    Args:
        initial_log_variance: starting ``s_i`` (0: every effective weight starts at 1, or 0.5
            for regression).
    """

    def __init__(self, initial_log_variance=0.0, name="uncertainty"):
        super().__init__(name=name)
        self.initial_log_variance = float(initial_log_variance)

    def _build(self, n_terms):
        self.log_variance = _state("log_variance", tf.fill([n_terms], self.initial_log_variance), trainable=True)
        self._scale = tf.constant([0.5 if t == "regression" else 1.0 for t in self.task_types], tf.float32)

    def current_weights(self):
        return self._scale * tf.exp(-self.log_variance)

    def weigh(self, losses, task_gradients=None):
        return self._weighted(self.current_weights(), 0.5 * tf.reduce_sum(self.log_variance))

    def get_config(self):
        return {"initial_log_variance": self.initial_log_variance}
