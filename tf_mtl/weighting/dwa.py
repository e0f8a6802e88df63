"""Dynamic Weight Average: Liu, Johns and Davison, "End-to-End Multi-Task Learning with
Attention", CVPR 2019."""

import tensorflow as tf

from tf_mtl.weighting.base import LossWeighting, _state


class DynamicWeightAverage(LossWeighting):
    """Weights from the rate at which each loss fell over the last two epochs:

        r_i = L_i(t-1) / L_i(t-2),   w_i(t) = K exp(r_i / T) / sum_k exp(r_k / T)

    with ``L_i`` the mean loss of an epoch and ``K`` the number of terms; ``w_i = 1`` for
    the first two epochs (the paper's eq. 3).

    Args:
        temperature: ``T`` (the paper uses 2); larger is softer.
    """

    def __init__(self, temperature=2.0, name="dwa"):
        super().__init__(name=name)
        if not temperature > 0:
            raise ValueError(f"dwa: temperature must be > 0. Received: temperature={temperature!r}")
        self.temperature = float(temperature)

    def _build(self, n_terms):
        self.epoch_loss_sum = _state("epoch_loss_sum", tf.zeros([n_terms]))
        self.epoch_steps = _state("epoch_steps", tf.constant(0.0))
        # Mean losses of the last two finished epochs, newest first; ``epochs``: how many finished.
        self.history = _state("history", tf.ones([2, n_terms]))
        self.epochs = _state("epochs", tf.constant(0, tf.int64))
        self.current = _state("weights", tf.ones([n_terms]))

    def weigh(self, losses, task_gradients=None):
        self.epoch_loss_sum.assign_add(losses)
        self.epoch_steps.assign_add(1.0)
        return self._weighted(tf.identity(self.current))

    def end_epoch(self):
        if float(self.epoch_steps.numpy()) == 0:
            return
        mean = self.epoch_loss_sum / self.epoch_steps
        self.history.assign(tf.stack([mean, self.history[0]]))
        self.epochs.assign_add(1)
        self.epoch_loss_sum.assign(tf.zeros_like(self.epoch_loss_sum))
        self.epoch_steps.assign(0.0)
        if int(self.epochs.numpy()) >= 2:
            rate = tf.math.divide_no_nan(self.history[0], self.history[1])
            n_terms = tf.cast(tf.size(rate), tf.float32)
            self.current.assign(n_terms * tf.nn.softmax(rate / self.temperature))

    def get_config(self):
        return {"temperature": self.temperature}
