"""TF Serving's REST API (JSON) on the standard library's ``ThreadingHTTPServer``.

- ``POST /v1/models/<name>[/versions/<v>]:predict`` with ``{"signature_name": ..., "instances":
  [{input: value, ...}, ...]}`` (row format) answers ``{"predictions": [{output: value, ...}, ...]}``;
  with ``{"inputs": {input: [...], ...}}`` (columnar) it answers ``{"outputs": {output: [...]}}``.
  A signature with one input also takes bare values; binary strings are ``{"b64": "..."}``.
- ``GET /v1/models/<name>[/versions/<v>]``: ``{"model_version_status": [...]}``.
- ``GET /v1/models/<name>[/versions/<v>]/metadata``: the signature defs.

Errors are ``{"error": "..."}`` with 400 (invalid argument), 404 (not found), 413 (request
or batch too large).
"""

import base64
import http.server
import json
import re

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from tf_mtl.serving.servable import DEFAULT_SIGNATURE, ServingError

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?:/(?P<metadata>metadata)|:(?P<verb>\w+))?$")
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


def _invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _decode(value):
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise _invalid(f"Expected a value or {{'b64': ...}}, received an object with keys {sorted(value)}.")
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value.encode() if isinstance(value, str) else value


def to_array(name, value, spec):
    """The JSON ``value`` of input ``name`` as an array of ``spec``'s dtype; INVALID_ARGUMENT
    for strings sent to a numeric input, numbers to a string input, floats to an integer input
    or ragged lists."""
    value = _decode(value)
    try:
        if spec.dtype == tf.string:
            array = np.array(value, dtype=object)
            if not all(isinstance(v, bytes) for v in array.reshape(-1)):
                raise _invalid(f"Input {name!r}: expected strings of one shape for dtype string.")
            return array
        array = np.asarray(value)
    except ValueError as error:
        raise _invalid(f"Input {name!r}: {error}") from error
    if array.dtype.kind not in "biuf":
        raise _invalid(f"Input {name!r}: expected numbers of one shape for dtype {spec.dtype.name}, received {array.dtype.name}.")
    if array.dtype.kind == "f" and not spec.dtype.is_floating:
        raise _invalid(f"Input {name!r}: expected dtype {spec.dtype.name}, received floating point numbers.")
    return array.astype(spec.dtype.as_numpy_dtype)


def _json_value(value):
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def parse_predict(body, specs):
    """``(signature_name, inputs, row_format)`` of a predict request body."""
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise _invalid("Expected a JSON object with exactly one of 'instances' (row format) or 'inputs' (columnar).")
    single = next(iter(specs)) if len(specs) == 1 else None
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise _invalid("'instances' must be a non-empty list.")
        named = all(isinstance(row, dict) and "b64" not in row for row in rows)
        if not named and single is None:
            raise _invalid(f"Each instance must be an object keyed by input; expected inputs {sorted(specs)}.")
        if not named:
            rows = [{single: row} for row in rows]
        names = set(rows[0])
        if any(set(row) != names for row in rows):
            raise _invalid("All instances must name the same inputs.")
        columns = {name: [row[name] for row in rows] for name in names}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict) or set(columns) == {"b64"}:
            if single is None:
                raise _invalid(f"'inputs' must be an object keyed by input; expected inputs {sorted(specs)}.")
            columns = {single: columns}
    # Unknown inputs are passed on as placeholders so that Servable.predict, the one place
    # that checks inputs against the signature, names them in its error.
    inputs = {name: to_array(name, value, specs[name]) if name in specs else np.asarray(0) for name, value in columns.items()}
    return body.get("signature_name"), inputs, "instances" in body


def format_predict(outputs, row_format):
    """The JSON answer: ``predictions`` (one object per row) or ``outputs`` (one list per output);
    with a single output, its values stand alone, as TF Serving does."""
    lists = {name: _json_value(value.tolist()) for name, value in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(lists.values())) if len(lists) == 1 else lists}
    if len(lists) == 1:
        return {"predictions": next(iter(lists.values()))}
    batch = len(next(iter(lists.values())))
    return {"predictions": [{name: values[i] for name, values in lists.items()} for i in range(batch)]}


def status_json(statuses):
    return {
        "model_version_status": [
            {"version": str(s.version), "state": s.state, "status": {"error_code": s.error_code, "error_message": s.error_message}}
            for s in statuses
        ]
    }


class RestHandler(http.server.BaseHTTPRequestHandler):
    """Routes requests to the server's ``manager``; ``server`` carries ``manager``,
    ``max_batch_size`` and ``max_request_bytes``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        """Quiet: TF Serving does not log every request either."""

    def _send(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error):
        self._send(HTTP_STATUS.get(error.code, 500), {"error": error.message})

    def _route(self):
        match = _PATH.match(self.path)
        if match is None:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {self.command} {self.path}")
        version = match["version"]
        return match, int(version) if version is not None else None

    def do_GET(self):
        manager = self.server.manager
        try:
            match, version = self._route()
            if match["verb"]:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: GET {self.path}; :{match['verb']} takes POST.")
            if match["metadata"]:
                servable = manager.servable(match["name"], version)
                signatures = {name: json_format.MessageToDict(sig) for name, sig in servable.signature_defs.items()}
                payload = {
                    "model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
                    "metadata": {"signature_def": {"signature_def": signatures}},
                }
            else:
                payload = status_json(manager.status(match["name"], version))
        except ServingError as error:
            return self._send_error(error)
        self._send(200, payload)

    def _discard(self, length, chunk=1 << 16):
        """Reads and drops a refused body (up to 4x the cap), so the client, still sending it,
        gets the 413 rather than a broken pipe; beyond that the connection is simply closed."""
        remaining = min(length, 4 * self.server.max_request_bytes)
        while remaining > 0:
            read = self.rfile.read(min(chunk, remaining))
            if not read:
                return
            remaining -= len(read)

    def do_POST(self):
        server = self.server
        try:
            length = int(self.headers.get("Content-Length", 0))
            if length > server.max_request_bytes:
                self.close_connection = True
                self._discard(length)
                raise ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"Request of {length} bytes is larger than the maximum {server.max_request_bytes} bytes.",
                )
            raw = self.rfile.read(length)
            match, version = self._route()
            if match["verb"] != "predict":
                code = grpc.StatusCode.UNIMPLEMENTED if match["verb"] in ("classify", "regress") else grpc.StatusCode.NOT_FOUND
                raise ServingError(code, f"Unsupported request: POST {self.path}; expected :predict.")
            try:
                body = json.loads(raw)
            except ValueError as error:
                raise _invalid(f"Request body is not JSON: {error}") from error
            servable = server.manager.servable(match["name"], version)
            signature = body.get("signature_name") if isinstance(body, dict) else None
            signature_name, inputs, row_format = parse_predict(body, servable.input_specs(signature or DEFAULT_SIGNATURE))
            outputs = servable.predict(signature_name or DEFAULT_SIGNATURE, inputs, max_batch_size=server.max_batch_size)
        except ServingError as error:
            return self._send_error(error)
        self._send(200, format_predict(outputs, row_format))


class RestServer(http.server.ThreadingHTTPServer):
    """The REST front end of a ``ModelManager``."""

    daemon_threads = True

    def __init__(self, address, manager, max_batch_size=None, max_request_bytes=64 << 20):
        super().__init__(address, RestHandler)
        self.manager = manager
        self.max_batch_size = max_batch_size
        self.max_request_bytes = max_request_bytes
