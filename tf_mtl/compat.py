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


def register(cls):
    """Registers a layer or model under the ``tf_mtl`` package for saving and loading."""
    return keras.saving.register_keras_serializable(package="tf_mtl")(cls)


__all__ = ["LEGACY_KERAS", "keras", "register", "tf"]
