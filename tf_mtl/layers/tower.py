"""A task's head: an MLP, then one output unit with the task type's activation."""

import tensorflow as tf

from tf_mtl.compat import build_sublayer, keras, register
from tf_mtl.features.spec import FieldError
from tf_mtl.layers.mlp import MLP, check_mlp_params
from tf_mtl.tasks import OUTPUT_ACTIVATION, TASK_TYPES


@register
class Tower(keras.layers.Layer):
    """MLP (optional: ``dims`` may be empty) -> Dense(1) -> sigmoid (classification) or identity.

    Args:
        task_type: ``"classification"`` or ``"regression"``.
        dims, activation, dropout, batch_norm: the hidden MLP, as in ``MLP``.

    Shapes: ``(batch, d)`` -> ``(batch,)``.
    """

    def __init__(self, task_type, dims=(), activation="relu", dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        if task_type not in TASK_TYPES:
            raise FieldError("task_type", f"expected one of {list(TASK_TYPES)}. Received: {task_type!r}", "Tower")
        params = {"dims": dims, "activation": activation, "dropout": dropout, "batch_norm": batch_norm}
        self.task_type = task_type
        self.dims = check_mlp_params(params, "", required=(), owner="Tower")["dims"]
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.hidden = MLP(self.dims, activation, dropout, batch_norm, name="hidden") if self.dims else None
        # float32 under mixed precision: a bfloat16 sigmoid has about 3 significant digits, too
        # coarse for ranking scores and log loss.
        self.output_unit = keras.layers.Dense(1, activation=OUTPUT_ACTIVATION[task_type], dtype="float32", name="output")

    def build(self, input_shape):
        width = input_shape[-1]
        if self.hidden is not None:
            build_sublayer(self.hidden, input_shape)
            width = self.dims[-1]
        build_sublayer(self.output_unit, (None, width))
        self.built = True

    def call(self, inputs, training=None):
        x = inputs if self.hidden is None else self.hidden(inputs, training=training)
        return tf.squeeze(self.output_unit(x), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(
            task_type=self.task_type,
            dims=self.dims,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
        )
        return config
