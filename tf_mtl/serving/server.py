"""A TF Serving-compatible model server: gRPC and REST in front of one ``ModelManager``.

    server = ModelServer("ranker", "saved_models/ranker", port=8500, rest_api_port=8501)
    server.start()   # loads the newest version, then polls for new ones
    ...
    server.stop()

It binds 127.0.0.1 unless ``host`` says otherwise (with a warning: the server has no
authentication), and caps requests at ``DEFAULT_MAX_BATCH_SIZE`` rows and
``DEFAULT_MAX_REQUEST_BYTES`` bytes unless told otherwise (``max_batch_size=None`` lifts the
row cap).
"""

import ipaddress
import logging
import threading
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tf_mtl.serving.grpc_service import ModelService, PredictionService, UndecodableRequests
from tf_mtl.serving.manager import ModelManager
from tf_mtl.serving.rest import RestServer

log = logging.getLogger(__name__)
DEFAULT_MAX_REQUEST_BYTES = 64 << 20
# TF Serving has no row cap; one is on here so that a request cannot make the server decode
# and run an unbounded batch. 8192 rows is far above what a ranking request scores at once.
DEFAULT_MAX_BATCH_SIZE = 8192


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure_threads(intra_op=0, inter_op=0):
    """TensorFlow's thread pools for this process, as TF Serving's
    ``--tensorflow_intra_op_parallelism`` / ``--tensorflow_inter_op_parallelism``; 0 leaves
    TensorFlow's choice (one thread per core). ``intra_op=1`` serves single requests fastest:
    split over two threads, a one-row request waits for both (0.5 ms against 0.8 ms per
    request here), while concurrent requests still use every core. Call before TensorFlow
    runs its first op."""
    for name, value in (("intra_op", intra_op), ("inter_op", inter_op)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0. Received: {name}={value!r}")
    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as error:
        raise RuntimeError(f"TensorFlow's thread pools are set before it runs anything: {error}") from None


class ModelServer:
    """Serves ``model_base_path``'s newest version as ``model_name`` over gRPC and REST.

    Args:
        model_name: the name requests use.
        model_base_path: the folder of numeric version folders.
        port: the gRPC port; 0 picks a free one (see ``self.port`` after ``start``).
        rest_api_port: the REST port; 0 picks a free one; None serves no REST.
        host: the address to bind, default loopback only.
        max_batch_size: the largest batch a request may hold (gRPC answers RESOURCE_EXHAUSTED,
            REST 413); None lifts the cap.
        max_request_bytes: the largest request body (gRPC answers RESOURCE_EXHAUSTED, REST 413).
        poll_seconds: how often to look for new versions.
        workers: threads answering gRPC requests.
    """

    def __init__(
        self,
        model_name,
        model_base_path,
        port=8500,
        rest_api_port=8501,
        host="127.0.0.1",
        max_batch_size=DEFAULT_MAX_BATCH_SIZE,
        max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
        poll_seconds=1.0,
        workers=8,
    ):
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1. Received: max_batch_size={max_batch_size}")
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be >= 1. Received: max_request_bytes={max_request_bytes}")
        self.manager = ModelManager(model_name, model_base_path, poll_seconds)
        self.host = host
        self.port = port
        self.rest_api_port = rest_api_port
        self.max_batch_size = max_batch_size
        self.max_request_bytes = max_request_bytes
        self.workers = workers
        self._grpc = None
        self._rest = None
        self._rest_thread = None

    def start(self):
        if not is_loopback(self.host):
            log.warning("Binding %s: the model server is reachable from other machines and has no authentication.", self.host)
        self.manager.start()
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.workers),
            interceptors=[UndecodableRequests()],
            options=[("grpc.max_receive_message_length", self.max_request_bytes)],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager, self.max_batch_size), self._grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.manager), self._grpc)
        address = f"[{self.host}]" if ":" in self.host else self.host
        bound = self._grpc.add_insecure_port(f"{address}:{self.port}")
        if bound == 0:
            raise OSError(f"Could not bind gRPC to {self.host}:{self.port}.")
        self.port = bound
        self._grpc.start()
        if self.rest_api_port is not None:
            self._rest = RestServer((self.host, self.rest_api_port), self.manager, self.max_batch_size, self.max_request_bytes)
            self.rest_api_port = self._rest.server_address[1]
            self._rest_thread = threading.Thread(target=self._rest.serve_forever, name="tf_mtl-rest", daemon=True)
            self._rest_thread.start()
        log.info("Serving %r on gRPC %s:%d, REST %s", self.manager.model_name, self.host, self.port, self.rest_api_port)
        return self

    def stop(self, grace=1.0):
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
            self._rest_thread.join()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        self.manager.stop()

    def wait(self):
        """Blocks until the gRPC server stops (the CLI's main loop)."""
        self._grpc.wait_for_termination()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
