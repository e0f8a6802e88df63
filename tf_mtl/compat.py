"""The one place that picks Keras.

Keras 3 by default. With ``TF_USE_LEGACY_KERAS=1`` (the switch TensorFlow itself reads, and
the mode TensorFlow Recommenders and TF Transform need) the same code runs on ``tf_keras``,
Keras 2. Every other module imports ``keras`` from here.
"""

import contextlib
import os

import tensorflow as tf

# TensorFlow reads the variable with exactly these spellings (tensorflow/python/util/lazy_loader.py).
LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS") in ("1", "true", "True")

if LEGACY_KERAS:
    import tf_keras as keras
else:
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "tf_mtl runs on the TensorFlow backend of Keras 3. Received: "
            f"KERAS_BACKEND={keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow."
        )

def no_autocast(layer):
    """Stops mixed precision from casting what ``layer`` is called with (and, in Keras 3,
    the variables it reads; Keras 2 needs ``add_weight(..., autocast=False)`` on each)."""
    if LEGACY_KERAS:
        layer._autocast = False
    else:
        layer.autocast = False


def build_sublayer(layer, input_shape):
    """Builds a sublayer inside its own name scope, as calling it would.

    Keras 2 names variables after the enclosing scope: without this, sublayers built in a
    parent's ``build`` would share variable names, which weight files refuse.
    """
    with tf.name_scope(layer.name):
        layer.build(input_shape)


def dropout(rate, **kwargs):
    """A Dropout layer whose random state is a variable, so checkpoints restore it: Keras 3's
    always is; Keras 2's only with ``force_generator`` (else it draws from op-level seeds)."""
    if LEGACY_KERAS:
        kwargs.setdefault("force_generator", True)
    return keras.layers.Dropout(rate, **kwargs)


def random_states(model):
    """The variables holding ``model``'s random-generator states (dropout), which its weights
    leave out, for checkpoints that must resume a run exactly.

    Keras 3 keeps them in ``model.variables``. Keras 2 keeps a layer's ``tf.random.Generator``
    out of its checkpoint dependencies and creates it on first use, so it is created here.
    """
    if not LEGACY_KERAS:
        weights = {id(v) for v in model.weights}
        return [v for v in model.variables if id(v) not in weights]
    states = []
    for layer in model._flatten_layers(include_self=False):
        generator = getattr(layer, "_random_generator", None)
        if generator is not None:
            generator._maybe_init()
            if generator._generator is not None:
                states.append(generator._generator.state)
    return states


@contextlib.contextmanager
def mixed_precision(policy):
    """Builds the layers created inside with ``policy`` (``"mixed_bfloat16"`` for CPUs with
    AMX/AVX-512 BF16, ``"mixed_float16"`` for GPUs), then restores the previous policy.

    Variables stay float32; towers emit float32 scores. ``MTLTrainer`` gives float16 models
    dynamic loss scaling.
    """
    if LEGACY_KERAS:
        previous = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy(policy)
    else:
        previous = keras.config.dtype_policy().name
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        if LEGACY_KERAS:
            keras.mixed_precision.set_global_policy(previous)
        else:
            keras.config.set_dtype_policy(previous)


def with_policy(model, policy):
    """A copy of a tf_mtl model with the same weights, its layers rebuilt with ``policy``.

    Train in ``"mixed_bfloat16"`` and serve single requests from a ``"float32"`` copy (whose
    products need no casts of the weights): variables are float32 under every mixed policy,
    so the weights carry over as they are. The copy is built from the model's config (as
    loading does) and is not compiled: it has no optimizer state.
    """
    with mixed_precision(policy):
        copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def loss_scale(optimizer):
    """The dynamic loss scale of a ``LossScaleOptimizer``, else 1."""
    if not isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
        return tf.constant(1.0)
    if LEGACY_KERAS:
        # Through the API Keras 2 expects (it warns when a step skips get_scaled_loss).
        return tf.cast(optimizer.get_scaled_loss(tf.constant(1.0)), tf.float32)
    return tf.cast(tf.convert_to_tensor(optimizer.dynamic_scale), tf.float32)


def gradients_to_apply(optimizer, scaled_gradients, scale):
    """What ``optimizer.apply_gradients`` takes, from gradients of the loss times ``scale``
    (``loss_scale(optimizer)``): Keras 3's ``LossScaleOptimizer`` unscales them itself,
    Keras 2's expects them unscaled; other optimizers have ``scale`` 1."""
    if LEGACY_KERAS and isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
        return optimizer.get_unscaled_gradients(list(scaled_gradients))
    return list(scaled_gradients)


def divide_gradient(gradient, divisor):
    """``gradient / divisor`` for dense gradients, ``IndexedSlices`` and ``None``."""
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(gradient.values / divisor, gradient.indices, gradient.dense_shape)
    return gradient / divisor


def tf_variable(variable):
    """The ``tf.Variable`` behind a layer's or optimizer's variable: Keras 3 wraps it, Keras 2
    uses it as it is. ``tf.gather`` on it reads only the gathered rows, and its scatter
    updates write only theirs."""
    return variable if LEGACY_KERAS or isinstance(variable, tf.Variable) else variable.value


def register(cls):
    """Registers a layer or model under the ``tf_mtl`` package for saving and loading."""
    return keras.saving.register_keras_serializable(package="tf_mtl")(cls)


__all__ = [
    "LEGACY_KERAS",
    "build_sublayer",
    "divide_gradient",
    "dropout",
    "gradients_to_apply",
    "keras",
    "loss_scale",
    "mixed_precision",
    "no_autocast",
    "random_states",
    "register",
    "tf",
    "tf_variable",
    "with_policy",
]
