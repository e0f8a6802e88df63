"""One loaded version of a SavedModel and the checks every request goes through, whichever
protocol (gRPC or REST) it came in on.

    servable = Servable("ranker", 1, "saved_models/ranker/1")
    scores = servable.predict("serving_default", {"user_id": np.array([3]), ...})

Errors are ``ServingError``s carrying the gRPC status code TF Serving would answer with;
the REST front end maps the same codes to HTTP statuses.

A request's names and shapes are checked (``check_shapes``) before its tensors are decoded, so
a request cannot make the server build more than ``max_batch_size`` rows of each input.
"""

import functools
import os

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tf_mtl.export.saved_model import WARMUP_PATH

try:  # TensorFlow's own fast paths for a request (see _tensor, _flat_call); the public API otherwise
    from tensorflow.python.eager import context
    from tensorflow.python.eager.polymorphic_function.concrete_function import ConcreteFunction as _ConcreteFunction
    from tensorflow.python.framework.ops import EagerTensor as _EagerTensor
except ImportError:
    _EagerTensor = _ConcreteFunction = None

DEFAULT_SIGNATURE = "serving_default"
# Error messages echo what requests sent (model names, signature names); longer messages are
# cut here, as gRPC refuses status details over 8 KiB once percent-encoded (3 characters a byte).
MAX_MESSAGE_BYTES = 2400
# TensorFlow's error codes are gRPC's (tensorflow/core/protobuf/error_codes.proto).
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    """A request that cannot be answered: ``code`` is a ``grpc.StatusCode``; ``message`` is cut
    to ``MAX_MESSAGE_BYTES`` of UTF-8."""

    def __init__(self, code, message):
        data = message.encode("utf-8", "backslashreplace")
        if len(data) > MAX_MESSAGE_BYTES:
            message = f"{data[:MAX_MESSAGE_BYTES].decode('utf-8', 'ignore')}... ({len(data)} bytes in all)"
        else:
            message = data.decode("utf-8")
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


def _tensor(array, dtype, device):
    """``tf.constant(array, dtype)`` for a checked input, through the constructor ``tf.constant``
    itself ends in when TensorFlow has it: a quarter of the cost (6 us an input, 0.15 ms for a
    request of 25 inputs). ``device``: the eager context's device name, looked up once a request."""
    if _EagerTensor is None or dtype == tf.string:
        return tf.constant(array, dtype=dtype)
    return _EagerTensor(array, device, dtype.as_datatype_enum)


def _eager_device():
    ctx = context.context()
    ctx.ensure_initialized()
    return ctx.device_name


def _flat_call(signature):
    """``(input names in call order, captured inputs, call)`` to call a loaded signature through
    its flat signature, ``call(inputs, captured)``, or None when TensorFlow's internals for it
    are missing. Binding 25 keyword arguments to the structured signature takes 0.2 ms of
    Python, and resolving the captured variables' handles another 0.04 ms: more than a ranking
    model needs for one request. The handles do not change while the SavedModel is loaded.
    ``call`` is ``ConcreteFunction``'s own: the loader's wrapper around it maps every handle
    again for a distribution strategy (0.05 ms), and a server loads outside any strategy."""
    keywords = getattr(signature, "_arg_keywords", None)
    inputs = signature.structured_input_signature[1]
    if keywords is None or not hasattr(signature, "_call_flat") or sorted(keywords) != sorted(inputs):
        return None
    if _ConcreteFunction is not None and isinstance(signature, _ConcreteFunction):
        call = functools.partial(_ConcreteFunction._call_flat, signature)
    else:
        call = signature._call_flat
    return list(keywords), list(signature.captured_inputs), call


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
        self._flat_calls = {name: _flat_call(signature) for name, signature in self.signatures.items()}

    def input_specs(self, signature_name):
        """``{input name: tf.TensorSpec}`` of a signature; NOT_FOUND if there is none of that name."""
        return self._signature(signature_name).structured_input_signature[1]

    def _signature(self, signature_name):
        signature_name = signature_name or DEFAULT_SIGNATURE
        if not isinstance(signature_name, str) or signature_name not in self.signatures:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Serving signature name: {signature_name!r} not found in signature def of model "
                f"{self.name!r} version {self.version}; available: {sorted(self.signatures)}.",
            )
        return self.signatures[signature_name]

    def check_shapes(self, signature_name, shapes, max_batch_size=None):
        """Checks a request's inputs, ``{name: shape}``, against a signature before they are
        decoded: every input of the signature and no other, each with a compatible shape, all
        with one batch size, at most ``max_batch_size`` (None: no limit)."""
        signature_name = signature_name or DEFAULT_SIGNATURE
        self._signature(signature_name)
        specs = self._inputs[signature_name]
        if shapes.keys() != specs.keys():
            missing, extra = sorted(set(specs) - set(shapes)), sorted(set(shapes) - set(specs))
            if missing:
                raise _invalid(f"Missing input(s) {missing} for signature {signature_name!r}; expected {sorted(specs)}.")
            raise _invalid(f"Unknown input(s) {extra} for signature {signature_name!r}; expected {sorted(specs)}.")
        batch_sizes = set()
        for name, (spec, _, expected) in specs.items():
            shape = shapes[name]
            if (
                len(shape) != len(expected)
                or any(d is not None and d != n for d, n in zip(expected, shape))
                or any(n < 0 for n in shape)
            ):
                raise _invalid(f"Input {name!r}: expected shape {spec.shape}, received {list(shape)}.")
            if shape:
                batch_sizes.add(shape[0])
        if len(batch_sizes) > 1:
            raise _invalid(f"Inputs have different batch sizes {sorted(batch_sizes)}; expected one.")
        batch = batch_sizes.pop() if batch_sizes else 1
        if max_batch_size is not None and batch > max_batch_size:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Batch size {batch} is larger than the maximum batch size {max_batch_size}.",
            )

    def predict(self, signature_name, inputs, output_filter=(), max_batch_size=None):
        """Runs a signature on ``inputs`` (``{name: np.ndarray}``); returns ``{output: np.ndarray}``:
        ``check_shapes`` on the arrays' shapes, then ``run``."""
        self.check_shapes(signature_name, {name: array.shape for name, array in inputs.items()}, max_batch_size)
        return self.run(signature_name, inputs, output_filter)

    def run(self, signature_name, inputs, output_filter=()):
        """Runs a signature on ``inputs`` (``{name: np.ndarray}``) whose names and shapes passed
        ``check_shapes``; returns ``{output: np.ndarray}``.

        The inputs must have the signature's dtypes. Errors of the model itself are answered
        with TensorFlow's status code (INVALID_ARGUMENT for an input it refuses).
        """
        signature_name = signature_name or DEFAULT_SIGNATURE
        specs = self._inputs[signature_name]
        for name, (spec, dtype, _) in specs.items():
            if inputs[name].dtype != dtype:
                _check_dtype(name, inputs[name], spec)
        outputs = self._outputs[signature_name]
        unknown = sorted(set(output_filter) - outputs)
        if unknown:
            raise _invalid(f"Output tensor alias(es) {unknown} not found in signature {signature_name!r}; expected {sorted(outputs)}.")
        device = _eager_device()
        tensors = {}
        for name, (spec, _, _) in specs.items():
            try:
                tensors[name] = _tensor(inputs[name], spec.dtype, device)
            except (TypeError, ValueError) as error:  # an object array holding something else than bytes
                raise _invalid(f"Input {name!r}: expected values of dtype {spec.dtype.name}: {error}") from error
        signature, flat_call = self.signatures[signature_name], self._flat_calls[signature_name]
        try:
            if flat_call is None:
                results = signature(**tensors)
            else:
                names, captured, call = flat_call
                results = call([tensors[name] for name in names], captured)
        except tf.errors.OpError as error:
            raise ServingError(
                _STATUS_CODES.get(error.error_code, grpc.StatusCode.INTERNAL),
                f"Signature {signature_name!r} failed on the request: {error.message}",
            ) from error
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
