"""gRPC with the official TF Serving stubs: Predict parity with tf.saved_model.load for both
signatures, GetModelMetadata, GetModelStatus and the Client helper."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2, regression_pb2

from tf_mtl.export import to_examples
from tf_mtl.serving import Client, Servable

from .conftest import MODEL


def _predict_request(signature, inputs, version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def _assert_close(outputs, expected):
    assert sorted(outputs) == sorted(expected) == ["ctr", "cvr", "score"]
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name], value, atol=1e-6, rtol=0)


@pytest.mark.parametrize("signature", ["serving_default", "serve_tf_examples"])
def test_predict_matches_saved_model(stub, features, reference, signature):
    inputs = features if signature == "serving_default" else {"examples": np.array(to_examples(features), dtype=object)}
    response = stub.Predict(_predict_request(signature, inputs), timeout=30)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == signature
    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    assert all(value.shape == (8,) and value.dtype == np.float32 for value in outputs.values())
    _assert_close(outputs, reference(signature, inputs))


def test_default_signature_and_output_filter(stub, features, reference):
    request = _predict_request("", features, version=1)
    request.output_filter.append("score")
    response = stub.Predict(request, timeout=30)
    assert list(response.outputs) == ["score"]
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["score"]), reference("serving_default", features)["score"], atol=1e-6)


def test_predict_checks_the_declared_shapes_once(stub, features, reference, monkeypatch):
    """Before decoding, from the TensorProtos; not again on the decoded arrays."""
    checked = []
    check_shapes = Servable.check_shapes
    monkeypatch.setattr(Servable, "check_shapes", lambda self, name, shapes, cap=None: checked.append(shapes) or check_shapes(self, name, shapes, cap))
    response = stub.Predict(_predict_request("serving_default", features), timeout=30)
    assert checked == [{name: value.shape for name, value in features.items()}]
    _assert_close({name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}, reference("serving_default", features))


def test_model_metadata_lists_both_signatures(stub, version_1):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "serve_tf_examples"} <= set(signatures.signature_def)
    default = signatures.signature_def["serving_default"]
    assert set(default.inputs) == set(tf.saved_model.load(version_1).signatures["serving_default"].structured_input_signature[1])
    assert set(default.outputs) == {"ctr", "cvr", "score"}
    assert default.inputs["item_price"].dtype == tf.float32.as_datatype_enum
    assert set(signatures.signature_def["serve_tf_examples"].inputs) == {"examples"}


def test_model_status_available(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = model_stub.GetModelStatus(request, timeout=30)
    assert len(response.model_version_status) == 1
    status = response.model_version_status[0]
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0 and status.status.error_message == ""


def test_client(server, features, reference):
    with Client("127.0.0.1", server.port, MODEL) as client:
        _assert_close(client.predict(features), reference("serving_default", features))
        assert client.status() == [{"version": 1, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}]


def test_regress_needs_a_regression_signature(stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = MODEL
    with pytest.raises(grpc.RpcError) as error:
        stub.Regress(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tensorflow/serving/predict" in error.value.details()
    request.model_spec.signature_name = "nope"
    with pytest.raises(grpc.RpcError) as error:
        stub.Regress(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
