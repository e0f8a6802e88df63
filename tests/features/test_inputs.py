"""Tests of the Keras inputs, parse spec and serving specs derived from the feature spec."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.features.inputs import keras_inputs, parse_examples, parse_spec, tensor_specs
from tf_mtl.features.spec import DenseFeature, SequenceFeature, SparseFeature

FEATURES = (
    SparseFeature("user", 100, 4),
    SparseFeature("city", None, 4, vocabulary=["paris", "rome"]),
    SparseFeature("query", 16, 4, dtype="string"),
    SequenceFeature("hist", 100, 4, "mean", 3),
    SequenceFeature("tags", 16, 4, "sum", 2, dtype="string"),
    DenseFeature("price", mean=1.0, std=2.0),
    DenseFeature("vec", 3),
)

# name -> (shape without batch, dtype)
EXPECTED = {
    "user": ((), tf.int64),
    "city": ((), tf.string),
    "query": ((), tf.string),
    "hist": ((3,), tf.int64),
    "tags": ((2,), tf.string),
    "price": ((), tf.float32),
    "vec": ((3,), tf.float32),
}


def test_keras_inputs_shapes_dtypes_and_names():
    inputs = keras_inputs(FEATURES)
    assert list(inputs) == [f.name for f in FEATURES]
    for name, (shape, dtype) in EXPECTED.items():
        assert tuple(inputs[name].shape) == (None, *shape), name
        assert tf.as_dtype(inputs[name].dtype) == dtype, name
        assert inputs[name].name == name


def test_keras_inputs_validate_the_spec():
    with pytest.raises(ValueError, match="'user' is used more than once"):
        keras_inputs([SparseFeature("user", 10, 4), DenseFeature("user")])


def test_keras_inputs_feed_a_model():
    inputs = keras_inputs([SparseFeature("user", 10, 4), DenseFeature("vec", 3)])
    model = keras.Model(inputs, {"user": inputs["user"], "vec": inputs["vec"]})
    out = model({"user": tf.constant([3, 4], tf.int64), "vec": tf.ones((2, 3))})
    np.testing.assert_array_equal(out["user"], [3, 4])
    np.testing.assert_array_equal(out["vec"], np.ones((2, 3)))


def test_tensor_specs():
    specs = tensor_specs(FEATURES)
    assert specs == {
        name: tf.TensorSpec((None, *shape), dtype, name=name) for name, (shape, dtype) in EXPECTED.items()
    }
    assert list(specs) == [f.name for f in FEATURES]


def test_parse_spec():
    assert parse_spec(FEATURES) == {
        "user": tf.io.FixedLenFeature((), tf.int64),
        "city": tf.io.FixedLenFeature((), tf.string),
        "query": tf.io.FixedLenFeature((), tf.string),
        "hist": tf.io.RaggedFeature(tf.int64),
        "tags": tf.io.RaggedFeature(tf.string),
        "price": tf.io.FixedLenFeature((), tf.float32),
        "vec": tf.io.FixedLenFeature((3,), tf.float32),
    }


def _feature(values):
    if isinstance(values[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if isinstance(values[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _example(**values):
    """A serialized tf.Example; empty lists leave the feature out of the record."""
    features = {k: _feature(v) for k, v in values.items() if v}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def test_parse_examples_all_kinds():
    records = [
        _example(user=[7], city=[b"rome"], query=[b"shoes"], hist=[5], tags=[b"x", b"y", b"z"], price=[2.5], vec=[1.0, 2.0, 3.0]),
        _example(user=[0], city=[b"oslo"], query=[b""], hist=[1, 2, 3, 4, 5], tags=[], price=[-1.0], vec=[0.0, 0.5, -4.0]),
        _example(user=[99], city=[b"paris"], query=[b"hat"], hist=[], tags=[b"a"], price=[0.0], vec=[9.0, 8.0, 7.0]),
    ]
    parsed = parse_examples(tf.constant(records), FEATURES)
    assert sorted(parsed) == sorted(f.name for f in FEATURES)
    np.testing.assert_array_equal(parsed["user"], [7, 0, 99])
    np.testing.assert_array_equal(parsed["city"], [b"rome", b"oslo", b"paris"])
    np.testing.assert_array_equal(parsed["query"], [b"shoes", b"", b"hat"])
    # Shorter sequences are padded with the padding value, longer ones keep their last max_len ids.
    np.testing.assert_array_equal(parsed["hist"], [[5, 0, 0], [3, 4, 5], [0, 0, 0]])
    np.testing.assert_array_equal(parsed["tags"], [[b"y", b"z"], [b"", b""], [b"a", b""]])
    np.testing.assert_array_equal(parsed["price"], np.array([2.5, -1.0, 0.0], np.float32))
    np.testing.assert_array_equal(parsed["vec"], np.array([[1, 2, 3], [0, 0.5, -4], [9, 8, 7]], np.float32))
    for name, (shape, dtype) in EXPECTED.items():
        assert parsed[name].dtype == dtype, name
        assert tuple(parsed[name].shape) == (3, *shape), name


@pytest.mark.parametrize(
    "lengths, expected",
    [
        ([1, 2], [[1, 0, 0, 0], [1, 2, 0, 0]]),  # every sequence shorter than max_len
        ([0, 0], [[0, 0, 0, 0], [0, 0, 0, 0]]),  # none present in the batch
        ([4, 4], [[1, 2, 3, 4], [1, 2, 3, 4]]),  # exactly max_len
        ([6, 0], [[3, 4, 5, 6], [0, 0, 0, 0]]),  # longer than max_len: the most recent ids
        ([7, 5], [[4, 5, 6, 7], [2, 3, 4, 5]]),  # all longer
    ],
)
def test_parse_examples_pads_and_truncates_sequences(lengths, expected):
    feature = SequenceFeature("hist", 100, 4, "mean", 4)
    records = [_example(hist=list(range(1, n + 1))) for n in lengths]
    parsed = parse_examples(tf.constant(records), [feature])
    np.testing.assert_array_equal(parsed["hist"], expected)
    assert parsed["hist"].shape == (2, 4)


def test_parse_examples_pads_with_a_custom_padding_value():
    feature = SequenceFeature("levels", 10, 2, "mean", 3, padding_value=-1)
    records = [_example(levels=[0, 4]), _example(levels=[])]
    parsed = parse_examples(tf.constant(records), [feature])
    np.testing.assert_array_equal(parsed["levels"], [[0, 4, -1], [-1, -1, -1]])


def test_parse_examples_inside_a_dataset():
    features = [SequenceFeature("hist", 100, 4, "sum", 2), DenseFeature("price")]
    records = [_example(hist=[3, 4, 5], price=[1.0]), _example(hist=[6], price=[2.0])]
    dataset = tf.data.Dataset.from_tensor_slices(records).batch(2).map(lambda x: parse_examples(x, features))
    batch = next(iter(dataset))
    np.testing.assert_array_equal(batch["hist"], [[4, 5], [6, 0]])
    assert dataset.element_spec["hist"].shape.as_list() == [None, 2]
    np.testing.assert_array_equal(batch["price"], [1.0, 2.0])


def test_parse_examples_requires_sparse_and_dense_features():
    with pytest.raises(tf.errors.InvalidArgumentError, match="price"):
        parse_examples(tf.constant([_example(user=[1])]), [SparseFeature("user", 10, 4), DenseFeature("price")])
