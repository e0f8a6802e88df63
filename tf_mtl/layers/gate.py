"""Gate x expert pooling: the one place where a softmax gate mixes a group of experts.

Used by MMoE and OMoE (Ma et al., KDD 2018) and by every gate of PLE's extraction levels
(Tang et al., RecSys 2020).
"""

import tensorflow as tf

from tf_mtl import compat
from tf_mtl.compat import build_sublayer, keras, register
from tf_mtl.features.spec import check_rate, positive_int


@register
class GatedMixture(keras.layers.Layer):
    """Mixes experts with softmax weights computed from a gate input.

    ``g = softmax(W x + b)``, output ``sum_e g_e * expert_e``.

    Gate dropout (Zhao et al., "Recommending What Video to Watch Next", RecSys 2019): while
    training, each expert's weight is dropped with probability ``gate_dropout`` and the rest
    are renormalized to sum to 1, so no task learns to lean on a single expert. If every
    weight of a row is dropped, the row keeps its undropped weights.

    Args:
        num_experts: size of the expert group.
        gate_dropout: probability of dropping an expert's weight while training.

    Inputs: ``[experts, gate_input]`` of shapes ``(batch, num_experts, d)`` and
    ``(batch, d_gate)``; ``experts`` may also be a list of groups ``(batch, n_i, d)``, in
    order, whose ``n_i`` sum to ``num_experts`` (PLE's own and shared experts: mixed group by
    group, they need no concatenation). Returns ``(mixed, weights)`` of shapes ``(batch, d)``
    and ``(batch, num_experts)``.
    """

    def __init__(self, num_experts, gate_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_experts = positive_int(num_experts, "num_experts", "GatedMixture")
        self.gate_dropout = check_rate(gate_dropout, "gate_dropout", "GatedMixture")
        # Its kernel and bias give the logits; the softmax is taken in call (see there).
        self.gate = keras.layers.Dense(num_experts, name="gate")
        # Draws the keep mask from a Dropout layer: its random state is checkpointed, so a
        # resumed run drops the same experts as an uninterrupted one.
        self.mask = compat.dropout(gate_dropout, name="gate_mask") if gate_dropout else None

    def build(self, input_shape):
        experts_shape, gate_shape = input_shape
        groups = _groups(experts_shape)
        if sum(shape[1] for shape in groups) != self.num_experts:
            raise ValueError(
                f"GatedMixture: expected {self.num_experts} experts. Received experts of shape "
                f"{groups[0] if len(groups) == 1 else groups}"
            )
        build_sublayer(self.gate, gate_shape)
        self.built = True

    def call(self, inputs, training=None):
        experts, gate_input = inputs
        # The gate's softmax by hand: oneDNN's softmax of a few columns takes 0.2 ms of a batch.
        logits = tf.matmul(tf.cast(gate_input, self.gate.compute_dtype), tf.cast(self.gate.kernel, self.gate.compute_dtype))
        logits = logits + tf.cast(self.gate.bias, self.gate.compute_dtype)
        scores = tf.exp(logits - tf.reduce_max(logits, axis=-1, keepdims=True))
        weights = scores / tf.reduce_sum(scores, axis=-1, keepdims=True)
        if training and self.gate_dropout:
            keep = tf.cast(self.mask(tf.ones_like(weights), training=True) > 0, weights.dtype)
            kept = weights * keep
            total = tf.reduce_sum(kept, axis=-1, keepdims=True)
            weights = tf.where(total > 0, kept / tf.maximum(total, 1e-12), weights)
        groups = _groups(experts)
        parts = tf.split(weights, [group.shape[1] for group in groups], axis=1) if len(groups) > 1 else [weights]
        # A broadcast product and a sum: oneDNN's einsum "be,bed->bd" takes 3x as long.
        mixed = tf.add_n([tf.reduce_sum(tf.expand_dims(w, -1) * tf.cast(group, weights.dtype), axis=1) for w, group in zip(parts, groups)])
        return mixed, weights

    def compute_output_shape(self, input_shape):
        experts_shape = _groups(input_shape[0])[0]
        return (experts_shape[0], experts_shape[2]), (experts_shape[0], self.num_experts)

    def get_config(self):
        config = super().get_config()
        config.update(num_experts=self.num_experts, gate_dropout=self.gate_dropout)
        return config


def _groups(experts):
    """The expert groups of a ``GatedMixture`` input (or of its shape): a list of them."""
    return list(experts) if isinstance(experts, (list, tuple)) and not isinstance(experts[0], (int, type(None))) else [experts]
