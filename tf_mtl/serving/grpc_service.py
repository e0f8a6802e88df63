"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` (Predict, GetModelMetadata)
and ``tensorflow.serving.ModelService`` (GetModelStatus), so the official stubs work unchanged.
Classify and Regress check the signature's method as TF Serving does (tf_mtl exports only
predict signatures, so they answer INVALID_ARGUMENT for them) and otherwise answer
UNIMPLEMENTED, as MultiInference does.
"""

import grpc
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
from tf_mtl.serving.tensors import from_proto, to_proto

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


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over a ``ModelManager``."""

    def __init__(self, manager, max_batch_size=None):
        self.manager = manager
        self.max_batch_size = max_batch_size

    def Predict(self, request, context):
        spec = request.model_spec
        try:
            servable = self.manager.servable(spec.name, _version(spec))
            inputs = {name: _to_ndarray(name, proto) for name, proto in request.inputs.items()}
            outputs = servable.predict(spec.signature_name, inputs, list(request.output_filter), self.max_batch_size)
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
