"""MetaBalance: He, Feng, Cheng, Wang, Zhao, Zhang and Yang, "MetaBalance: Improving
Multi-Task Recommendations via Adapting Gradient Magnitudes of Auxiliary Tasks", WWW 2022."""

import tensorflow as tf

from tf_mtl.weighting.base import LossWeighting, _state, flatten, unflatten


class MetaBalance(LossWeighting):
    """Scales the auxiliary terms' gradients on the shared parameters towards the target
    term's gradient magnitude (the paper's Algorithm 1).

    Moving averages of the norms, ``m_i <- beta m_i + (1 - beta) ||g_i||``, set each
    auxiliary gradient to ``g_i (m_target / m_i) r + g_i (1 - r)``; the shared parameters get
    ``g_target + sum_aux g_i``, the other parameters the plain sum of the term gradients.

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
        self._target_index = self.term_names.index(target)
        self.norm_averages = _state("norm_averages", tf.zeros([n_terms]))

    def weigh(self, losses, task_gradients=None):
        vectors = [flatten(g) for g in task_gradients]
        norms = tf.stack([tf.norm(v) for v in vectors])
        averages = self.beta * self.norm_averages + (1.0 - self.beta) * norms
        self.norm_averages.assign(averages)
        ratio = tf.math.divide_no_nan(averages[self._target_index], averages)
        scale = ratio * self.relax_factor + (1.0 - self.relax_factor)
        scale = tf.tensor_scatter_nd_update(scale, [[self._target_index]], [1.0])
        combined = tf.add_n([scale[i] * v for i, v in enumerate(vectors)])
        return self._weighted(
            tf.ones_like(losses), shared_gradients=unflatten(combined, task_gradients[0]), effective=scale
        )

    def get_config(self):
        return {"target": self.target, "relax_factor": self.relax_factor, "beta": self.beta}
