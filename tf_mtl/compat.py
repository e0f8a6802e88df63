"""The one place that picks Keras.

Keras 3 by default. With ``TF_USE_LEGACY_KERAS=1`` (the switch TensorFlow itself reads, and
the mode TensorFlow Recommenders and TF Transform need) the same code runs on ``tf_keras``,
Keras 2. Every other module imports ``keras`` from here.
"""

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


def build_sublayer(layer, input_shape):
    """Builds a sublayer inside its own name scope, as calling it would.

    Keras 2 names variables after the enclosing scope: without this, sublayers built in a
    parent's ``build`` would share variable names, which weight files refuse.
    """
    with tf.name_scope(layer.name):
        layer.build(input_shape)


def register(cls):
    """Registers a layer or model under the ``tf_mtl`` package for saving and loading."""
    return keras.saving.register_keras_serializable(package="tf_mtl")(cls)


__all__ = ["LEGACY_KERAS", "build_sublayer", "keras", "register", "tf"]
