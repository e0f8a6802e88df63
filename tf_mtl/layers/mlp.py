"""The multi-layer perceptron every model is made of: bottoms, experts and towers.

With ``num_parallel=k`` one layer holds k independent MLPs of the same shape (a group of
experts), computed with batched matrix products; each member has its own random
initialization.
"""


import tensorflow as tf

from tf_mtl import compat
from tf_mtl.compat import build_sublayer, keras, register
from tf_mtl.errors import did_you_mean

MLP_PARAMS = ("dims", "activation", "dropout", "batch_norm")


def check_mlp_params(params, where, required=("dims",)):
    """Checks a params dict such as ``{"dims": [256, 128], "dropout": 0.2}``; returns a copy.

    ``where`` names the argument in errors, e.g. ``"expert_params"`` or ``"tower_params_list[1]"``.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValueError(f"{where} must be a dict such as {{'dims': [64]}}. Received: {params!r}")
    for key in params:
        if key not in MLP_PARAMS:
            raise ValueError(f"{where}: unknown key {key!r}" + did_you_mean(key, MLP_PARAMS, "Known keys"))
    for key in required:
        if key not in params:
            raise ValueError(f"{where}: {key!r} is required. Received: {params!r}")
    return dict(params)


@register
class MLP(keras.layers.Layer):
    """Dense layers, each followed by optional batch normalization, the activation and dropout.

    Args:
        dims: widths of the layers, e.g. ``[256, 128]``.
        activation: activation name (default ``"relu"``).
        dropout: dropout rate after each layer.
        batch_norm: batch normalization before each activation.
        num_parallel: ``None`` for one MLP; ``k`` for k independent MLPs in one layer.

    Shapes: ``(batch, d)`` -> ``(batch, dims[-1])``. With ``num_parallel=k``, the input is
    ``(batch, d)`` (shared by the members) or ``(batch, k, d)`` (one slice per member), and
    the output ``(batch, k, dims[-1])``.

    Example:

    >>> experts = MLP([64, 32], num_parallel=4)
    >>> experts(tf.ones((8, 10))).shape
    TensorShape([8, 4, 32])
    """

    def __init__(self, dims, activation="relu", dropout=0.0, batch_norm=False, num_parallel=None, **kwargs):
        super().__init__(**kwargs)
        dims = list(dims)
        if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
            raise ValueError(f"MLP: dims must be a non-empty list of positive integers. Received: dims={dims!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1). Received: dropout={dropout!r}")
        if num_parallel is not None and (not isinstance(num_parallel, int) or num_parallel < 1):
            raise ValueError(f"MLP: num_parallel must be a positive integer or None. Received: {num_parallel!r}")
        try:
            self.activation_fn = keras.activations.get(activation)
        except ValueError as err:
            raise ValueError(f"MLP: unknown activation {activation!r}.") from err
        self.dims = dims
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.num_parallel = num_parallel
        self.dropouts = [compat.dropout(dropout) for _ in dims] if dropout else []
        self.norms = [keras.layers.BatchNormalization() for _ in dims] if batch_norm else []

    def build(self, input_shape):
        k = self.num_parallel
        self.kernels, self.biases = [], []
        width = input_shape[-1]
        for i, dim in enumerate(self.dims):
            shape = (width, dim) if k is None else (k, width, dim)
            # Glorot-uniform per member: VarianceScaling counts k into both fans of a (k, in, out)
            # kernel, so scale=k gives each slice glorot's variance, 2 / (in + out). A new
            # initializer per kernel: Keras 2 repeats an unseeded instance's values.
            initializer = keras.initializers.VarianceScaling(k or 1, "fan_avg", "uniform")
            self.kernels.append(self.add_weight(name=f"kernel_{i}", shape=shape, initializer=initializer))
            self.biases.append(
                self.add_weight(name=f"bias_{i}", shape=shape[:-2] + (dim,), initializer="zeros")
            )
            width = dim
        for i, norm in enumerate(self.norms):
            build_sublayer(norm, (None, self.dims[i] * (k or 1)))
        self.built = True

    def call(self, inputs, training=None):
        if self.num_parallel is None:
            return self._apply(inputs, training, lambda x: x)
        # Members first, (k, batch, d), through every layer: batched matrix products need no
        # copy of the kernels, and oneDNN runs them about 1.5x faster than the einsum
        # "bki,kio->bko", forward and backward (a shared input broadcasts over the members).
        x = inputs[None] if inputs.shape.rank == 2 else tf.transpose(inputs, [1, 0, 2])
        return tf.transpose(self._apply(x, training, lambda x: tf.transpose(x, [1, 0, 2])), [1, 0, 2])

    def _apply(self, x, training, batch_major):
        """The layers on ``x``; ``batch_major`` turns the layout into ``(batch, ...)`` for
        batch normalization, and back."""
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            x = tf.matmul(x, kernel) + (bias if self.num_parallel is None else bias[:, None, :])
            if self.norms:
                rows = batch_major(x)
                flat = tf.reshape(rows, [-1, self.dims[i] * (self.num_parallel or 1)])
                x = batch_major(tf.reshape(self.norms[i](flat, training=training), tf.shape(rows)))
            x = self.activation_fn(x)
            if self.dropouts:
                x = self.dropouts[i](x, training=training)
        return x

    @property
    def output_variables(self):
        """The last layer's kernel and bias: the weights that produce the MLP's output."""
        return [self.kernels[-1], self.biases[-1]]

    def compute_output_shape(self, input_shape):
        if self.num_parallel is None:
            return (*input_shape[:-1], self.dims[-1])
        return (input_shape[0], self.num_parallel, self.dims[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            dims=self.dims,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            num_parallel=self.num_parallel,
        )
        return config
