"""TensorProto <-> numpy on the request path: raw bytes for numbers, TensorFlow's converters otherwise."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tf_mtl.serving.servable import _eager_device, _tensor
from tf_mtl.serving.tensors import from_proto, shape_of, to_proto


@pytest.mark.parametrize(
    "array",
    [
        np.array([1.5, -2.0], np.float32),
        np.array([[1, 2, 3], [4, 5, 6]], np.int64),
        np.array([7], np.int32),
        np.array(3.25, np.float64),
        np.zeros((0, 4), np.float32),
        np.array([b"paris", b"rome"], object),
    ],
)
def test_round_trip_and_agreement_with_tensorflow(array):
    proto = to_proto(array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    np.testing.assert_array_equal(from_proto(proto), array)
    np.testing.assert_array_equal(from_proto(tf.make_tensor_proto(array)), array)
    assert from_proto(proto).dtype == tf.make_ndarray(proto).dtype


def test_non_contiguous_arrays_are_written_in_order():
    array = np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(from_proto(to_proto(array)), array)


def test_shape_of_reads_the_declared_shape_without_decoding():
    assert shape_of(to_proto(np.zeros((3, 4), np.float32))) == (3, 4)
    assert shape_of(tf.make_tensor_proto(1.0, shape=[10**12, 2])) == (10**12, 2)
    assert shape_of(to_proto(np.float64(1.0))) == ()


def _listed(*shape, **values):
    """A TensorProto listing its values in a ``*_val`` field, declaring ``shape``."""
    (field, listed), = values.items()
    dtype = {"float_val": types_pb2.DT_FLOAT, "int64_val": types_pb2.DT_INT64, "string_val": types_pb2.DT_STRING}[field]
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": n} for n in shape]), **{field: listed})


@pytest.mark.parametrize(
    "proto, expected",
    [
        (tf.make_tensor_proto(1.5, shape=[3, 2]), np.full((3, 2), 1.5, np.float32)),
        (_listed(4, int64_val=[4, 5]), np.array([4, 5, 5, 5])),
        (_listed(3, string_val=[b"a"]), np.array([b"a"] * 3, object)),
    ],
)
def test_values_fill_the_declared_shape(proto, expected):
    """The gRPC front end checks ``shape_of`` and then runs the decoded arrays unchecked."""
    array = from_proto(proto)
    assert array.shape == shape_of(proto)
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize("proto, message", [(_listed(2, float_val=[1.0, 2.0, 3.0]), "negative"),
                                            (_listed(2, string_val=[b"a", b"b", b"c"]), "cannot reshape array of size 3")])
def test_more_values_than_the_declared_shape_are_refused(proto, message):
    with pytest.raises(ValueError, match=message):
        from_proto(proto)


def test_content_that_does_not_fill_the_shape_is_refused():
    proto = to_proto(np.array([1.0, 2.0], np.float32))
    proto.tensor_shape.dim[0].size = 3
    with pytest.raises(ValueError, match="holds 8 bytes, not a float32 tensor of shape \\[3\\]"):
        from_proto(proto)
    proto.tensor_shape.dim[0].size = -1
    with pytest.raises(ValueError):
        from_proto(proto)


@pytest.mark.parametrize("array, dtype", [(np.array([3, -1], np.int64), tf.int64), (np.array([[0.5]], np.float32), tf.float32),
                                          (np.array([b"a", b"bc"], object), tf.string), (np.arange(6, dtype=np.int64)[::2], tf.int64)])
def test_request_tensors_equal_tf_constant(array, dtype):
    tensor = _tensor(array, dtype, _eager_device())
    assert tensor.dtype == dtype and tensor.shape == array.shape
    np.testing.assert_array_equal(tensor.numpy(), tf.constant(array, dtype=dtype).numpy())


def test_signatures_are_called_through_their_flat_signature(version_1):
    """The fast path of ``Servable.predict`` is taken with this TensorFlow: every signature has a
    flat call, whose captured inputs are the model's variable handles, and which answers as the
    signature does (``serving_default``, on constant inputs)."""
    from tf_mtl.serving import Servable
    from tf_mtl.serving.servable import _ConcreteFunction

    servable = Servable("ranker", 1, version_1)
    for name, signature in servable.signatures.items():
        names, captured, call = servable._flat_calls[name]
        assert sorted(names) == sorted(signature.structured_input_signature[1])
        assert captured and all(tensor.dtype == tf.resource for tensor in captured)
        assert call.func is _ConcreteFunction._call_flat
    signature = servable.signatures["serving_default"]
    names, captured, call = servable._flat_calls["serving_default"]
    inputs = {key: tf.fill([2, *spec.shape[1:]], tf.constant("a" if spec.dtype == tf.string else 1, spec.dtype)) for key, spec in signature.structured_input_signature[1].items()}
    flat = call([inputs[key] for key in names], captured)
    for output, value in signature(**inputs).items():
        np.testing.assert_array_equal(flat[output].numpy(), value.numpy())
