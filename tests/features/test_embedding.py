"""Tests of row_ids and FeatureEmbedding: lookups, OOV rows, hashing, pooling, normalization, tables."""

import re

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.features.embedding import FeatureEmbedding, fit_sequence, row_ids
from tf_mtl.features.spec import DenseFeature, SequenceFeature, SparseFeature


def _table(rows, dim, seed=0):
    """Distinct float32 values, negative and positive, so any wrong row or pooling shows."""
    return np.random.default_rng(seed).uniform(-3.0, 3.0, (rows, dim)).astype(np.float32)


def _in(variable, variables):
    return any(variable is v for v in variables)


# ---------------------------------------------------------------------------------- row_ids


@pytest.mark.parametrize(
    "num_oov_buckets, ids, expected",
    [
        (1, [0, 1, 4, 5, -1, 7, -7, 2**40], [0, 1, 4, 5, 5, 5, 5, 5]),
        # OOV row = vocab_size + id mod num_oov_buckets (mod is non-negative for negative ids).
        (3, [0, 4, 5, -1, 7, -7, 100, -2**40], [0, 4, 7, 7, 6, 7, 6, 7]),  # -2**40 mod 3 = 2
    ],
)
def test_row_ids_integer_ids(num_oov_buckets, ids, expected):
    feature = SparseFeature("user", 5, 2, num_oov_buckets=num_oov_buckets)
    rows = row_ids(feature, tf.constant(ids, tf.int64))
    assert rows.dtype == tf.int64
    np.testing.assert_array_equal(rows, expected)


def test_row_ids_accept_int32_and_keep_the_shape():
    feature = SequenceFeature("hist", 5, 2, "mean", 3)
    rows = row_ids(feature, tf.constant([[1, 9, 0], [-2, 4, 3]], tf.int32))
    np.testing.assert_array_equal(rows, [[1, 5, 0], [5, 4, 3]])


@pytest.mark.parametrize("num_oov_buckets, ids, expected", [
    (1, [100, 7, 42, -5, 8, 0, 43], [0, 1, 2, 3, 4, 4, 4]),
    (2, [100, 7, 42, -5, 8, 9, -1, -2], [0, 1, 2, 3, 4, 5, 5, 4]),
])
def test_row_ids_integer_vocabulary_non_contiguous(num_oov_buckets, ids, expected):
    feature = SparseFeature("cat", None, 2, vocabulary=[100, 7, 42, -5], num_oov_buckets=num_oov_buckets)
    np.testing.assert_array_equal(row_ids(feature, tf.constant(ids, tf.int64)), expected)


def test_row_ids_string_vocabulary():
    feature = SparseFeature("city", None, 2, vocabulary=["paris", "rome", "oslo"])
    values = tf.constant([["rome", "paris", "oslo"], ["lima", "", "Paris"]])
    np.testing.assert_array_equal(row_ids(feature, values), [[1, 0, 2], [3, 3, 3]])


def test_row_ids_string_vocabulary_spreads_unseen_strings_over_oov_rows():
    feature = SparseFeature("city", None, 2, vocabulary=["paris", "rome", "oslo"], num_oov_buckets=4)
    unseen = [f"town{i}" for i in range(200)]
    rows = row_ids(feature, tf.constant(unseen)).numpy()
    assert set(rows) == {3, 4, 5, 6}
    # The same string always gets the same row.
    np.testing.assert_array_equal(row_ids(feature, tf.constant(unseen)), rows)
    np.testing.assert_array_equal(row_ids(feature, tf.constant(["oslo", "rome", "paris"])), [2, 1, 0])


def test_row_ids_hashed_strings_stay_in_range():
    feature = SparseFeature("query", 7, 2, dtype="string")
    values = tf.constant([[f"q{i}" for i in range(50)], [f"r{i}" for i in range(50)]])
    rows = row_ids(feature, values)
    assert rows.shape == (2, 50)
    assert rows.numpy().min() >= 0 and rows.numpy().max() < 7
    assert len(np.unique(rows)) == 7
    np.testing.assert_array_equal(rows, tf.strings.to_hash_bucket_fast(values, 7))


# -------------------------------------------------------------------------- FeatureEmbedding


def test_sparse_gather_equals_numpy():
    feature = SparseFeature("user", 5, 3, num_oov_buckets=2)
    layer = FeatureEmbedding([feature])
    layer.build(None)
    table = _table(7, 3)
    layer.tables["user"].assign(table)
    out = layer({"user": tf.constant([0, 4, 5, -1, 2, 8], tf.int64)})
    # OOV rows: 5 + 5 mod 2 = 6, 5 + (-1 mod 2) = 6, 5 + 8 mod 2 = 5.
    np.testing.assert_array_equal(out, table[[0, 4, 6, 6, 2, 5]])
    assert out.dtype == tf.float32


def test_plain_integer_features_found_together_equal_row_ids_one_by_one():
    features = [SparseFeature("a", 5, 2, num_oov_buckets=2), SparseFeature("b", 3, 2), SparseFeature("c", 40, 2, num_oov_buckets=3)]
    layer = FeatureEmbedding(features)
    ids = {"a": tf.constant([0, 4, 5, -1, 9]), "b": tf.constant([2, 3, -7, 1, 0]), "c": tf.constant([39, 40, 41, -3, 100])}
    rows = layer._plain_rows(ids)
    for feature in features:
        np.testing.assert_array_equal(rows[feature.name], row_ids(feature, ids[feature.name]))


def test_string_vocabulary_and_hashed_lookups_equal_numpy():
    features = [SparseFeature("city", None, 2, vocabulary=["paris", "rome"]), SparseFeature("query", 4, 2, dtype="string")]
    layer = FeatureEmbedding(features)
    layer.build(None)
    city, query = _table(3, 2, seed=1), _table(4, 2, seed=2)
    layer.tables["city"].assign(city)
    layer.tables["query"].assign(query)
    queries = tf.constant(["a", "b", "c"])
    out = layer({"city": tf.constant(["rome", "lima", "paris"]), "query": queries})
    hashed = tf.strings.to_hash_bucket_fast(queries, 4).numpy()
    np.testing.assert_array_equal(out, np.concatenate([city[[1, 2, 0]], query[hashed]], axis=1))


# Ids 0 are padding; row 0 holds large values so any unmasked padding would show. 9 is OOV (row 5).
SEQUENCE_IDS = np.array([[1, 2, 0, 0], [0, 3, 0, 3], [0, 0, 0, 0], [9, 4, 5, 1]])


def _pool_numpy(table, ids, pooling):
    out = np.zeros((len(ids), table.shape[1]), np.float64)
    for i, row in enumerate(ids):
        rows = [min(j, 5) for j in row if j != 0]  # ids from 5 on share the one OOV row
        if not rows:
            continue  # an all-padding row pools to zeros
        vectors = table[rows].astype(np.float64)
        out[i] = {"sum": vectors.sum(0), "mean": vectors.mean(0), "max": vectors.max(0)}[pooling]
    return out


@pytest.mark.parametrize("pooling", ["mean", "sum", "max"])
def test_sequence_pooling_masks_padding(pooling):
    feature = SequenceFeature("hist", 5, 3, pooling, 4)
    layer = FeatureEmbedding([feature])
    layer.build(None)
    table = -np.abs(_table(6, 3))  # all negative: max pooling over padded zeros would be wrong
    table[0] = 100.0
    layer.tables["hist"].assign(table)
    out = layer({"hist": tf.constant(SEQUENCE_IDS, tf.int64)}).numpy()
    np.testing.assert_allclose(out, _pool_numpy(table, SEQUENCE_IDS, pooling), rtol=1e-6)
    np.testing.assert_array_equal(out[2], [0.0, 0.0, 0.0])


def test_sequence_pooling_with_string_vocabulary_and_custom_padding():
    features = [
        SequenceFeature("genres", None, 2, "mean", 3, vocabulary=["drama", "comedy"]),
        SequenceFeature("levels", 3, 2, "sum", 3, padding_value=-1),
    ]
    layer = FeatureEmbedding(features)
    layer.build(None)
    genres, levels = _table(3, 2, seed=3), _table(4, 2, seed=4)
    layer.tables["genres"].assign(genres)
    layer.tables["levels"].assign(levels)
    out = layer(
        {
            "genres": tf.constant([["comedy", "", "drama"], ["", "", ""], ["horror", "", ""]]),
            "levels": tf.constant([[0, -1, 2], [-1, -1, -1], [0, 0, 7]], tf.int64),
        }
    )
    expected = np.concatenate(
        [
            np.stack([(genres[1] + genres[0]) / 2, np.zeros(2), genres[2]]),
            np.stack([levels[0] + levels[2], np.zeros(2), 2 * levels[0] + levels[3]]),
        ],
        axis=1,
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "values",
    [
        # Wider than max_len (padding anywhere), ragged, and narrower: each row keeps its last
        # max_len non-padding ids, as to_feature_arrays does.
        tf.constant([[1, 0, 2, 3, 4, 0], [0, 0, 0, 5, 0, 0], [6, 7, 0, 8, 9, 9]], tf.int64),
        tf.ragged.constant([[1, 2, 3, 0, 4], [5, 0], [6, 7, 8, 9, 9]], tf.int64),
    ],
)
def test_sequences_longer_than_max_len_keep_their_last_ids(values):
    feature = SequenceFeature("hist", 10, 2, "sum", 3)
    layer = FeatureEmbedding([feature])
    layer.build(None)
    table = _table(11, 2)
    layer.tables["hist"].assign(table)
    kept = [[2, 3, 4], [5], [8, 9, 9]]
    expected = np.stack([table[row].sum(0) for row in kept])
    np.testing.assert_allclose(layer({"hist": values}).numpy(), expected, rtol=1e-6)


def test_sequences_shorter_than_max_len_are_padded():
    feature = SequenceFeature("tags", None, 2, "max", 3, vocabulary=["a", "b"])
    np.testing.assert_array_equal(fit_sequence(feature, tf.constant([["", "b"], ["a", "a"]])), [[b"b", b"", b""], [b"a", b"a", b""]])
    padded = tf.constant([[1, 2, 3]], tf.int64)
    assert fit_sequence(SequenceFeature("hist", 10, 2, "sum", 3), padded) is padded


@pytest.mark.parametrize(
    "feature, values, expected",
    [
        (DenseFeature("price", mean=10.0, std=4.0), [2.0, 10.0, 30.0], [[-2.0], [0.0], [5.0]]),
        (DenseFeature("age", min_value=20, max_value=70), [20.0, 45.0, 95.0], [[0.0], [0.5], [1.5]]),
        (DenseFeature("raw"), [2.0, -1.5, 0.0], [[2.0], [-1.5], [0.0]]),
        (DenseFeature("vec", 2, mean=1.0, std=0.5), [[1.0, 2.0], [0.0, 1.5], [3.0, 1.0]], [[0.0, 2.0], [-2.0, 1.0], [4.0, 0.0]]),
        (DenseFeature("count"), [1, 2, 3], [[1.0], [2.0], [3.0]]),  # integers are cast
    ],
)
def test_dense_normalization(feature, values, expected):
    layer = FeatureEmbedding([feature])
    out = layer({feature.name: tf.constant(values)})
    assert layer.weights == []
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == tf.float32


def test_output_columns_follow_feature_order():
    features = [
        DenseFeature("a", mean=1.0, std=2.0),
        SparseFeature("b", 3, 2),
        SequenceFeature("c", 3, 3, "sum", 2),
        DenseFeature("d", 2),
    ]
    layer = FeatureEmbedding(features)
    layer.build(None)
    b, c = _table(4, 2, seed=5), _table(4, 3, seed=6)
    layer.tables["b"].assign(b)
    layer.tables["c"].assign(c)
    # Keys in another order than the features: the output follows the features.
    out = layer(
        {
            "d": tf.constant([[7.0, 8.0], [9.0, 10.0]]),
            "c": tf.constant([[1, 2], [3, 0]], tf.int64),
            "b": tf.constant([2, 0], tf.int64),
            "a": tf.constant([5.0, -1.0]),
        }
    )
    expected = np.concatenate(
        [[[2.0], [-1.0]], b[[2, 0]], np.stack([c[1] + c[2], c[3]]), [[7.0, 8.0], [9.0, 10.0]]], axis=1
    )
    assert layer.output_dim == 8
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_missing_input_names_the_feature():
    layer = FeatureEmbedding([SparseFeature("user", 3, 2), DenseFeature("price")])
    with pytest.raises(KeyError, match=re.escape("['price']")):
        layer({"user": tf.constant([1], tf.int64)})


def test_shared_embed_name_uses_one_table():
    features = [
        SparseFeature("item", 4, 2, shared_embed_name="items"),
        SequenceFeature("hist", 4, 2, "sum", 3, shared_embed_name="items"),
        SparseFeature("user", 4, 2),
    ]
    layer = FeatureEmbedding(features)
    layer.build(None)
    assert sorted(layer.tables) == ["items", "user"]
    assert len(layer.weights) == 2
    table = _table(5, 2, seed=7)
    layer.tables["items"].assign(table)
    out = layer(
        {
            "item": tf.constant([3, 1], tf.int64),
            "hist": tf.constant([[1, 2, 0], [4, 0, 0]], tf.int64),
            "user": tf.constant([0, 0], tf.int64),
        }
    ).numpy()
    np.testing.assert_array_equal(out[:, :2], table[[3, 1]])
    np.testing.assert_allclose(out[:, 2:4], np.stack([table[1] + table[2], table[4]]), rtol=1e-6)


def test_tables_start_different():
    layer = FeatureEmbedding([SparseFeature("a", 50, 8), SparseFeature("b", 50, 8)])
    layer.build(None)
    a, b = layer.tables["a"].numpy(), layer.tables["b"].numpy()
    assert not np.allclose(a, b)
    assert np.abs(a).max() <= 0.05  # the default "uniform" initializer draws from [-0.05, 0.05]


@pytest.mark.parametrize("rows", ["vocab_size", "num_rows"])
def test_pretrained_table_loads_exactly(tmp_path, rows):
    feature_rows = 4 if rows == "vocab_size" else 6
    matrix = np.random.default_rng(8).normal(size=(feature_rows, 3))  # float64 on disk
    path = tmp_path / "user.npy"
    np.save(path, matrix)
    feature = SparseFeature("user", 4, 3, num_oov_buckets=2, pretrained_path=str(path))
    layer = FeatureEmbedding([feature], embeddings_initializer="zeros")
    out = layer({"user": tf.constant([3, 0, 4, 5], tf.int64)})
    table = layer.tables["user"].numpy()
    expected = np.concatenate([matrix, np.zeros((6 - feature_rows, 3))]).astype(np.float32)
    np.testing.assert_array_equal(table, expected)
    np.testing.assert_array_equal(out, expected[[3, 0, 4, 5]])
    assert _in(layer.tables["user"], layer.trainable_weights)


def test_pretrained_frozen_table_is_not_trainable(tmp_path):
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "item.npy", matrix)
    features = [
        SparseFeature("item", 3, 3, pretrained_path=str(tmp_path / "item.npy"), trainable=False),
        SparseFeature("user", 3, 3),
    ]
    layer = FeatureEmbedding(features)
    with tf.GradientTape() as tape:
        out = layer({"item": tf.constant([2, 1], tf.int64), "user": tf.constant([0, 1], tf.int64)})
    np.testing.assert_array_equal(out[:, :3], matrix[[2, 1]])
    assert not _in(layer.tables["item"], layer.trainable_weights)
    assert _in(layer.tables["item"], layer.non_trainable_weights)
    assert _in(layer.tables["user"], layer.trainable_weights)
    assert len(layer.trainable_weights) == 1
    grads = tape.gradient(out, layer.trainable_weights)
    assert grads[0] is not None


@pytest.mark.parametrize("shape", [(5, 3), (4, 2), (12,), (1, 4, 3)])
def test_pretrained_wrong_shape_names_feature_and_file(tmp_path, shape):
    path = tmp_path / "bad_table.npy"
    np.save(path, np.zeros(shape, np.float32))
    layer = FeatureEmbedding([SparseFeature("user", 3, 3, pretrained_path=str(path))])
    with pytest.raises(ValueError) as info:
        layer({"user": tf.constant([0], tf.int64)})
    message = str(info.value)
    assert "'user'" in message and str(path) in message and str(shape) in message
    assert "(3 or 4, 3)" in message


def test_pretrained_missing_file_names_feature_and_file(tmp_path):
    path = tmp_path / "missing.npy"
    layer = FeatureEmbedding([SparseFeature("user", 3, 3, pretrained_path=str(path))])
    with pytest.raises(ValueError, match=re.escape(f"Feature 'user': cannot read pretrained_path '{path}'")):
        layer({"user": tf.constant([0], tf.int64)})


def test_gradient_wrt_table_is_indexed_slices():
    features = [
        SparseFeature("item", 5, 2, shared_embed_name="items"),
        SequenceFeature("hist", 5, 2, "sum", 3, shared_embed_name="items"),
    ]
    layer = FeatureEmbedding(features)
    layer.build(None)
    with tf.GradientTape() as tape:
        out = layer({"item": tf.constant([1, 9], tf.int64), "hist": tf.constant([[1, 2, 0], [2, 2, 0]], tf.int64)})
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, layer.tables["items"])
    assert isinstance(grad, tf.IndexedSlices)
    # Each gathered row gets 1 per use: row 1 twice, row 2 three times, OOV row 5 once.
    counts = np.array([0, 2, 3, 0, 0, 1], np.float32)
    np.testing.assert_array_equal(tf.convert_to_tensor(grad), np.repeat(counts[:, None], 2, axis=1))


def test_config_round_trip_gives_same_outputs(tmp_path):
    np.save(tmp_path / "t.npy", np.ones((3, 2), np.float32))
    features = [
        SparseFeature("user", 10, 4, num_oov_buckets=2),
        SparseFeature("city", None, 2, vocabulary=["a", "b", "c"], pretrained_path=str(tmp_path / "t.npy"), trainable=False),
        SequenceFeature("hist", 10, 4, "max", 3, shared_embed_name="user", num_oov_buckets=2),
        DenseFeature("price", mean=1.0, std=2.0),
    ]
    layer = FeatureEmbedding(features, embeddings_initializer=keras.initializers.RandomNormal(stddev=0.5), name="emb")
    inputs = {
        "user": tf.constant([1, 12, -3], tf.int64),
        "city": tf.constant(["b", "z", "a"]),
        "hist": tf.constant([[1, 2, 0], [0, 0, 0], [9, 3, 11]], tf.int64),
        "price": tf.constant([0.0, 1.0, 5.0]),
    }
    out = layer(inputs)
    config = layer.get_config()
    assert config["features"][1]["vocabulary"] == ["a", "b", "c"]
    clone = FeatureEmbedding.from_config(config)
    assert clone.features == layer.features
    assert clone.name == "emb"
    clone(inputs)
    assert [tuple(w.shape) for w in clone.weights] == [(12, 4), (4, 2)]
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(inputs), out)
    assert clone.get_config() == config


def test_pretrained_file_is_read_again_when_rebuilt_and_saved_weights_replace_it(tmp_path):
    """As documented: the file is read whenever the layer is built, also from its config."""
    path = tmp_path / "user.npy"
    np.save(path, np.arange(8, dtype=np.float32).reshape(4, 2))
    layer = FeatureEmbedding([SparseFeature("user", 3, 2, pretrained_path=str(path))])
    inputs = {"user": tf.constant([2, 0, 7], tf.int64)}
    layer(inputs)
    trained = _table(4, 2, seed=11)
    layer.tables["user"].assign(trained)
    clone = FeatureEmbedding.from_config(layer.get_config())
    clone(inputs)
    np.testing.assert_array_equal(clone.tables["user"].numpy(), np.arange(8).reshape(4, 2))
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(inputs), trained[[2, 0, 3]])
    path.unlink()
    with pytest.raises(ValueError, match=re.escape(f"Feature 'user': cannot read pretrained_path '{path}'")):
        FeatureEmbedding.from_config(layer.get_config())(inputs)


def test_embedding_in_a_functional_model():
    from tf_mtl.features.inputs import keras_inputs

    features = [SparseFeature("user", 4, 2), SequenceFeature("hist", 4, 2, "mean", 2), DenseFeature("vec", 3)]
    inputs = keras_inputs(features)
    layer = FeatureEmbedding(features)
    model = keras.Model(inputs, layer(inputs))
    assert tuple(model.output_shape) == (None, 7)
    user, hist = _table(5, 2, seed=9), _table(5, 2, seed=10)
    layer.tables["user"].assign(user)
    layer.tables["hist"].assign(hist)
    out = model(
        {
            "user": tf.constant([3, 8], tf.int64),
            "hist": tf.constant([[1, 2], [0, 0]], tf.int64),
            "vec": tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        }
    )
    expected = np.concatenate([user[[3, 4]], np.stack([(hist[1] + hist[2]) / 2, np.zeros(2)]), [[1, 2, 3], [4, 5, 6]]], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
