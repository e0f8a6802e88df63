"""A small gRPC client for a TF Serving-compatible server (this one or TF Serving itself).

    with Client("127.0.0.1", 8500, "ranker") as client:
        scores = client.predict({"user_id": np.array([3, 7]), ...})   # {"ctr": array, ..., "score": array}
        client.status()   # [{"version": 2, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}]
"""

import grpc
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tf_mtl.serving.servable import DEFAULT_SIGNATURE
from tf_mtl.serving.tensors import from_proto, to_proto


class Client:
    """Predict and GetModelStatus for one model.

    Args:
        host: the server's address.
        port: its gRPC port.
        model_name: the model to ask.
        timeout: seconds per call.
    """

    def __init__(self, host, port, model_name, timeout=30.0):
        address = f"[{host}]" if ":" in host else host
        self._channel = grpc.insecure_channel(f"{address}:{port}")
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self.model_name = model_name
        self.timeout = timeout

    def _spec(self, spec, version):
        spec.name = self.model_name
        if version is not None:
            spec.version.value = version

    def predict(self, features, signature=DEFAULT_SIGNATURE, version=None, output_filter=()):
        """Runs ``signature`` on ``features`` (``{input: array}``); returns ``{output: np.ndarray}``.
        Raises ``grpc.RpcError`` with the server's status code on failure."""
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, version)
        request.model_spec.signature_name = signature
        request.output_filter.extend(output_filter)
        for name, value in features.items():
            request.inputs[name].CopyFrom(to_proto(value))
        response = self._predict.Predict(request, timeout=self.timeout)
        return {name: from_proto(proto) for name, proto in response.outputs.items()}

    def status(self, version=None):
        """Every version's state, newest first, as dicts."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version)
        response = self._models.GetModelStatus(request, timeout=self.timeout)
        states = get_model_status_pb2.ModelVersionStatus.State
        return [
            {
                "version": status.version,
                "state": states.Name(status.state),
                "error_code": error_codes_pb2.Code.Name(status.status.error_code),
                "error_message": status.status.error_message,
            }
            for status in response.model_version_status
        ]

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
