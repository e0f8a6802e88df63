"""Raw feature values -> one dense vector per example.

Vocabulary lookup, OOV buckets, hashing, normalization and sequence pooling all run in the
graph, so the same layer serves training inputs and raw serving requests.

All tables are gathered with ``tf.gather``: their gradients are ``tf.IndexedSlices`` over
the rows a batch touches, and ``FeatureEmbedding.tables`` lists them, so an optimizer can
give them sparse (row-wise) updates.
"""

import numpy as np
import tensorflow as tf

from tf_mtl.compat import keras, no_autocast, register, tf_variable
from tf_mtl.features.inputs import fit_sequence
from tf_mtl.features.spec import (
    DenseFeature,
    SequenceFeature,
    SparseFeature,
    _CategoricalFeature,
    features_from_config,
    features_to_config,
    validate_features,
)

# Strings are looked up by a 63-bit fingerprint; a vocabulary whose fingerprints collide is refused.
_HASH_SPACE = 2**63 - 1


def _ids_as_keys(feature, values):
    """Raw ids as int64 keys: integers as they are, strings by fingerprint."""
    if feature.dtype == "string":
        return tf.strings.to_hash_bucket_fast(values, _HASH_SPACE)
    return tf.cast(values, tf.int64)


def row_ids(feature, values):
    """Maps raw ids of a categorical feature to rows of its embedding table.

    Known ids keep their index; anything else lands in one of the OOV rows after the
    vocabulary (``key mod num_oov_buckets``); strings without a vocabulary are hashed.
    """
    if feature.hashed:
        return tf.strings.to_hash_bucket_fast(values, feature.vocab_size)
    keys = _ids_as_keys(feature, values)
    if feature.vocabulary is None:
        return _id_rows(keys, feature.vocab_size, feature.num_oov_buckets)
    oov_rows = feature.vocab_size + tf.math.floormod(keys, feature.num_oov_buckets)
    vocab_keys = _ids_as_keys(feature, tf.constant(feature.vocabulary))
    order = tf.argsort(vocab_keys)
    sorted_keys = tf.gather(vocab_keys, order)
    flat = tf.reshape(keys, [-1])
    position = tf.minimum(tf.searchsorted(sorted_keys, flat), feature.vocab_size - 1)
    found = tf.gather(sorted_keys, position) == flat
    rows = tf.where(found, tf.cast(tf.gather(order, position), tf.int64), tf.reshape(oov_rows, [-1]))
    return tf.reshape(rows, tf.shape(keys))


def _id_rows(keys, vocab_size, num_oov_buckets):
    """Rows of integer ids without a vocabulary: an id in ``[0, vocab_size)`` is its own row,
    any other id one of the OOV rows after the vocabulary. The sizes may be vectors, one per
    column of ``keys`` (several features at once)."""
    known = (keys >= 0) & (keys < vocab_size)
    if np.all(np.asarray(num_oov_buckets) == 1):  # one OOV row each: no modulo (int64 division is slow)
        return tf.where(known, keys, vocab_size)
    return tf.where(known, keys, vocab_size + tf.math.floormod(keys, tf.constant(num_oov_buckets, tf.int64)))


def _plain_ids(feature):
    """Integer ids, one per row, without a vocabulary: their rows can be found for many
    features in one set of ops."""
    return isinstance(feature, SparseFeature) and feature.dtype != "string" and feature.vocabulary is None


def _check_fingerprints(feature):
    if getattr(feature, "dtype", None) != "string" or feature.vocabulary is None or not tf.executing_eagerly():
        return
    keys = _ids_as_keys(feature, tf.constant(feature.vocabulary)).numpy()
    if len(np.unique(keys)) != len(keys):
        raise ValueError(f"SparseFeature {feature.name!r}: two vocabulary entries share a fingerprint.")


def _pretrained_matrix(feature):
    path = feature.pretrained_path
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"Feature {feature.name!r}: cannot read pretrained_path {path!r}: {err}") from err
    if not isinstance(matrix, np.ndarray):
        matrix.close()
        raise ValueError(
            f"Feature {feature.name!r}: pretrained_path {path!r} is an .npz archive; expected one matrix in a .npy file."
        )
    rows = (feature.vocab_size, feature.num_rows)
    if matrix.ndim != 2 or matrix.shape[0] not in rows or matrix.shape[1] != feature.embed_dim:
        raise ValueError(
            f"Feature {feature.name!r}: the matrix in {path!r} has shape {matrix.shape}; expected "
            f"({feature.vocab_size} or {feature.num_rows}, {feature.embed_dim})."
        )
    return matrix.astype("float32")


def _pool(feature, embedded, mask):
    mask = tf.cast(mask, embedded.dtype)[..., None]
    total = tf.reduce_sum(embedded * mask, axis=1)
    count = tf.reduce_sum(mask, axis=1)
    if feature.pooling == "sum":
        return total
    if feature.pooling == "mean":
        return total / tf.maximum(count, 1.0)
    lowest = tf.fill(tf.shape(embedded), tf.constant(embedded.dtype.min, embedded.dtype))
    pooled = tf.reduce_max(tf.where(mask > 0, embedded, lowest), axis=1)
    return tf.where(count > 0, pooled, tf.zeros_like(pooled))


def _normalize(feature, values):
    if feature.mean is not None:
        return (values - feature.mean) / feature.std
    if feature.min_value is not None:
        return (values - feature.min_value) / (feature.max_value - feature.min_value)
    return values


@register
class FeatureEmbedding(keras.layers.Layer):
    """Embeds a dict of raw feature values and concatenates them, in feature order.

    Sparse features give ``embed_dim`` values, sequence features their pooled embedding (of
    their last ``max_len`` ids, see ``fit_sequence``), dense features their (normalized) values.
    Output shape ``(batch, output_dim)``.

    Args:
        features: the feature spec (a list of ``SparseFeature``, ``SequenceFeature``,
            ``DenseFeature``).
        embeddings_initializer: initializer of tables without ``pretrained_path``.

    Example:

    >>> layer = FeatureEmbedding([SparseFeature("user", 10, 4), DenseFeature("age")])
    >>> layer({"user": tf.constant([1, 99]), "age": tf.constant([30.0, 40.0])}).shape
    TensorShape([2, 5])
    """

    def __init__(self, features, embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        if features and isinstance(features[0], dict):
            features = features_from_config(features)
        self.features = validate_features(features)
        for feature in self.features:
            _check_fingerprints(feature)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.output_dim = sum(f.embed_dim for f in self.features)
        # Under mixed precision, dense values and gathered rows stay at least float32 up to the
        # one cast of their concatenation: a price of 1234.5 is 1232 in bfloat16.
        no_autocast(self)

    def build(self, input_shape=None):
        self.tables = {}
        for feature in self.features:
            if not isinstance(feature, _CategoricalFeature) or feature.table_name in self.tables:
                continue
            # A fresh initializer per table: Keras 2 repeats an unseeded instance's values.
            initializer = keras.initializers.get(keras.initializers.serialize(self.embeddings_initializer))
            if feature.pretrained_path is not None:
                initializer = _PretrainedInitializer(_pretrained_matrix(feature), initializer)
            self.tables[feature.table_name] = self.add_weight(
                name=f"{feature.table_name}_embedding",
                shape=(feature.num_rows, feature.embed_dim),
                initializer=initializer,
                trainable=feature.trainable,
                autocast=False,  # Keras 2 casts reads by the variable's flag, not the layer's
            )
        self.built = True

    def call(self, inputs):
        missing = [f.name for f in self.features if f.name not in inputs]
        if missing:
            raise KeyError(f"FeatureEmbedding: inputs lack the features {missing}. Received keys: {sorted(inputs)}")
        rows = self._plain_rows(inputs)
        wide = tf.float32 if tf.as_dtype(self.compute_dtype).size < 4 else self.compute_dtype
        parts = []
        for feature in self.features:
            values = inputs[feature.name]
            if isinstance(feature, SequenceFeature):
                values = fit_sequence(feature, values)
            if isinstance(feature, DenseFeature):
                values = tf.cast(values, wide)
                if feature.embed_dim == 1:
                    values = tf.reshape(values, [-1, 1])
                parts.append(_normalize(feature, values))
                continue
            # Gathered from the variable (tables are never autocast): a read of the whole table
            # would cost a copy of it at the next row update, and a cast of every row under
            # mixed precision.
            ids = rows[feature.name] if feature.name in rows else row_ids(feature, values)
            embedded = tf.cast(tf.gather(tf_variable(self.tables[feature.table_name]), ids), wide)
            if isinstance(feature, SequenceFeature):
                embedded = _pool(feature, embedded, tf.not_equal(values, feature.padding_value))
            parts.append(embedded)
        # One cast to a 16-bit compute dtype, of all features at once (none in float32).
        return tf.cast(tf.concat(parts, axis=-1), self.compute_dtype)

    def _plain_rows(self, inputs):
        """``row_ids`` of every plain integer feature (see ``_plain_ids``), computed together:
        seven ops in all instead of seven per feature, which a single request notices."""
        plain = [f for f in self.features if _plain_ids(f)]
        if len(plain) < 2:
            return {}
        keys = tf.stack([tf.cast(inputs[f.name], tf.int64) for f in plain], axis=-1)
        vocab_sizes = tf.constant([f.vocab_size for f in plain], tf.int64)
        oov_buckets = [f.num_oov_buckets for f in plain]
        return dict(zip([f.name for f in plain], tf.unstack(_id_rows(keys, vocab_sizes, oov_buckets), axis=-1)))

    def compute_output_shape(self, input_shape):
        return (None, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            features=features_to_config(self.features),
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config


class _PretrainedInitializer(keras.initializers.Initializer):
    """The pretrained rows, then ``fallback`` rows for OOV buckets the file does not cover."""

    def __init__(self, matrix, fallback):
        self.matrix = matrix
        self.fallback = fallback

    def __call__(self, shape, dtype=None):
        extra = shape[0] - self.matrix.shape[0]
        parts = [tf.constant(self.matrix)]
        if extra:
            parts.append(tf.cast(self.fallback((extra, shape[1])), tf.float32))
        return tf.cast(tf.concat(parts, axis=0), dtype or tf.float32)
