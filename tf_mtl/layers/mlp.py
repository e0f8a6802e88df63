"""The multi-layer perceptron every model is made of: bottoms, experts and towers.

With ``num_parallel=k`` one layer holds k independent MLPs of the same shape (a group of
experts), computed with one matrix product per member; each member has its own random
initialization.
"""


import tensorflow as tf

from tf_mtl import compat
from tf_mtl.compat import build_sublayer, keras, register
from tf_mtl.features.spec import FieldError, check_rate, join_path, mapping, positive_int

MLP_PARAMS = ("dims", "activation", "dropout", "batch_norm")


def check_mlp_params(params, where, required=("dims",), owner=None):
    """Checks a params dict such as ``{"dims": [256, 128], "dropout": 0.2}``; returns a copy.

    Every key and value is checked: ``dims`` a list of positive integers (non-empty when
    required; a tower's may be empty), ``activation`` a Keras activation name (or, from Python,
    a callable), ``dropout`` in ``[0, 1)``, ``batch_norm`` a boolean. Errors are ``FieldError``s
    whose path starts with ``where``, e.g. ``expert_params.dims[1]`` or ``tower_params_list[1].dropout``.
    """
    params = mapping(params, where, MLP_PARAMS, owner)
    for key in required:
        if key not in params:
            raise FieldError(join_path(where, key), f"required, e.g. {{'dims': [64]}}. Received: {params!r}", owner)
    if "dims" in params:
        dims = params["dims"]
        if not isinstance(dims, (list, tuple)) or ("dims" in required and not dims):
            raise FieldError(join_path(where, "dims"), f"expected a list of layer widths such as [256, 128]. Received: {dims!r}", owner)
        params["dims"] = [positive_int(d, join_path(join_path(where, "dims"), i), owner) for i, d in enumerate(dims)]
    activation = params.get("activation")
    if not (activation is None or callable(activation)):
        try:
            keras.activations.get(activation)
        except (TypeError, ValueError):
            raise FieldError(
                join_path(where, "activation"), f"expected a Keras activation name such as 'relu'. Received: {activation!r}", owner
            ) from None
    if "dropout" in params:
        check_rate(params["dropout"], join_path(where, "dropout"), owner)
    if not isinstance(params.get("batch_norm", False), bool):
        raise FieldError(join_path(where, "batch_norm"), f"expected true or false. Received: {params['batch_norm']!r}", owner)
    return params


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
        params = {"dims": dims, "activation": activation, "dropout": dropout, "batch_norm": batch_norm}
        dims = check_mlp_params(params, "", owner="MLP")["dims"]
        if num_parallel is not None:
            num_parallel = positive_int(num_parallel, "num_parallel", "MLP")
        self.activation_fn = keras.activations.get(activation)
        self.dims = dims
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.num_parallel = num_parallel
        self.dropouts = [compat.dropout(dropout) for _ in dims] if dropout else []
        self.norms = [keras.layers.BatchNormalization() for _ in dims] if batch_norm else []

    def build(self, input_shape):
        k = self.num_parallel
        if k is not None and len(input_shape) == 3 and input_shape[1] != k:
            raise ValueError(
                f"MLP {self.name!r}: an input of one slice per member has shape (batch, {k}, d) for "
                f"num_parallel={k}. Received: input_shape={tuple(input_shape)}"
            )
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
            return self._apply([inputs], training)[0]
        # One 2-D product per member: oneDNN fuses each with its bias and activation, and the
        # gradients need no reduction over a broadcast (batched products of all members at once
        # were about 10 % slower, forward and backward).
        members = [inputs] * self.num_parallel if inputs.shape.rank == 2 else tf.unstack(inputs, axis=1)
        return tf.stack(self._apply(members, training), axis=1)

    def _apply(self, xs, training):
        """The layers on the members' inputs ``xs``, a list of ``(batch, d)`` tensors."""
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            # unstack, not kernel[j]: one op whose gradient is one stack, not a slice per member.
            kernels, biases = ([kernel], [bias]) if self.num_parallel is None else (tf.unstack(kernel), tf.unstack(bias))
            xs = [tf.nn.bias_add(tf.matmul(x, w), b) for x, w, b in zip(xs, kernels, biases)]
            if self.norms:
                # One normalization over the members side by side, (batch, k * dim).
                xs = tf.split(self.norms[i](tf.concat(xs, axis=-1), training=training), len(xs), axis=-1)
            xs = [self.activation_fn(x) for x in xs]
            if self.dropouts:
                xs = [self.dropouts[i](x, training=training) for x in xs]
        return xs

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
