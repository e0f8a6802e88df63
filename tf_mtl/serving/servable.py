"""One loaded version of a SavedModel and the checks every request goes through, whichever
protocol (gRPC or REST) it came in on.

    servable = Servable("ranker", 1, "saved_models/ranker/1")
    scores = servable.predict("serving_default", {"user_id": np.array([3]), ...})

Errors are ``ServingError``s carrying the gRPC status code TF Serving would answer with;
the REST front end maps the same codes to HTTP statuses.
"""

import os

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tf_mtl.export.saved_model import WARMUP_PATH

try:  # TensorFlow's own fast paths for a request (see _tensor, _run); the public API otherwise
    from tensorflow.python.eager import context
    from tensorflow.python.framework.ops import EagerTensor as _EagerTensor
except ImportError:
    _EagerTensor = None

DEFAULT_SIGNATURE = "serving_default"


class ServingError(Exception):
    """A request that cannot be answered: ``code`` is a ``grpc.StatusCode``."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def read_signature_defs(path):
    """The ``SignatureDef``s of the SavedModel at ``path``, as stored in its ``saved_model.pb``."""
    with open(os.path.join(path, "saved_model.pb"), "rb") as file:
        saved_model = saved_model_pb2.SavedModel.FromString(file.read())
    if not saved_model.meta_graphs:
        raise ValueError(f"{path}/saved_model.pb holds no MetaGraphDef; expected one tagged 'serve'.")
    return dict(saved_model.meta_graphs[0].signature_def)


def _check_dtype(name, array, spec):
    if spec.dtype == tf.string:
        ok = array.dtype.kind in "OSU"
    else:
        ok = array.dtype.kind in "biuf" and tf.as_dtype(array.dtype) == spec.dtype
    if not ok:
        received = "string" if array.dtype.kind in "OSU" else array.dtype.name
        raise _invalid(f"Input {name!r}: expected dtype {spec.dtype.name}, received {received}.")


def _tensor(array, dtype):
    """``tf.constant(array, dtype)`` for a checked input, through the constructor ``tf.constant``
    itself ends in when TensorFlow has it: a quarter of the cost (6 us an input, 0.15 ms for a
    request of 25 inputs)."""
    if _EagerTensor is None or dtype == tf.string:
        return tf.constant(array, dtype=dtype)
    ctx = context.context()
    ctx.ensure_initialized()
    return _EagerTensor(array, ctx.device_name, dtype.as_datatype_enum)


def _run(signature, tensors):
    """Calls a loaded signature on its checked inputs, by its flat signature when TensorFlow
    has one: binding 25 keyword arguments to the structured signature takes 0.2 ms of
    Python, more than a ranking model needs for one request."""
    keywords = getattr(signature, "_arg_keywords", None)
    if keywords is None or not hasattr(signature, "_call_flat") or sorted(keywords) != sorted(tensors):
        return signature(**tensors)
    return signature._call_flat([tensors[name] for name in keywords], signature.captured_inputs)


class Servable:
    """A SavedModel version loaded with ``tf.saved_model.load``, ready to answer requests.

    Args:
        name: the model's name.
        version: its integer version.
        path: the version's folder (``<model_base_path>/<version>``).
    """

    def __init__(self, name, version, path):
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = read_signature_defs(path)
        self._module = tf.saved_model.load(path)
        self.signatures = dict(self._module.signatures)
        # Per signature and input: the spec, the numpy dtype (None for strings) and the shape.
        self._inputs = {
            name: {
                key: (spec, None if spec.dtype == tf.string else spec.dtype.as_numpy_dtype, tuple(spec.shape.as_list()))
                for key, spec in signature.structured_input_signature[1].items()
            }
            for name, signature in self.signatures.items()
        }
        self._outputs = {name: set(signature.structured_outputs) for name, signature in self.signatures.items()}

    def input_specs(self, signature_name):
        """``{input name: tf.TensorSpec}`` of a signature; NOT_FOUND if there is none of that name."""
        return self._signature(signature_name).structured_input_signature[1]

    def _signature(self, signature_name):
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in self.signatures:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Serving signature name: {signature_name!r} not found in signature def of model "
                f"{self.name!r} version {self.version}; available: {sorted(self.signatures)}.",
            )
        return self.signatures[signature_name]

    def predict(self, signature_name, inputs, output_filter=(), max_batch_size=None):
        """Runs a signature on ``inputs`` (``{name: np.ndarray}``); returns ``{output: np.ndarray}``.

        Every input of the signature must be given, no other, each with the signature's dtype
        and a compatible shape, and all with the same batch size, at most ``max_batch_size``.
        """
        signature = self._signature(signature_name)
        signature_name = signature_name or DEFAULT_SIGNATURE
        specs = self._inputs[signature_name]
        missing = sorted(set(specs) - set(inputs))
        if missing:
            raise _invalid(f"Missing input(s) {missing} for signature {signature_name!r}; expected {sorted(specs)}.")
        extra = sorted(set(inputs) - set(specs))
        if extra:
            raise _invalid(f"Unknown input(s) {extra} for signature {signature_name!r}; expected {sorted(specs)}.")
        batch_sizes = set()
        for name, (spec, dtype, shape) in specs.items():
            array = inputs[name]
            if array.dtype != dtype:
                _check_dtype(name, array, spec)
            if len(array.shape) != len(shape) or any(d is not None and d != n for d, n in zip(shape, array.shape)):
                raise _invalid(f"Input {name!r}: expected shape {spec.shape}, received {list(array.shape)}.")
            if array.ndim:
                batch_sizes.add(array.shape[0])
        if len(batch_sizes) > 1:
            raise _invalid(f"Inputs have different batch sizes {sorted(batch_sizes)}; expected one.")
        batch = batch_sizes.pop() if batch_sizes else 1
        if max_batch_size is not None and batch > max_batch_size:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Batch size {batch} is larger than the maximum batch size {max_batch_size}.",
            )
        outputs = self._outputs[signature_name]
        unknown = sorted(set(output_filter) - outputs)
        if unknown:
            raise _invalid(f"Output tensor alias(es) {unknown} not found in signature {signature_name!r}; expected {sorted(outputs)}.")
        tensors = {name: _tensor(inputs[name], spec.dtype) for name, (spec, _, _) in specs.items()}
        try:
            results = _run(signature, tensors)
        except tf.errors.InvalidArgumentError as error:
            raise _invalid(f"Signature {signature_name!r} rejected the request: {error.message}") from error
        wanted = list(output_filter) or list(results)
        return {name: results[name].numpy() for name in wanted}

    def warmup(self):
        """Replays ``assets.extra/tf_serving_warmup_requests`` (predict logs), if present; raises
        on the first request that fails, as TF Serving fails the load."""
        from tensorflow_serving.apis import prediction_log_pb2

        path = os.path.join(self.path, WARMUP_PATH)
        if not os.path.exists(path):
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(path):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"{path}: only predict_log warmup records are supported, received {log.WhichOneof('log_type')}.")
            request = log.predict_log.request
            inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            self.predict(request.model_spec.signature_name, inputs, request.output_filter)
            count += 1
        return count
