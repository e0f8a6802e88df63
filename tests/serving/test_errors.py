"""Malformed gRPC requests get TF Serving's status codes, and the server keeps answering."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, inference_pb2, model_management_pb2, predict_pb2

from .conftest import MAX_BATCH, MAX_BYTES, MODEL


def _request(inputs, name=MODEL, signature="serving_default", version=None, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.output_filter.extend(output_filter)
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def _broadcast(features, rows):
    """Every input declares ``rows`` rows, filled from its first value (TensorProto allows it)."""
    request = _request({})
    for key, value in features.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value.reshape(-1)[0], shape=(rows, *value.shape[1:])))
    return request


def _negative(request, name):
    request.inputs[name].tensor_shape.dim[0].size = -3
    return request


def _replace(features, **changes):
    return {**{k: v for k, v in features.items() if k not in changes}, **{k: v for k, v in changes.items() if v is not None}}


# case: (request from the 8-row features, expected code, a word the message must contain)
CASES = {
    "unknown model": (lambda f: _request(f, name="other"), grpc.StatusCode.NOT_FOUND, "other"),
    "unknown version": (lambda f: _request(f, version=9), grpc.StatusCode.NOT_FOUND, "9"),
    "unknown signature": (lambda f: _request(f, signature="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
    "missing input": (lambda f: _request(_replace(f, user_id=None)), grpc.StatusCode.INVALID_ARGUMENT, "user_id"),
    "extra input": (lambda f: _request(_replace(f, colour=np.zeros(8))), grpc.StatusCode.INVALID_ARGUMENT, "colour"),
    "wrong dtype": (
        lambda f: _request(_replace(f, item_price=f["item_price"].astype(np.float64))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "item_price",
    ),
    "wrong shape": (
        lambda f: _request(_replace(f, clicked_categories=f["clicked_categories"][:, :3])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "clicked_categories",
    ),
    "uneven batch": (lambda f: _request(_replace(f, user_age=f["user_age"][:5])), grpc.StatusCode.INVALID_ARGUMENT, "batch"),
    "unknown output": (lambda f: _request(f, output_filter=["colour"]), grpc.StatusCode.INVALID_ARGUMENT, "colour"),
    "oversize batch": (
        lambda f: _request({k: np.concatenate([v] * (MAX_BATCH // 8 + 1)) for k, v in f.items()}),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "batch size",
    ),
    "oversize request": (
        lambda f: _request({"examples": np.array([b"x" * MAX_BYTES])}, signature="serve_tf_examples"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
    "rows declared from one value": (lambda f: _broadcast(f, 10**12), grpc.StatusCode.RESOURCE_EXHAUSTED, "Batch size 1000000000000"),
    "negative size": (lambda f: _negative(_request(f), "user_age"), grpc.StatusCode.INVALID_ARGUMENT, "user_age"),
    "model name of 100 kB": (lambda f: _request(f, name="x" * 100_000), grpc.StatusCode.NOT_FOUND, "bytes in all"),
    "bad example": (
        lambda f: _request({"examples": np.array([b"not a tf.Example"])}, signature="serve_tf_examples"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "serve_tf_examples",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_error_then_serves(stub, features, reference, case):
    build, code, word = CASES[case]
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(build(features), timeout=30)
    assert error.value.code() == code, error.value.details()
    assert word in error.value.details()
    response = stub.Predict(_request(features), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["score"]), reference("serving_default", features)["score"], atol=1e-6)


def test_metadata_and_status_errors(stub, model_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    with pytest.raises(grpc.RpcError) as error:
        stub.GetModelMetadata(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request.metadata_field.append("signature_def")
    request.model_spec.name = "other"
    with pytest.raises(grpc.RpcError) as error:
        stub.GetModelMetadata(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = MODEL
    status.model_spec.version.value = 5
    with pytest.raises(grpc.RpcError) as error:
        model_stub.GetModelStatus(status, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("method", ["/tensorflow.serving.PredictionService/Predict", "/tensorflow.serving.ModelService/GetModelStatus"])
def test_bytes_that_are_not_the_request_message(channel, method):
    with pytest.raises(grpc.RpcError) as error:
        channel.unary_unary(method)(b"\xff\xff garbage", timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{method}: the request does not parse")


def test_unsupported_methods_answer_unimplemented(stub, model_stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.MultiInference(inference_pb2.MultiInferenceRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED and "MultiInference" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        model_stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED and "fixed at start-up" in error.value.details()
