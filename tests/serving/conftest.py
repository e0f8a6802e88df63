from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tf_mtl.compat import keras
from tf_mtl.data import click_conversion
from tf_mtl.export import export_saved_model
from tf_mtl.models import build_model
from tf_mtl.serving import ModelServer

MODEL = "ranker"
MAX_BATCH = 64
MAX_BYTES = 1 << 20


@pytest.fixture(scope="session")
def data():
    return click_conversion(500, seed=0)


@pytest.fixture(scope="session")
def model(data):
    keras.utils.set_random_seed(0)
    return build_model("mmoe", data.features, data.task_types, data.task_names, expert_params={"dims": [8]})


@pytest.fixture(scope="session")
def features(data):
    return {name: values[:8] for name, values in data.x.items()}


@pytest.fixture(scope="session")
def version_1(model, tmp_path_factory):
    return Path(export_saved_model(model, tmp_path_factory.mktemp("models") / MODEL, version=1))


@pytest.fixture(scope="session")
def reference(version_1):
    """Scores straight from tf.saved_model.load, what the server must reproduce."""
    signatures = tf.saved_model.load(version_1).signatures

    def run(signature, inputs):
        return {k: v.numpy() for k, v in signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()}).items()}

    return run


@pytest.fixture(scope="module")
def server(version_1):
    server = ModelServer(
        MODEL, version_1.parent, port=0, rest_api_port=0, max_batch_size=MAX_BATCH, max_request_bytes=MAX_BYTES, poll_seconds=0.2
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


def to_json(array):
    """A numpy array as JSON lists, strings decoded."""
    values = np.asarray(array).tolist()

    def decode(value):
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value.decode() if isinstance(value, bytes) else value

    return decode(values)
