"""PCGrad: Yu, Kumar, Gupta, Levine, Hausman and Finn, "Gradient Surgery for Multi-Task
Learning", NeurIPS 2020."""

import tensorflow as tf

from tf_mtl.weighting.base import LossWeighting, flatten, unflatten


class PCGrad(LossWeighting):
    """Projects away conflicts between the terms' gradients.

    For each term ``i``, for each other term ``j`` (in random order), if ``g_i . g_j < 0``:
    ``g_i <- g_i - (g_i . g_j) / ||g_j||^2 g_j`` (``g_j`` the original gradient); the model
    steps along ``sum_i g_i``. As in the paper's code, the gradients span every trainable
    parameter: their dot products meet only on the shared ones, but ``||g_j||^2`` and the
    projection include task ``j``'s own tower.

    Args:
        shuffle: visit the other terms in a random order each step (the paper); ``False``: in
            loss-term order. The order is seeded by ``seed`` and the step number, so a resumed
            run repeats it.
        seed: the order's seed.
    """

    gradients = "all"

    def __init__(self, shuffle=True, seed=0, name="pcgrad"):
        super().__init__(name=name)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    def weigh(self, losses, task_gradients=None):
        originals = [flatten(g) for g in task_gradients]
        n = len(originals)
        stacked = tf.stack(originals)
        projected = []
        for i in range(n):
            g = originals[i]
            others = tf.constant([j for j in range(n) if j != i], tf.int32)
            if self.shuffle and n > 2:
                seed = tf.stack([tf.cast(self.seed + i, tf.int64), self.step])
                others = tf.gather(others, tf.argsort(tf.random.stateless_uniform([n - 1], seed)))
            for k in range(n - 1):
                other = tf.gather(stacked, others[k])
                dot = tf.tensordot(g, other, 1)
                g = g - tf.minimum(dot, 0.0) * tf.math.divide_no_nan(other, tf.tensordot(other, other, 1))
            projected.append(g)
        combined = unflatten(tf.add_n(projected), task_gradients[0])
        return self._weighted(tf.ones_like(losses), shared_gradients=combined)

    def get_config(self):
        return {"shuffle": self.shuffle, "seed": self.seed}

