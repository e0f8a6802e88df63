"""``TensorProto`` <-> numpy on the request path.

Numeric arrays travel as their raw bytes (``tensor_content``, host byte order, as TensorFlow
writes them); everything else (strings, protos that list values in ``int64_val``...) goes
through ``tf.make_tensor_proto`` / ``tf.make_ndarray``. For a request of 25 one-row inputs
these take 0.6 ms of Python; the raw bytes take a twentieth of that.
"""

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

_DTYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
}
_NUMPY = {value: key for key, value in _DTYPES.items()}


def to_proto(value):
    """A ``TensorProto`` of ``value`` (an array or anything ``np.asarray`` takes)."""
    array = np.asarray(value)
    dtype = _DTYPES.get(array.dtype)
    if dtype is None:
        return tf.make_tensor_proto(array)
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape])
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=np.ascontiguousarray(array).tobytes())


def shape_of(proto):
    """The shape a ``TensorProto`` declares, before its values are decoded."""
    return tuple(dim.size for dim in proto.tensor_shape.dim)


def from_proto(proto):
    """The numpy array of a ``TensorProto``, of the shape it declares (``shape_of``); ``ValueError``
    or ``TypeError`` if it is malformed. Check ``shape_of(proto)`` first: TensorFlow fills a
    declared shape from a single value."""
    dtype = _NUMPY.get(proto.dtype)
    if dtype is None or not proto.tensor_content:
        return tf.make_ndarray(proto)
    shape = shape_of(proto)
    if any(size < 0 for size in shape) or len(proto.tensor_content) != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"tensor_content holds {len(proto.tensor_content)} bytes, not a {dtype.name} tensor of shape {list(shape)}.")
    return np.frombuffer(proto.tensor_content, dtype).reshape(shape)
