"""MetaBalance: He, Feng, Cheng, Wang, Zhao, Zhang and Yang, "MetaBalance: Improving
Multi-Task Recommendations via Adapting Gradient Magnitudes of Auxiliary Tasks", WWW 2022."""

import tensorflow as tf

from tf_mtl.weighting.base import LossWeighting, _state


class MetaBalance(LossWeighting):
    """Scales the auxiliary terms' gradients on the shared parameters towards the target
    term's gradient magnitude (the paper's Algorithm 1), for each shared variable apart (the
    paper adapts "each part of the network"; its code keeps one average per parameter tensor).

    For a shared variable ``p``, moving averages of the norms,
    ``m_i(p) <- beta m_i(p) + (1 - beta) ||g_i(p)||``, set each auxiliary gradient to
    ``g_i(p) (m_target(p) / m_i(p)) r + g_i(p) (1 - r)``; ``p`` gets
    ``g_target(p) + sum_aux g_i(p)``, the other parameters the plain sum of the term gradients.
    The reported weight of a term is its scale averaged over the shared variables.

    Args:
        target: the target term's name (default: the first loss term).
        relax_factor: ``r`` in [0, 1]; 1 matches magnitudes fully, 0 leaves them as they are.
        beta: the moving averages' decay.
    """

    gradients = "shared"

    def __init__(self, target=None, relax_factor=0.7, beta=0.9, name="metabalance"):
        super().__init__(name=name)
        if not 0.0 <= relax_factor <= 1.0:
            raise ValueError(f"metabalance: relax_factor must be in [0, 1]. Received: {relax_factor!r}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"metabalance: beta must be in [0, 1). Received: {beta!r}")
        self.target = target
        self.relax_factor = float(relax_factor)
        self.beta = float(beta)

    def _build(self, n_terms):
        target = self.term_names[0] if self.target is None else self.target
        if target not in self.term_names:
            raise ValueError(f"metabalance: target {target!r} is not a loss term. The loss terms are {list(self.term_names)}.")
        if not self.gradient_variables:
            raise ValueError("metabalance: build it with the shared variables (gradient_variables=...).")
        self._target_index = self.term_names.index(target)
        self.norm_averages = _state("norm_averages", tf.zeros([n_terms, len(self.gradient_variables)]))

    def weigh(self, losses, task_gradients=None):
        # norms[i, p]: the norm of term i's gradient on shared variable p.
        norms = tf.stack([tf.stack([tf.norm(g) for g in gradients]) for gradients in task_gradients])
        averages = self.beta * self.norm_averages + (1.0 - self.beta) * norms
        self.norm_averages.assign(averages)
        ratio = tf.math.divide_no_nan(averages[self._target_index][None, :], averages)
        scale = ratio * self.relax_factor + (1.0 - self.relax_factor)
        is_target = tf.one_hot(self._target_index, len(task_gradients))[:, None] > 0
        scale = tf.where(is_target, 1.0, scale)
        combined = [
            tf.add_n([scale[i, p] * gradients[p] for i, gradients in enumerate(task_gradients)])
            for p in range(len(task_gradients[0]))
        ]
        return self._weighted(tf.ones_like(losses), shared_gradients=combined, effective=tf.reduce_mean(scale, axis=1))

    def get_config(self):
        return {"target": self.target, "relax_factor": self.relax_factor, "beta": self.beta}
