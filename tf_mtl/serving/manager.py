"""Keeps the newest version of a model loaded, picking up new versions without a restart.

Policy (TF Serving's default, ``latest`` with one version): the newest numeric folder under
``model_base_path`` is served. A new version is loaded fully and warmed up beside the one
serving, then swapped in with one reference assignment, so every request sees one whole
version; the previous version is then unloaded (state END) and requests naming it get
NOT_FOUND. A version that fails to load is reported in the status (END, with the error) and
not retried; the version serving keeps serving, and the next newest version that loads is
used at start-up. Hidden and non-numeric folders are ignored. When every version folder is
gone the last loaded version keeps serving rather than leaving the model unavailable.
"""

import dataclasses
import logging
import os
import threading

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2

from tf_mtl.export.saved_model import versions
from tf_mtl.serving.servable import Servable, ServingError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    """A version's state as GetModelStatus reports it (``state``: START, LOADING, AVAILABLE, END)."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


def _error_code(error):
    if isinstance(error, tf.errors.OpError):
        return error_codes_pb2.Code.Name(error.error_code)
    return "UNKNOWN"


class ModelManager:
    """Serves the newest loadable version of one model, polling its folder for new ones.

    Args:
        model_name: the name requests use.
        model_base_path: the folder of numeric version folders.
        poll_seconds: how often to look for new versions (``start``); 0 polls only once.
    """

    def __init__(self, model_name, model_base_path, poll_seconds=1.0):
        if poll_seconds < 0:
            raise ValueError(f"poll_seconds must be >= 0. Received: poll_seconds={poll_seconds}")
        self.model_name = model_name
        self.model_base_path = os.fspath(model_base_path)
        self.poll_seconds = poll_seconds
        self._current = None
        self._statuses = {}
        self._status_lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Loads the newest version now, then polls in a background thread."""
        self.poll()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._run, name=f"tf_mtl-poll-{self.model_name}", daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self):
        while not self._stop.wait(self.poll_seconds):
            self.poll()

    def _set_status(self, status):
        with self._status_lock:
            self._statuses[status.version] = status

    def versions_on_disk(self):
        """The numeric version folders under ``model_base_path``, newest first."""
        return versions(self.model_base_path)[::-1]

    def poll(self):
        """One scan: loads the newest version not yet tried if it is not the one serving."""
        with self._poll_lock:
            current = self._current
            for version in self.versions_on_disk():
                if current is not None and version == current.version:
                    return
                status = self._statuses.get(version)
                if status is not None and status.state == "END":
                    continue
                if self._load(version, current):
                    return

    def _load(self, version, current):
        path = os.path.join(self.model_base_path, str(version))
        self._set_status(VersionStatus(version, "LOADING"))
        try:
            servable = Servable(self.model_name, version, path)
            warmed = servable.warmup()
        except Exception as error:  # any failure to load is reported in the status, not raised
            log.error("Model %r version %d failed to load from %s: %s", self.model_name, version, path, error)
            self._set_status(VersionStatus(version, "END", _error_code(error), f"{type(error).__name__}: {error}"))
            return False
        self._current = servable
        self._set_status(VersionStatus(version, "AVAILABLE"))
        log.info("Model %r version %d is serving (%d warmup requests)", self.model_name, version, warmed)
        if current is not None:
            self._set_status(VersionStatus(current.version, "END"))
            log.info("Model %r version %d unloaded", self.model_name, current.version)
        return True

    def _check_name(self, name):
        if name != self.model_name:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: model {name!r}; serving {self.model_name!r}.")

    def servable(self, name, version=None):
        """The servable for a request: the version serving, which must be ``version`` if given."""
        self._check_name(name)
        current = self._current
        if current is None:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Model {name!r} has no version available yet.")
        if version is not None and version != current.version:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({name}, {version}); version {current.version} is serving.",
            )
        return current

    def status(self, name, version=None):
        """``VersionStatus`` of every version seen, or of ``version``; NOT_FOUND for unknown ones."""
        self._check_name(name)
        with self._status_lock:
            statuses = dict(self._statuses)
        if version is None:
            if not statuses:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Model {name!r} has no versions under {self.model_base_path}.")
            return [statuses[v] for v in sorted(statuses, reverse=True)]
        if version not in statuses:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Model {name!r} has no version {version}.")
        return [statuses[version]]
