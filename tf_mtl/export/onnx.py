"""ONNX export of tf_mtl models, for runtimes without TensorFlow (onnxruntime and others).

The model is traced as a ``tf.function`` over the serving ``TensorSpec``s of its feature spec
(``tf_mtl.features.tensor_specs``) and converted by tf2onnx, so the same path serves Keras 3
and Keras 2 (``TF_USE_LEGACY_KERAS=1``).
"""


import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from tf_mtl.features import tensor_specs
from tf_mtl.files import write_bytes


def _check_exportable(features):
    for feature in features:
        if getattr(feature, "dtype", None) == "string":
            how = "hashed" if feature.hashed else "looked up in its vocabulary"
            raise ValueError(
                f"Feature {feature.name!r} cannot be exported to ONNX: its string ids are {how} by "
                "FarmHash fingerprint (tf.strings.to_hash_bucket_fast), which no ONNX operator computes. "
                "Map the strings to integer ids before the model (dtype='int64', with or without an "
                "integer vocabulary) to export it."
            )


def _lower_bound(ctx, node, name, args):
    """TensorFlow's ``LowerBound`` (``tf.searchsorted``) as a branch-free binary search.

    For each value, the number of entries of its row of ``sorted_inputs`` that are smaller: a
    count built bit by bit from the highest power of two down, each step one gather and one
    comparison, so memory grows with the number of values, not with the length of the array.
    """
    sorted_inputs, values = node.input
    length = ctx.get_shape(sorted_inputs)[-1]
    if length is None or length < 0:
        raise ValueError(f"ONNX export: {name} searches an array of unknown length; only fixed lengths are supported.")
    output_shapes, output_dtypes = node.output_shapes, node.output_dtypes
    ctx.remove_node(name)

    def const(value):
        return ctx.make_const(tf2onnx.utils.make_name(f"{name}_const"), np.array(value, np.int64)).output[0]

    shape = ctx.make_node("Shape", [values]).output[0]
    count = ctx.make_node("Expand", [const(0), shape]).output[0]
    limit, last = const(length + 1), const(length)
    step = 1 << (length.bit_length() - 1) if length else 0
    while step:
        candidate = ctx.make_node("Add", [count, const(step)]).output[0]
        index = ctx.make_node("Sub", [ctx.make_node("Min", [candidate, last]).output[0], const(1)]).output[0]
        entry = ctx.make_node("GatherElements", [sorted_inputs, index], attr={"axis": 1}).output[0]
        smaller = ctx.make_node("Less", [entry, values]).output[0]
        in_range = ctx.make_node("Less", [candidate, limit]).output[0]
        take = ctx.make_node("And", [in_range, smaller]).output[0]
        count = ctx.make_node("Where", [take, candidate, count]).output[0]
        step >>= 1
    ctx.make_node(
        "Cast", [count], attr={"to": output_dtypes[0]}, name=name, outputs=node.output,
        shapes=output_shapes, dtypes=output_dtypes,
    )


def _floor_mod(ctx, node, name, args):
    """TensorFlow's ``FloorMod``: the remainder takes the divisor's sign, so a negative id still
    lands in an OOV row. tf2onnx 1.17 builds integer ``FloorMod`` from ``Div``, which truncates in
    onnxruntime (``floormod(-3, 2)`` came out -1, not 1; onnx/tensorflow-onnx#2174)."""
    x, y = node.input
    output_shapes, output_dtypes = node.output_shapes, node.output_dtypes
    ctx.remove_node(name)
    if output_dtypes[0] in (onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
        # ONNX ``Mod`` on floats only truncates (``fmod=1``): x - floor(x / y) * y instead.
        quotient = ctx.make_node("Floor", [ctx.make_node("Div", [x, y]).output[0]]).output[0]
        inputs, op, attr = [x, ctx.make_node("Mul", [quotient, y]).output[0]], "Sub", {}
    else:
        inputs, op, attr = [x, y], "Mod", {"fmod": 0}
    ctx.make_node(op, inputs, attr=attr, name=name, outputs=node.output, shapes=output_shapes, dtypes=output_dtypes)


# TensorFlow ops tf2onnx maps wrongly or not at all, in standard ONNX: ``{tf_op: (handler, [])}``.
_HANDLERS = {"FloorMod": (_floor_mod, []), "LowerBound": (_lower_bound, [])}


def _unsupported_nodes(proto):
    """Nodes that are no registered ONNX operator (tf2onnx leaves ops it cannot map in place)."""
    return [node for node in proto.graph.node if not onnx.defs.has(node.op_type, node.domain)]


def export_onnx(model, path, opset=None):
    """Writes a tf_mtl model to an ONNX file for inference, and returns ``path``.

    The graph takes one input per feature, named after the feature, with a free batch
    dimension (the shapes and dtypes of ``tf_mtl.features.tensor_specs``), and returns one
    output per model output, named after it (e.g. ``"ctr"``, ``"cvr"`` and ESMM's
    ``"ctcvr"``), each ``(batch,)``. It computes ``model(x, training=False)``: dropout off,
    batch normalization with its moving statistics. Outputs are listed in sorted name order.

    What exports: integer sparse and sequence features, with or without an integer
    vocabulary (its lookup becomes a binary search, which tf2onnx does not provide), OOV
    buckets and shared tables; dense features with their normalization.

    What does not: features with ``dtype="string"``, whether hashed or with a string
    vocabulary. Their ids are mapped by FarmHash fingerprint, which no ONNX operator computes;
    a ``ValueError`` names the feature. Map the strings to integer ids upstream instead.
    The model must also fit in one protobuf (2 GiB, ONNX's limit without external data).

    The file is written to a temporary file in the same directory and then moved into
    place, so a failed export leaves neither a partial file nor a changed ``path``.

    Args:
        model: a ``tf_mtl.models.MultiTaskModel`` (any model with a ``features`` spec whose
            call takes a dict of feature tensors and returns a dict of outputs).
        path: the ``.onnx`` file to write; its directory must exist.
        opset: the ONNX opset (default: tf2onnx's default, 15).

    Returns:
        ``path``.

    Raises:
        ValueError: a feature, or an op of the model, has no ONNX equivalent.

    Example:

    >>> model = build_model("mmoe", [SparseFeature("user", 100, 8)], ["classification"] * 2)
    >>> export_onnx(model, "mmoe.onnx")
    'mmoe.onnx'
    >>> session = onnxruntime.InferenceSession("mmoe.onnx")
    >>> [o.name for o in session.get_outputs()]
    ['task1', 'task2']
    """
    _check_exportable(model.features)
    specs = tensor_specs(model.features)
    names = list(specs)
    signature = [specs[name] for name in names]

    # Positional arguments: tf2onnx names each graph input after its TensorSpec, i.e. the feature.
    @tf.function(input_signature=signature)
    def serve(*values):
        return model(dict(zip(names, values)), training=False)

    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=signature, opset=opset, custom_op_handlers=_HANDLERS
    )
    unsupported = _unsupported_nodes(proto)
    if unsupported:
        raise ValueError(
            f"Model {model.name!r} cannot be exported to ONNX: no ONNX operator for the TensorFlow ops "
            f"{sorted({n.op_type for n in unsupported})} (nodes {[n.name for n in unsupported]})."
        )
    write_bytes(path, proto.SerializeToString())
    return path
