"""A small served model for the reliability tests: export versions of it, serve them.

    features, expected = export_version(base, 1)       # base/1, and its outputs on features
    with serve(base) as server:                        # gRPC server.port, REST server.rest_api_port
        status, content_type, body = http_exchange(server.rest_api_port, "POST", path, json_body(features, rows=True))
"""

import contextlib
import functools
import http.client
import json
import os
import socket

import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.data import click_conversion
from tf_mtl.export import export_saved_model
from tf_mtl.models import build_model
from tf_mtl.serving import ModelServer

MODEL = "ranker"


@functools.lru_cache(maxsize=None)
def data():
    """500 generated impressions (``click_conversion(500, seed=0)``): features and tasks."""
    return click_conversion(500, seed=0)


@functools.lru_cache(maxsize=None)
def _model(seed):
    keras.utils.set_random_seed(seed)
    return build_model("mmoe", data().features, data().task_types, data().task_names, expert_params={"dims": [8]})


@functools.lru_cache(maxsize=None)
def _signatures(path):
    return tf.saved_model.load(path).signatures


def saved_model_outputs(path, inputs, signature="serving_default"):
    """``{output: np.ndarray}`` of the SavedModel at ``path`` (loaded once per process by
    ``tf.saved_model.load``) on ``inputs``: what a server must answer."""
    function = _signatures(os.fspath(path))[signature]
    return {name: value.numpy() for name, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def export_version(base_path, version, seed=0):
    """Exports a small MMoE (weights drawn from ``seed``; one model per seed and process) as
    ``base_path/version``. Returns ``(features, outputs)``: 8 rows of valid inputs and the
    exported model's own outputs on them."""
    path = export_saved_model(_model(seed), base_path, version=version)
    features = {name: values[:8] for name, values in data().x.items()}
    return features, saved_model_outputs(path, features)


@contextlib.contextmanager
def serve(base_path, **options):
    """A started ``ModelServer`` of ``base_path`` as ``MODEL``: gRPC and REST on free loopback
    ports, polling every 0.1 s; ``options`` override ``ModelServer``'s other arguments. Stopped
    on leaving the block."""
    server = ModelServer(MODEL, base_path, **{"port": 0, "rest_api_port": 0, "poll_seconds": 0.1, **options})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def http_exchange(port, method, path, body=b"", headers=None, content_length=None, half_close=False):
    """One raw HTTP/1.1 exchange: ``(status, content type, body)``. Any path and header bytes
    go out as given; a connection the server drops raises (``http.client.RemoteDisconnected``)."""
    path = path if isinstance(path, bytes) else path.encode("utf-8", "surrogatepass")
    lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    length = str(len(body)).encode() if content_length is None else content_length
    if length is not False:
        lines.append(b"Content-Length: " + length)
    lines += [k.encode() + b": " + v.encode() for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before all was sent; its answer is still to read
            pass
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.getheader("Content-Type"), response.read()


def _json_value(value):
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value.decode() if isinstance(value, bytes) else value


def json_body(arrays, rows, **extra):
    """A REST predict body of ``arrays`` (``{input: np.ndarray}``, bytes as text): row format
    (``instances``) if ``rows``, else columnar (``inputs``); ``extra`` adds keys."""
    columns = {name: _json_value(values.tolist()) for name, values in arrays.items()}
    if not rows:
        return json.dumps({"inputs": columns, **extra}).encode()
    n = len(next(iter(columns.values())))
    return json.dumps({"instances": [{name: values[i] for name, values in columns.items()} for i in range(n)], **extra}).encode()


def counts(counter):
    """``Counter({"OK": 3, "NOT_FOUND": 5})`` as "5 NOT_FOUND, 3 OK", for a recorded result."""
    return ", ".join(f"{count} {code}" for code, count in sorted(counter.items(), key=lambda item: -item[1]))
