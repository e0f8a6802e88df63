"""Version policy: a new version is picked up by polling and replaces the old one (TF Serving's
default, latest version only); a corrupt newer version is reported and the last good one keeps
serving; hidden and non-numeric folders are ignored."""

import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tf_mtl.export import export_saved_model
from tf_mtl.serving import Client, ModelServer

from .conftest import MODEL


def _wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds} s")


@pytest.fixture()
def base_dir(version_1, tmp_path):
    base = tmp_path / MODEL
    shutil.copytree(version_1, base / "1")
    (base / ".2-partial").mkdir()
    (base / "latest").mkdir()
    return base


def test_new_version_replaces_old_and_corrupt_version_is_reported(model, base_dir, features, reference):
    expected = reference("serving_default", features)["score"]
    with ModelServer(MODEL, base_dir, port=0, rest_api_port=None, poll_seconds=0.1) as server, Client("127.0.0.1", server.port, MODEL) as client:
        assert [s["version"] for s in client.status()] == [1]
        np.testing.assert_allclose(client.predict(features, version=1)["score"], expected, atol=1e-6)

        export_saved_model(model, base_dir, version=2)
        _wait_for(lambda: client.status()[0] == {"version": 2, "state": "AVAILABLE", "error_code": "OK", "error_message": ""})
        assert client.status(version=1) == [{"version": 1, "state": "END", "error_code": "OK", "error_message": ""}]
        np.testing.assert_allclose(client.predict(features)["score"], expected, atol=1e-6)
        assert client.predict(features, version=2).keys() == {"ctr", "cvr", "score"}
        with pytest.raises(grpc.RpcError) as error:
            client.predict(features, version=1)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND

        (base_dir / "3").mkdir()
        (base_dir / "3" / "saved_model.pb").write_bytes(b"")
        _wait_for(lambda: client.status()[0]["version"] == 3 and client.status()[0]["state"] == "END")
        failed = client.status(version=3)[0]
        assert failed["error_code"] != "OK" and "saved_model" in failed["error_message"].lower()
        assert client.status(version=2)[0]["state"] == "AVAILABLE"
        np.testing.assert_allclose(client.predict(features)["score"], expected, atol=1e-6)
        with pytest.raises(grpc.RpcError) as error:
            client.predict(features, version=3)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_start_skips_a_corrupt_newest_version(base_dir, features):
    (base_dir / "5").mkdir()
    with ModelServer(MODEL, base_dir, port=0, rest_api_port=None, poll_seconds=0) as server, Client("127.0.0.1", server.port, MODEL) as client:
        assert [(s["version"], s["state"]) for s in client.status()] == [(5, "END"), (1, "AVAILABLE")]
        assert client.predict(features)["score"].shape == (8,)


def test_requests_during_a_swap_all_succeed(model, base_dir, features, reference):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for name, value in features.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    expected = reference("serving_default", features)["score"]
    versions, failures, done = [], [], threading.Event()
    with ModelServer(MODEL, base_dir, port=0, rest_api_port=None, poll_seconds=0.05) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            def hammer():
                try:
                    while not done.is_set():
                        response = stub.Predict(request, timeout=30)
                        np.testing.assert_allclose(tf.make_ndarray(response.outputs["score"]), expected, atol=1e-6)
                        versions.append(response.model_spec.version.value)
                except Exception as error:  # re-raised in the test below, with its traceback
                    failures.append(error)
                    done.set()

            thread = threading.Thread(target=hammer)
            thread.start()
            export_saved_model(model, base_dir, version=2)
            _wait_for(lambda: failures or (versions and versions[-1] == 2))
            done.set()
            thread.join()
    if failures:
        raise failures[0]
    assert versions == sorted(versions) and versions[0] == 1
