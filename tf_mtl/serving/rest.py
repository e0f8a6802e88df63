"""TF Serving's REST API (JSON) on the standard library's ``ThreadingHTTPServer``.

- ``POST /v1/models/<name>[/versions/<v>]:predict`` with ``{"signature_name": ..., "instances":
  [{input: value, ...}, ...]}`` (row format) answers ``{"predictions": [{output: value, ...}, ...]}``;
  with ``{"inputs": {input: [...], ...}}`` (columnar) it answers ``{"outputs": {output: [...]}}``.
  A signature with one input also takes bare values; binary strings are ``{"b64": "..."}``.
- ``GET /v1/models/<name>[/versions/<v>]``: ``{"model_version_status": [...]}``.
- ``GET /v1/models/<name>[/versions/<v>]/metadata``: the signature defs.

Errors are ``{"error": "..."}`` with 400 (invalid argument), 404 (not found), 408 (the body
did not arrive within ``RestHandler.timeout`` seconds), 413 (request or batch too large) or 501
(classify, regress and HTTP methods other than GET and POST), http.server's own refusals
(malformed request line, oversize headers) included.
"""

import base64
import http.server
import json
import logging
import re
import sys

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from tf_mtl.serving.servable import DEFAULT_SIGNATURE, ServingError

log = logging.getLogger(__name__)
_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?(?:/(?P<metadata>metadata)|:(?P<verb>\w+))?")
_DIGITS = re.compile(r"[0-9]+")
_INT64_MAX = 2**63 - 1
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.DEADLINE_EXCEEDED: 408,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


def _invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _number(digits):
    """A string of ASCII digits (a version, a Content-Length) as an int; one of more than 19
    digits, beyond int64, reads as ``2**63`` unparsed (``int()`` refuses more than 4300 digits)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 19 else _INT64_MAX + 1


def _decode(value):
    """JSON values with strings as bytes; ``TypeError``/``ValueError`` for a ``b64`` that is not base64."""
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
    or ragged lists, integers out of the dtype's range, and ``b64`` values that are not base64."""
    try:
        value = _decode(value)
        if spec.dtype == tf.string:
            array = np.array(value, dtype=object)
            if not all(isinstance(v, bytes) for v in array.reshape(-1)):
                raise _invalid(f"Input {name!r}: expected strings of one shape for dtype string.")
            return array
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise _invalid(f"Input {name!r}: {error}") from error
    if array.dtype.kind not in "biuf":
        raise _invalid(f"Input {name!r}: expected numbers of one shape for dtype {spec.dtype.name}, received {array.dtype.name}.")
    if array.dtype.kind == "f" and not spec.dtype.is_floating:
        raise _invalid(f"Input {name!r}: expected dtype {spec.dtype.name}, received floating point numbers.")
    converted = array.astype(spec.dtype.as_numpy_dtype)
    if array.dtype.kind in "iu" and not np.array_equal(converted, array):
        raise _invalid(f"Input {name!r}: integers out of the range of dtype {spec.dtype.name}.")
    return converted


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
    # HTTP/0.9 answers have no status line: a request line without a version is answered in 1.0.
    default_request_version = "HTTP/1.0"
    # Seconds a connection may stay silent, idle or in the middle of a body, before it is closed:
    # a client that declares a longer body than it sends does not hold a thread for ever.
    timeout = 30

    def log_message(self, format, *args):
        """Quiet: TF Serving does not log every request either."""

    def _send(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (malformed request line, unsupported method, oversize
        headers) as JSON like every other error; the connection is closed after them."""
        self.close_connection = True
        self._skip_body()
        self._send(code, {"error": message or self.responses.get(code, ("",))[0]})

    def _skip_body(self):
        """Reads and drops a body nothing will use, when its length is known: closing a
        connection with unread bytes resets it, and the client may lose the answer."""
        headers = getattr(self, "headers", None)  # None when the request line itself was refused
        declared = headers.get("Content-Length", "").strip() if headers is not None else ""
        if _DIGITS.fullmatch(declared):
            self._discard(_number(declared))

    def _answer(self, respond):
        """Sends ``respond()``'s ``(code, payload)``, or the error it raised."""
        try:
            code, payload = respond()
        except ServingError as error:
            code, payload = HTTP_STATUS.get(error.code, 500), {"error": error.message}
        except Exception as error:  # a bug: answered and logged with its traceback, never a dropped connection
            log.exception("REST %s %.200s failed", self.command, self.path)
            code, payload = 500, {"error": f"Internal error ({type(error).__name__}); see the server's log."}
        self._send(code, payload)

    def _route(self):
        match = _PATH.fullmatch(self.path)
        if match is None:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {self.command} {self.path}")
        version = match["version"]
        if version is None:
            return match, None
        number = _number(version)
        if number > _INT64_MAX:
            raise _invalid(f"Version {version} is not an int64; expected a version number below 2**63.")
        return match, number

    def do_GET(self):
        if self.headers.get("Transfer-Encoding") is not None or self.headers.get("Content-Length", "0").strip() != "0":
            self.close_connection = True  # a body a GET does not take: where the next request starts is in doubt
            self._skip_body()
        self._answer(self._get)

    def _get(self):
        manager = self.server.manager
        match, version = self._route()
        if match["verb"]:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: GET {self.path}; :{match['verb']} takes POST.")
        if not match["metadata"]:
            return 200, status_json(manager.status(match["name"], version))
        servable = manager.servable(match["name"], version)
        signatures = {name: json_format.MessageToDict(sig) for name, sig in servable.signature_defs.items()}
        return 200, {
            "model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": signatures}},
        }

    def _discard(self, length, chunk=1 << 16):
        """Reads and drops ``length`` bytes of body (up to 4x the cap), so the client, still
        sending it, gets the answer rather than a broken pipe; beyond that the connection is
        simply closed."""
        remaining = min(length, 4 * self.server.max_request_bytes)
        try:
            while remaining > 0:
                read = self.rfile.read(min(chunk, remaining))
                if not read:
                    return
                remaining -= len(read)
        except TimeoutError:
            return

    def _body(self):
        """The request body, all ``Content-Length`` bytes of it; any doubt about where it ends
        closes the connection after the answer."""
        limit = self.server.max_request_bytes
        if self.headers.get("Transfer-Encoding") is not None:
            self.close_connection = True
            raise _invalid(f"Transfer-Encoding {self.headers['Transfer-Encoding']!r} is not supported; expected a Content-Length.")
        lengths = {value.strip() for value in self.headers.get_all("Content-Length", [])}
        if not lengths:
            return b""
        if len(lengths) > 1:
            self.close_connection = True
            raise _invalid(f"Conflicting Content-Length headers {sorted(lengths)}; expected one.")
        declared = lengths.pop()
        if not _DIGITS.fullmatch(declared):
            self.close_connection = True
            raise _invalid(f"Content-Length {declared!r} is not a number of bytes.")
        length = _number(declared)
        if length > limit:
            self.close_connection = True
            self._discard(length)
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"Request of {declared} bytes is larger than the maximum {limit} bytes.")
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, f"The {length}-byte body did not arrive within {self.timeout} s.") from None
        if len(raw) < length:
            self.close_connection = True
            raise _invalid(f"The connection closed after {len(raw)} of the {length} bytes of Content-Length.")
        return raw

    def do_POST(self):
        self._answer(self._post)

    def _post(self):
        server = self.server
        raw = self._body()
        match, version = self._route()
        if match["verb"] != "predict":
            code = grpc.StatusCode.UNIMPLEMENTED if match["verb"] in ("classify", "regress") else grpc.StatusCode.NOT_FOUND
            raise ServingError(code, f"Unsupported request: POST {self.path}; expected :predict.")
        servable = server.manager.servable(match["name"], version)
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise _invalid(f"Request body is not JSON: {error}") from error
        except RecursionError:
            raise _invalid("Request body is nested too deeply to parse.") from None
        signature = body.get("signature_name") if isinstance(body, dict) else None
        try:
            signature_name, inputs, row_format = parse_predict(body, servable.input_specs(signature or DEFAULT_SIGNATURE))
        except RecursionError:
            raise _invalid("Request inputs are nested too deeply.") from None
        outputs = servable.predict(signature_name or DEFAULT_SIGNATURE, inputs, max_batch_size=server.max_batch_size)
        return 200, format_predict(outputs, row_format)


class RestServer(http.server.ThreadingHTTPServer):
    """The REST front end of a ``ModelManager``."""

    daemon_threads = True

    def __init__(self, address, manager, max_batch_size, max_request_bytes):
        super().__init__(address, RestHandler)
        self.manager = manager
        self.max_batch_size = max_batch_size
        self.max_request_bytes = max_request_bytes

    def handle_error(self, request, client_address):
        """A client that hangs up before its answer is sent is not an error of the server; anything
        else is logged with its traceback (socketserver prints it to stderr)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("REST connection from %s failed", client_address[0])
