"""MGDA: Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018."""

import tensorflow as tf

from tf_mtl.weighting.base import LossWeighting, flatten

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def min_norm_weights(gram, max_iterations=250, tolerance=1e-6):
    """Frank-Wolfe for ``min_a ||sum_i a_i g_i||^2`` over the simplex, given ``gram[i, j] = g_i . g_j``.

    The paper's Algorithm 2: start at ``a = 1/T``; each step moves towards the vertex ``e_t``
    with the smallest ``(gram a)_t``, by the exact line search on the segment; stop when the
    step is shorter than ``tolerance``.
    """
    n = tf.shape(gram)[0]
    alpha = tf.fill([n], 1.0 / tf.cast(n, gram.dtype))

    def step(i, alpha, moved):
        t = tf.argmin(tf.linalg.matvec(gram, alpha))
        vertex = tf.one_hot(t, n, dtype=gram.dtype)
        # ||(1-g) u + g v||^2 with u = sum a_i g_i, v = g_t: minimum at g = (u.u - u.v) / ||u - v||^2.
        uu = tf.tensordot(alpha, tf.linalg.matvec(gram, alpha), 1)
        uv = tf.tensordot(alpha, gram[:, t], 1)
        vv = gram[t, t]
        gamma = tf.clip_by_value(tf.math.divide_no_nan(uu - uv, uu - 2.0 * uv + vv), 0.0, 1.0)
        update = (1.0 - gamma) * alpha + gamma * vertex
        return i + 1, update, tf.reduce_sum(tf.abs(update - alpha))

    _, alpha, _ = tf.while_loop(
        lambda i, alpha, moved: tf.logical_and(i < max_iterations, moved > tolerance),
        step,
        (tf.constant(0), alpha, tf.constant(float("inf"), gram.dtype)),
    )
    return alpha


class MGDA(LossWeighting):
    """The min-norm combination of the terms' gradients on the shared parameters.

    Finds ``a`` on the simplex minimizing ``||sum_i a_i grad_shared L_i||`` (Frank-Wolfe) and
    trains on ``sum_i a_i L_i``: the direction decreases every loss unless the point is Pareto
    stationary (then it is 0). Gradients are optionally normalized before solving, as in the
    paper's code: ``"l2"`` by their norm, ``"loss"`` by the loss, ``"loss+"`` by both.

    Args:
        normalization: one of ``"none"`` (the plain min-norm problem), ``"l2"``, ``"loss"``, ``"loss+"``.
        max_iterations, tolerance: of the Frank-Wolfe solver.
    """

    gradients = "shared"

    def __init__(self, normalization="none", max_iterations=250, tolerance=1e-6, name="mgda"):
        super().__init__(name=name)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"mgda: normalization must be one of {NORMALIZATIONS}. Received: {normalization!r}")
        self.normalization = normalization
        self.max_iterations = int(max_iterations)
        self.tolerance = float(tolerance)

    def weigh(self, losses, task_gradients=None):
        vectors = tf.stack([flatten(g) for g in task_gradients])
        scale = tf.ones_like(losses)
        if self.normalization in ("l2", "loss+"):
            scale *= tf.norm(vectors, axis=1)
        if self.normalization in ("loss", "loss+"):
            scale *= losses
        vectors = tf.math.divide_no_nan(vectors, scale[:, None])
        gram = tf.matmul(vectors, vectors, transpose_b=True)
        return self._weighted(tf.stop_gradient(min_norm_weights(gram, self.max_iterations, self.tolerance)))

    def get_config(self):
        return {"normalization": self.normalization, "max_iterations": self.max_iterations, "tolerance": self.tolerance}
