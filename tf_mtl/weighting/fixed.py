"""Fixed loss weights (equal by default)."""

import tensorflow as tf

from tf_mtl.errors import did_you_mean
from tf_mtl.weighting.base import LossWeighting


class FixedWeighting(LossWeighting):
    """Total loss ``sum_i w_i * L_i`` with constant weights.

    Args:
        weights: ``None`` (every term weighs 1), a list in loss-term order or a dict keyed by
            loss-term name (missing terms weigh 1).

    Example: ``FixedWeighting({"ctr": 1.0, "ctcvr": 2.0})``.
    """

    def __init__(self, weights=None, name="fixed"):
        super().__init__(name=name)
        if isinstance(weights, (list, tuple)):
            weights = [float(w) for w in weights]
        elif isinstance(weights, dict):
            weights = {str(k): float(v) for k, v in weights.items()}
        elif weights is not None:
            raise ValueError(f"fixed weights must be a list or a dict keyed by loss term. Received: {weights!r}")
        self.weights = weights

    def _build(self, n_terms):
        weights = self.weights
        if weights is None:
            weights = [1.0] * n_terms
        elif isinstance(weights, dict):
            for name in weights:
                if name not in self.term_names:
                    raise ValueError(
                        f"fixed weights: {name!r} is not a loss term of this model"
                        + did_you_mean(name, self.term_names, "Loss terms")
                    )
            weights = [weights.get(name, 1.0) for name in self.term_names]
        elif len(weights) != n_terms:
            raise ValueError(
                f"fixed weights has {len(weights)} values for the {n_terms} loss terms {list(self.term_names)}."
            )
        self._constant = tf.constant(weights, tf.float32)

    def current_weights(self):
        return self._constant

    def weigh(self, losses, task_gradients=None):
        return self._weighted(self._constant)

    def get_config(self):
        return {"weights": self.weights}
