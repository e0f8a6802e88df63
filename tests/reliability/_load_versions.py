"""Model versions for the fault and load tests: versions with other weights made from an
exported one in milliseconds, the requests sent to them and the checks of their answers. The
model itself is ``_serving``'s."""

import os
import shutil

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tf_mtl.serving.tensors import from_proto, to_proto

from ._serving import MODEL


def reweighted(source, target, factor):
    """Copies the SavedModel ``source`` to ``target`` with every float variable multiplied by
    ``factor``: a version with other scores and the same graph, without a second export."""
    shutil.copytree(source, target)
    prefix = os.path.join(source, "variables", "variables")
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_dtype_map())
    values = [reader.get_tensor(name) for name in names]
    values = [v * np.asarray(factor, v.dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for v in values]
    tf.raw_ops.SaveV2(
        prefix=os.path.join(target, "variables", "variables"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(v) for v in values],
    )
    return str(target)


def batches(data, count, rows):
    """``count`` request batches of ``rows`` rows each, taken in turn from ``data``'s rows."""
    n = len(next(iter(data.x.values())))
    starts = [(i * rows) % (n - rows) for i in range(count)]
    return [{name: values[start : start + rows] for name, values in data.x.items()} for start in starts]


def predict_request(batch):
    """A ``PredictRequest`` for ``MODEL``'s ``serving_default``, no version named."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for name, values in batch.items():
        request.inputs[name].CopyFrom(to_proto(values))
    return request


def answer(response):
    """``(version, {output: np.ndarray})`` of a ``PredictResponse``."""
    return response.model_spec.version.value, {name: from_proto(proto) for name, proto in response.outputs.items()}


def same_scores(outputs, expected):
    """The same outputs, every row of each bit for bit equal."""
    return outputs.keys() == expected.keys() and all(np.array_equal(outputs[k], expected[k]) for k in expected)
