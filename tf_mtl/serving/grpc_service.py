"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` (Predict, GetModelMetadata)
and ``tensorflow.serving.ModelService`` (GetModelStatus), so the official stubs work unchanged.
Classify and Regress check the signature's method as TF Serving does (tf_mtl exports only
predict signatures, so they answer INVALID_ARGUMENT for them) and otherwise answer
UNIMPLEMENTED, as MultiInference and HandleReloadConfigRequest do. ``UndecodableRequests``
answers INVALID_ARGUMENT to bytes that are not the method's request message.
"""

import grpc
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
)
from tensorflow.core.protobuf import error_codes_pb2

from tf_mtl.serving.servable import DEFAULT_SIGNATURE, ServingError
from tf_mtl.serving.tensors import from_proto, shape_of, to_proto

SIGNATURE_DEF = "signature_def"


def _version(model_spec):
    if model_spec.WhichOneof("version_choice") == "version_label":
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Version labels are not configured; received {model_spec.version_label!r}.")
    return model_spec.version.value if model_spec.HasField("version") else None


def _to_ndarray(name, proto):
    try:
        return from_proto(proto)
    except (TypeError, ValueError) as error:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Input {name!r} is not a valid TensorProto: {error}") from error


def _abort(context, error):
    context.abort(error.code, error.message)


class _Undecodable:
    """What ``UndecodableRequests`` hands a method in place of a request it could not parse."""

    def __init__(self, error):
        self.error = error


class UndecodableRequests(grpc.ServerInterceptor):
    """Answers INVALID_ARGUMENT to a request whose bytes do not parse as the method's message,
    where gRPC itself would answer INTERNAL ("Exception deserializing request")."""

    def __init__(self):
        self._handlers = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        method = handler_call_details.method
        if method not in self._handlers:
            self._handlers[method] = self._wrap(method, handler)
        return self._handlers[method]

    @staticmethod
    def _wrap(method, handler):
        parse, behaviour = handler.request_deserializer, handler.unary_unary

        def deserialize(data):
            try:
                return parse(data)
            except DecodeError as error:
                return _Undecodable(error)

        def call(request, context):
            if isinstance(request, _Undecodable):
                return _abort(context, ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"{method}: the request does not parse: {request.error}"))
            return behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(call, request_deserializer=deserialize, response_serializer=handler.response_serializer)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over a ``ModelManager``."""

    def __init__(self, manager, max_batch_size=None):
        self.manager = manager
        self.max_batch_size = max_batch_size

    def Predict(self, request, context):
        spec = request.model_spec
        try:
            servable = self.manager.servable(spec.name, _version(spec))
            # Before decoding: a TensorProto may declare 10**12 rows and fill them from one value.
            # Decoded, each input has the shape it declared (from_proto), so the shapes are checked once.
            servable.check_shapes(spec.signature_name, {name: shape_of(proto) for name, proto in request.inputs.items()}, self.max_batch_size)
            inputs = {name: _to_ndarray(name, proto) for name, proto in request.inputs.items()}
            outputs = servable.run(spec.signature_name, inputs, list(request.output_filter))
        except ServingError as error:
            return _abort(context, error)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = spec.signature_name or DEFAULT_SIGNATURE
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(to_proto(value))
        return response

    def _inference(self, request, context, method):
        spec = request.model_spec
        try:
            servable = self.manager.servable(spec.name, _version(spec))
            name = spec.signature_name or DEFAULT_SIGNATURE
            servable.input_specs(name)
            found = servable.signature_defs[name].method_name
            if found != f"tensorflow/serving/{method}":
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Expected {method} signature method_name to be tensorflow/serving/{method}. Was: {found}",
                )
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"{method.capitalize()} signatures are not supported by this server.")
        except ServingError as error:
            return _abort(context, error)

    def Classify(self, request, context):
        return self._inference(request, context, "classify")

    def Regress(self, request, context):
        return self._inference(request, context, "regress")

    def MultiInference(self, request, context):
        return _abort(context, ServingError(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported by this server."))

    def GetModelMetadata(self, request, context):
        spec = request.model_spec
        try:
            fields = sorted(set(request.metadata_field) - {SIGNATURE_DEF})
            if fields or not request.metadata_field:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Metadata field(s) {fields or '(none)'} are not supported; expected metadata_field=['{SIGNATURE_DEF}'].",
                )
            servable = self.manager.servable(spec.name, _version(spec))
        except ServingError as error:
            return _abort(context, error)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signatures.signature_def[name].CopyFrom(signature_def)
        response.metadata[SIGNATURE_DEF].Pack(signatures)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus over a ``ModelManager``; HandleReloadConfigRequest answers UNIMPLEMENTED."""

    def __init__(self, manager):
        self.manager = manager

    def HandleReloadConfigRequest(self, request, context):
        return _abort(context, ServingError(grpc.StatusCode.UNIMPLEMENTED, "The model config is fixed at start-up; HandleReloadConfigRequest is not supported."))

    def GetModelStatus(self, request, context):
        try:
            statuses = self.manager.status(request.model_spec.name, _version(request.model_spec))
        except ServingError as error:
            return _abort(context, error)
        response = get_model_status_pb2.GetModelStatusResponse()
        states = get_model_status_pb2.ModelVersionStatus.State
        for status in statuses:
            response.model_version_status.add(
                version=status.version,
                state=states.Value(status.state),
                status=status_pb2.StatusProto(
                    error_code=error_codes_pb2.Code.Value(status.error_code), error_message=status.error_message
                ),
            )
        return response
