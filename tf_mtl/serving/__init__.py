"""A TF Serving-compatible model server in Python (gRPC and REST) and its client.

    from tf_mtl.serving import Client, ModelServer

    with ModelServer("ranker", "saved_models/ranker", port=8500, rest_api_port=8501):
        Client("127.0.0.1", 8500, "ranker").predict(features)

The server serves the newest version under the base path and swaps in new versions as they
appear (see ``tf_mtl.serving.manager`` for the version policy).
"""

from tf_mtl.serving.client import Client
from tf_mtl.serving.manager import ModelManager, VersionStatus
from tf_mtl.serving.server import ModelServer, configure_threads
from tf_mtl.serving.servable import DEFAULT_SIGNATURE, Servable, ServingError

__all__ = ["DEFAULT_SIGNATURE", "Client", "ModelManager", "ModelServer", "Servable", "ServingError", "VersionStatus", "configure_threads"]
