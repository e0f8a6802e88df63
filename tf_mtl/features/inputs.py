"""Keras inputs, the ``tf.Example`` parse spec and serving ``TensorSpec``s, all from one spec.

Shapes: a sparse feature is one id per example, ``(batch,)``; a sequence feature is
``(batch, max_len)``; a dense feature is ``(batch,)`` when ``embed_dim == 1``, else
``(batch, embed_dim)``.
"""

import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.features.spec import DenseFeature, SequenceFeature, validate_features


def _shape_and_dtype(feature):
    if isinstance(feature, DenseFeature):
        return ((feature.embed_dim,) if feature.embed_dim > 1 else ()), tf.float32
    dtype = tf.string if feature.dtype == "string" else tf.int64
    return ((feature.max_len,) if isinstance(feature, SequenceFeature) else ()), dtype


def keras_inputs(features):
    """A dict of ``keras.Input`` keyed by feature name."""
    inputs = {}
    for feature in validate_features(features):
        shape, dtype = _shape_and_dtype(feature)
        inputs[feature.name] = keras.Input(shape=shape, dtype=dtype.name, name=feature.name)
    return inputs


def tensor_specs(features):
    """Serving signature inputs: a ``tf.TensorSpec`` per feature, free batch dimension."""
    specs = {}
    for feature in validate_features(features):
        shape, dtype = _shape_and_dtype(feature)
        specs[feature.name] = tf.TensorSpec((None, *shape), dtype, name=feature.name)
    return specs


def parse_spec(features):
    """The ``tf.io.parse_example`` spec for ``tf.Example`` records holding these features.

    Missing sequence values are padded with the feature's ``padding_value``; sparse and dense
    features are required in every record.
    """
    spec = {}
    for feature in validate_features(features):
        shape, dtype = _shape_and_dtype(feature)
        if isinstance(feature, SequenceFeature):
            spec[feature.name] = tf.io.FixedLenSequenceFeature(
                [], dtype, allow_missing=True, default_value=feature.padding_value
            )
        else:
            spec[feature.name] = tf.io.FixedLenFeature(shape, dtype)
    return spec


def parse_examples(serialized, features):
    """Parses a batch of serialized ``tf.Example``s into model inputs (sequences padded to max_len)."""
    parsed = tf.io.parse_example(serialized, parse_spec(features))
    for feature in features:
        if isinstance(feature, SequenceFeature):
            values = parsed[feature.name][:, : feature.max_len]
            pad = feature.max_len - tf.shape(values)[1]
            parsed[feature.name] = tf.pad(values, [[0, 0], [0, pad]], constant_values=feature.padding_value)
    return parsed
