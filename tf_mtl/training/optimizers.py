"""Optimizers: ``LazyAdam``, the default of ``MTLTrainer``, and ``make_optimizer``.

Embedding tables hold most of a ranking model's parameters (millions of rows), and a batch
uses a few thousand of them. Keras' ``Adam`` turns a table's row gradients
(``tf.IndexedSlices``) dense and rewrites every row, moment and variance on every step;
``LazyAdam`` rewrites the rows the batch used, as TF Addons' ``LazyAdam`` did (Keras 2).
"""

import tensorflow as tf

from tf_mtl.compat import LEGACY_KERAS, keras, register, tf_variable
from tf_mtl.weighting.step import deduplicate

_OPTIMIZER_ALIASES = {"lr": "learning_rate"}


@register
class LazyAdam(keras.optimizers.Adam):
    """Adam whose updates of embedding tables touch only the rows a batch uses.

    A dense gradient gets Keras' Adam. A ``tf.IndexedSlices`` gradient (a table gathered by
    ``FeatureEmbedding``) updates the first and second moments of its rows and moves those
    rows by Adam's step, with the bias corrections of the optimizer's step count; rows the
    batch did not use keep their values and moments. Dense Adam would instead decay every
    row's moments and keep moving rows unused for a while by their old momentum. Repeated
    rows are summed first, so a row's update equals dense Adam's whenever the row is used
    every step. Decoupled weight decay (``weight_decay``) likewise shrinks the used rows
    only. Arguments as ``keras.optimizers.Adam``.

    Example:

    >>> optimizer = LazyAdam(learning_rate=1e-3)
    >>> model.compile(optimizer=optimizer, weighting="uwl")
    """

    # The training step leaves repeated rows to optimizers that sum them themselves.
    sums_repeated_rows = True

    def _apply_weight_decay(self, variables):
        # Applied in update_step, where a sparse gradient names the rows to decay.
        return

    def update_step(self, gradient, variable, learning_rate=None):
        if learning_rate is None:  # Keras 2 reads it from the optimizer
            learning_rate = self.learning_rate
        lr = tf.cast(learning_rate, variable.dtype)
        step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, variable.dtype), tf.cast(self.beta_2, variable.dtype)
        index = self._slot_index(variable)
        momentum, velocity = self._momentums[index], self._velocities[index]
        if not isinstance(gradient, tf.IndexedSlices):
            if self._decays(variable):
                variable.assign_sub(variable * tf.cast(self.weight_decay, variable.dtype) * lr)
            if self.amsgrad:
                if LEGACY_KERAS:
                    return super().update_step(gradient, variable)
                return super().update_step(gradient, variable, learning_rate)
            # Keras' Adam in one kernel (its formula, epsilon added to sqrt(v)): Keras' own ops
            # make eight passes over the variable, which cost 1 ms of a step of the experts'.
            return tf.raw_ops.ResourceApplyAdam(
                var=tf_variable(variable).handle, m=tf_variable(momentum).handle, v=tf_variable(velocity).handle,
                beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=lr, beta1=beta_1,
                beta2=beta_2, epsilon=tf.cast(self.epsilon, variable.dtype), grad=tf.cast(gradient, variable.dtype),
            )
        gradient = deduplicate(gradient)
        rows, g = gradient.indices, tf.cast(gradient.values, variable.dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        m = beta_1 * self._rows(momentum, rows) + (1 - beta_1) * g
        v = beta_2 * self._rows(velocity, rows) + (1 - beta_2) * tf.square(g)
        self._scatter(momentum, rows, m)
        self._scatter(velocity, rows, v)
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            v = tf.maximum(self._rows(v_hat, rows), v)
            self._scatter(v_hat, rows, v)
        values = self._rows(variable, rows)
        if self._decays(variable):
            values -= values * tf.cast(self.weight_decay, variable.dtype) * lr
        # Rows written back rather than scatter-added: TensorFlow's scatter-add is the slower op.
        self._scatter(variable, rows, values - m * alpha / (tf.sqrt(v) + self.epsilon))

    def _decays(self, variable):
        return self.weight_decay is not None and self._use_weight_decay(variable)

    def _slot_index(self, variable):
        if LEGACY_KERAS:
            return self._index_dict[self._var_key(variable)]
        return self._get_variable_index(variable)

    def _rows(self, variable, rows):
        return tf.gather(tf_variable(variable), rows)

    def _scatter(self, variable, rows, values):
        tf_variable(variable).scatter_update(tf.IndexedSlices(values, rows))


def make_optimizer(optimizer_fn=None, optimizer_params=None):
    """A Keras optimizer from a class or name (default ``LazyAdam``) and its parameters;
    ``lr`` stands for ``learning_rate`` and ``weight_decay`` is Keras' decoupled decay.
    ``"adam"`` is Keras' dense Adam, ``"lazy_adam"`` this module's."""
    params = dict(optimizer_params or {})
    for alias, name in _OPTIMIZER_ALIASES.items():
        if alias in params:
            params[name] = params.pop(alias)
    if optimizer_fn is None or optimizer_fn in ("lazy_adam", "LazyAdam"):
        optimizer_fn = LazyAdam
    elif isinstance(optimizer_fn, str):
        optimizer_fn = type(keras.optimizers.get(optimizer_fn))
    try:
        return optimizer_fn(**params)
    except (TypeError, ValueError) as error:
        raise ValueError(f"optimizer_params {params!r} do not fit {getattr(optimizer_fn, '__name__', optimizer_fn)}: {error}") from None


__all__ = ["LazyAdam", "make_optimizer"]
