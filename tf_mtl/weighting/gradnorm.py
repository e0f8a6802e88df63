"""GradNorm: Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018."""

import tensorflow as tf

from tf_mtl.weighting.base import LossWeighting, _copy_optimizer, _state, flatten, replicas


class GradNorm(LossWeighting):
    """Weights learned so that each task's gradient norm on the last shared layer ``W`` tracks
    its relative training rate.

    With ``G_i = ||grad_W w_i L_i|| = w_i ||grad_W L_i||``, ``G = mean_i G_i``,
    ``r_i = (L_i / L_i(0)) / mean_k (L_k / L_k(0))``, the weights take a step on

        L_grad = sum_i | G_i - G * r_i^alpha |

    with the target ``G * r_i^alpha`` held constant (the paper's eq. 2), then are renormalized
    to sum to the number of terms (negative weights are set to 0 first; if none is left
    positive, the weights start again from 1). The model's step uses the weights from before the update.
    ``L_i(0)`` is the loss at the first step.

    Args:
        alpha: the restoring force's strength (the paper uses 0.12 to 3; 1.5 by default).
        learning_rate: the weights' learning rate; ``None``: the model optimizer's. The
            weights take their step with a copy of the model's optimizer.
    """

    gradients = "last_shared"

    def __init__(self, alpha=1.5, learning_rate=None, name="gradnorm"):
        super().__init__(name=name)
        if not alpha >= 0:
            raise ValueError(f"gradnorm: alpha must be >= 0. Received: alpha={alpha!r}")
        self.alpha = float(alpha)
        if learning_rate is not None and not learning_rate > 0:
            raise ValueError(f"gradnorm: learning_rate must be > 0. Received: learning_rate={learning_rate!r}")
        self.learning_rate = None if learning_rate is None else float(learning_rate)

    def _build(self, n_terms):
        # Trainable, so the method gets an optimizer; the model's gradient never reaches the
        # weights, as ``weigh`` hands the model a constant copy.
        self.task_weights = _state("task_weights", tf.ones([n_terms]), trainable=True)
        self.initial_losses = _state("initial_losses", tf.zeros([n_terms]))

    def weigh(self, losses, task_gradients=None):
        weights = tf.identity(self.task_weights)
        first = tf.equal(self.step, 0)
        self.initial_losses.assign(tf.where(first, losses, self.initial_losses))
        norms = tf.stack([tf.norm(flatten(g)) for g in task_gradients])
        inverse_rate = tf.math.divide_no_nan(losses, self.initial_losses)
        relative = tf.math.divide_no_nan(inverse_rate, tf.reduce_mean(inverse_rate))
        weighted_norms = weights * norms
        target = tf.stop_gradient(tf.reduce_mean(weighted_norms) * relative**self.alpha)
        # d L_grad / d w_i = sign(G_i - target_i) * ||grad_W L_i||
        gradient = tf.sign(weighted_norms - target) * norms
        # Every replica computed the same gradient and the optimizer sums them.
        return self._weighted(tf.stop_gradient(weights), variable_gradients=[gradient / float(replicas())])

    def apply_gradients(self, gradients):
        """The weights' step, then their renormalization to sum to the number of terms."""
        super().apply_gradients(gradients)
        updated = tf.nn.relu(self.task_weights)
        # A step that drives every weight to 0 would stay there: start again from equal weights.
        updated = tf.where(tf.reduce_sum(updated) > 0, updated, tf.ones_like(updated))
        n_terms = tf.cast(tf.size(updated), tf.float32)
        self.task_weights.assign(n_terms * updated / tf.reduce_sum(updated))

    def build(self, term_names, task_types, optimizer=None, gradient_variables=None):
        if self.learning_rate is not None and not self.built:
            # The rate goes into the config: an optimizer made with a LearningRateSchedule
            # refuses to have its rate set afterwards.
            optimizer = _copy_optimizer(optimizer)
            optimizer = type(optimizer).from_config({**optimizer.get_config(), "learning_rate": self.learning_rate})
        return super().build(term_names, task_types, optimizer, gradient_variables)

    def get_config(self):
        return {"alpha": self.alpha, "learning_rate": self.learning_rate}
