"""AITM's Adaptive Information Transfer module (Xi et al., KDD 2021, section 3.2)."""

import math

import tensorflow as tf

from tf_mtl.compat import build_sublayer, keras, register
from tf_mtl.features.spec import positive_int


@register
class InformationTransfer(keras.layers.Layer):
    """Attention over a task's own representation and the one transferred from the previous task.

    The previous task's representation ``z_{t-1}`` passes a transfer layer,
    ``p_{t-1} = relu(W z_{t-1} + b)``; then, for ``u`` in ``{p_{t-1}, q_t}``,
    ``w_u = softmax_u(<h1(u), h2(u)> / sqrt(k))`` and ``z_t = sum_u w_u h3(u)``, with
    ``h1, h2, h3`` linear projections to ``k`` dimensions.

    Args:
        attention_dim: ``k``, the width of the projections and of the output.

    Inputs: ``[q_t, z_prev]``, each ``(batch, d)``. Returns ``(z_t, weights)`` of shapes
    ``(batch, attention_dim)`` and ``(batch, 2)`` (weights of the transferred and own
    representations, in that order).
    """

    def __init__(self, attention_dim, **kwargs):
        super().__init__(**kwargs)
        self.attention_dim = positive_int(attention_dim, "attention_dim", "InformationTransfer")
        self.query = keras.layers.Dense(attention_dim, use_bias=False, name="query")
        self.key = keras.layers.Dense(attention_dim, use_bias=False, name="key")
        self.value = keras.layers.Dense(attention_dim, use_bias=False, name="value")

    def build(self, input_shape):
        own_shape, previous_shape = input_shape
        # The transfer layer maps z_{t-1} to the width of q_t, so both can be projected alike.
        self.transfer = keras.layers.Dense(own_shape[-1], activation="relu", name="transfer")
        build_sublayer(self.transfer, previous_shape)
        for dense in (self.query, self.key, self.value):
            build_sublayer(dense, (None, 2, own_shape[-1]))
        self.built = True

    def call(self, inputs):
        own, previous = inputs
        candidates = tf.stack([self.transfer(previous), own], axis=1)
        scores = tf.reduce_sum(self.query(candidates) * self.key(candidates), axis=-1) / math.sqrt(self.attention_dim)
        weights = tf.nn.softmax(scores, axis=-1)
        return tf.einsum("bu,buk->bk", weights, self.value(candidates)), weights

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.attention_dim), (input_shape[0][0], 2)

    def get_config(self):
        config = super().get_config()
        config.update(attention_dim=self.attention_dim)
        return config
