"""Keeps the newest version of a model loaded, picking up new versions without a restart.

Policy (TF Serving's default, ``latest`` with one version): the newest numeric folder under
``model_base_path`` is served. A new version is loaded fully and warmed up beside the one
serving, then swapped in with one reference assignment, so every request sees one whole
version; the previous version is then unloaded (state END; its memory is freed at the next
poll) and requests naming it get NOT_FOUND. Hidden and non-numeric folders are ignored. When
every version folder is gone the last loaded version keeps serving rather than leaving the
model unavailable.

A version that fails to load or to warm up is logged and reported in the status (END, with an
error code and message); the version serving keeps serving, and the next newest version that
loads is used at start-up. A failed version is loaded again when its folder's contents change
(names, sizes, modification times), and only then: a folder copied in file by file is read
half-written on the way, and is served at the first poll after the copy completes, while a
broken version nobody touches is not loaded over and over. (TF Serving instead retries a
failed load up to 5 times, a minute apart, whatever the folder holds:
``--max_num_load_retries``, ``--load_retry_interval_micros``.)
"""

import dataclasses
import gc
import logging
import os
import threading

import grpc
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import error_codes_pb2

from tf_mtl.export.saved_model import WARMUP_PATH, versions
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
    """The status code TF Serving reports for a failed load: TensorFlow's own, the failed warmup
    request's, NOT_FOUND for a missing file, DATA_LOSS for an unreadable ``saved_model.pb``."""
    if isinstance(error, tf.errors.OpError):
        return error_codes_pb2.Code.Name(error.error_code)
    if isinstance(error, ServingError):
        return error.code.name
    if isinstance(error, FileNotFoundError):
        return "NOT_FOUND"
    if isinstance(error, DecodeError):
        return "DATA_LOSS"
    return "UNKNOWN"


def _folder_contents(path):
    """``(relative path, size, modification time in ns)`` of everything under ``path``, sorted:
    equal for two looks at a folder nobody changed in between."""
    contents = []
    for root, folders, files in os.walk(path):
        for name in folders + files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except FileNotFoundError:  # removed while we looked: the next look sees the change
                continue
            contents.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(contents))


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
        # Failed versions: their folder's contents when the load that failed began.
        self._failed = {}
        # A version was unloaded since the last poll (see _collect_unloaded).
        self._unloaded = False
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
            try:
                self.poll()
            except OSError as error:  # a base folder unreadable for a while: keep serving, keep polling
                log.error("Model %r: cannot list %s: %s", self.model_name, self.model_base_path, error)

    def _set_status(self, status):
        with self._status_lock:
            self._statuses[status.version] = status

    def versions_on_disk(self):
        """The numeric version folders under ``model_base_path``, newest first."""
        return versions(self.model_base_path)[::-1]

    def _path(self, version):
        return os.path.join(self.model_base_path, str(version))

    def _worth_loading(self, version):
        """Not tried yet, or failed and changed since."""
        status = self._statuses.get(version)
        if status is None or status.state != "END":
            return True
        if version not in self._failed or self._failed[version] == _folder_contents(self._path(version)):
            return False
        log.info("Model %r version %d changed since it failed to load: loading it again", self.model_name, version)
        return True

    def poll(self):
        """One scan: loads the newest version worth trying (never tried, or failed and changed
        since) if it is newer than the one serving."""
        with self._poll_lock:
            self._collect_unloaded()
            current = self._current
            for version in self.versions_on_disk():
                if current is not None and version == current.version:
                    return
                if self._worth_loading(version) and self._load(version, current):
                    return

    def _collect_unloaded(self):
        """Frees the memory of the version last unloaded. A loaded SavedModel's function graphs
        sit in reference cycles, which Python frees only when its cyclic collector gets round to
        them: every 8 to 10 versions when loading one after another, so a server held that many
        old versions' graphs (12-20 MiB each for a small ranking model). Collected at the first
        poll after the unload, once the requests still using the old version at the swap have
        finished. The collection pauses every thread for as long as it takes to scan all the
        process's objects (0.3-0.7 s for TensorFlow's 450,000 on 2 busy cores), once per new version."""
        if self._unloaded:
            self._unloaded = False
            gc.collect()

    def _load(self, version, current):
        path = self._path(version)
        contents = _folder_contents(path)
        self._set_status(VersionStatus(version, "LOADING"))
        # Any failure to load is reported in the status and the log, not raised: the poll goes on.
        try:
            servable = Servable(self.model_name, version, path)
        except Exception as error:
            return self._fail(version, contents, f"Failed to load {path}", error)
        try:
            warmed = servable.warmup()
        except Exception as error:
            return self._fail(version, contents, f"Failed to warm up {path} with {WARMUP_PATH}", error)
        self._failed.pop(version, None)
        self._current = servable
        self._set_status(VersionStatus(version, "AVAILABLE"))
        log.info("Model %r version %d is serving (%d warmup requests)", self.model_name, version, warmed)
        if current is not None:
            self._set_status(VersionStatus(current.version, "END"))
            self._unloaded = True
            log.info("Model %r version %d unloaded", self.model_name, current.version)
        return True

    def _fail(self, version, contents, what, error):
        message = f"{what}: {type(error).__name__}: {error}"
        log.error("Model %r version %d: %s", self.model_name, version, message)
        self._failed[version] = contents
        self._set_status(VersionStatus(version, "END", _error_code(error), message))
        return False

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
