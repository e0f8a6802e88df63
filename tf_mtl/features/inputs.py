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

    Sequences are read as ragged lists (``parse_examples`` pads them); sparse and dense
    features are required in every record.
    """
    spec = {}
    for feature in validate_features(features):
        shape, dtype = _shape_and_dtype(feature)
        if isinstance(feature, SequenceFeature):
            spec[feature.name] = tf.io.RaggedFeature(dtype)
        else:
            spec[feature.name] = tf.io.FixedLenFeature(shape, dtype)
    return spec


def parse_examples(serialized, features):
    """Parses a batch of serialized ``tf.Example``s into model inputs.

    A sequence keeps its last (most recent) ``max_len`` ids and is right-padded with the
    feature's ``padding_value`` to ``(batch, max_len)``, as ``tf_mtl.data.to_feature_arrays``
    does for in-memory data.
    """
    parsed = tf.io.parse_example(serialized, parse_spec(features))
    for feature in features:
        if isinstance(feature, SequenceFeature):
            parsed[feature.name] = pad_sequence(feature, parsed[feature.name])
    return parsed


def pad_sequence(feature, ragged):
    """A ragged batch of ids (or a padded matrix) -> ``(batch, max_len)``: the last ``max_len``
    ids of each row other than the feature's ``padding_value``, right-padded with it."""
    ragged = tf.ragged.boolean_mask(ragged, tf.not_equal(ragged, feature.padding_value))
    return ragged[:, -feature.max_len :].to_tensor(default_value=feature.padding_value, shape=[None, feature.max_len])


def fit_sequence(feature, values):
    """A sequence input as ``(batch, max_len)`` ids.

    Ragged rows, or a padded matrix of another width, keep their last (most recent)
    ``max_len`` ids other than ``padding_value`` and are right-padded, as
    ``tf_mtl.data.to_feature_arrays`` does; a ``(batch, max_len)`` input is used as it is
    (no op is added, so exported signatures are unchanged).
    """
    if not isinstance(values, tf.RaggedTensor) and values.shape.rank == 2 and values.shape[1] == feature.max_len:
        return values
    return pad_sequence(feature, values)
