"""REST: row (instances) and columnar (inputs) predict formats match tf.saved_model.load;
status and metadata; errors as JSON with TF Serving's HTTP codes."""

import base64
import http.client
import json
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.reliability._serving import http_exchange
from tf_mtl.export import to_examples
from tf_mtl.serving.rest import RestHandler

from .conftest import MAX_BATCH, MAX_BYTES, MODEL, to_json


def _call(server, path, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_api_port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _rows(inputs):
    columns = {name: to_json(value) for name, value in inputs.items()}
    n = len(next(iter(columns.values())))
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


@pytest.mark.parametrize("path", [f"/v1/models/{MODEL}:predict", f"/v1/models/{MODEL}/versions/1:predict"])
def test_instances_match_saved_model(server, features, reference, path):
    code, answer = _call(server, path, {"signature_name": "serving_default", "instances": _rows(features)})
    assert code == 200, answer
    expected = reference("serving_default", features)
    assert len(answer["predictions"]) == 8
    for name, values in expected.items():
        np.testing.assert_allclose([row[name] for row in answer["predictions"]], values, atol=1e-6, rtol=0)


def test_inputs_match_saved_model(server, features, reference):
    code, answer = _call(server, f"/v1/models/{MODEL}:predict", {"inputs": {k: to_json(v) for k, v in features.items()}})
    assert code == 200, answer
    for name, values in reference("serving_default", features).items():
        np.testing.assert_allclose(answer["outputs"][name], values, atol=1e-6, rtol=0)


def test_examples_as_b64(server, features, reference):
    examples = to_examples(features)
    body = {"signature_name": "serve_tf_examples", "instances": [{"b64": base64.b64encode(e).decode()} for e in examples]}
    code, answer = _call(server, f"/v1/models/{MODEL}:predict", body)
    assert code == 200, answer
    expected = reference("serve_tf_examples", {"examples": np.array(examples, dtype=object)})
    np.testing.assert_allclose([row["score"] for row in answer["predictions"]], expected["score"], atol=1e-6, rtol=0)


def test_status_and_metadata(server):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert _call(server, f"/v1/models/{MODEL}") == (200, expected)
    assert _call(server, f"/v1/models/{MODEL}/versions/1") == (200, expected)
    code, answer = _call(server, f"/v1/models/{MODEL}/metadata")
    assert code == 200
    assert {"serving_default", "serve_tf_examples"} <= set(answer["metadata"]["signature_def"]["signature_def"])


def test_errors(server, features):
    rows = _rows(features)
    predict = f"/v1/models/{MODEL}:predict"
    cases = [
        (f"/v1/models/other:predict", {"instances": rows}, 404, "other"),
        (f"/v1/models/{MODEL}/versions/7:predict", {"instances": rows}, 404, "7"),
        (predict, {"signature_name": "nope", "instances": rows}, 404, "nope"),
        (predict, {"instances": [{k: v for k, v in r.items() if k != "user_id"} for r in rows]}, 400, "user_id"),
        (predict, {"instances": [dict(r, item_id=0.5) for r in rows]}, 400, "item_id"),
        (predict, {"instances": [dict(r, item_price="cheap") for r in rows]}, 400, "item_price"),
        (predict, {"instances": rows * (MAX_BATCH // 8 + 1)}, 413, "batch size"),
        (predict, {"instances": rows, "inputs": {}}, 400, "instances"),
        (f"/v1/models/{MODEL}/versions/{2**63}:predict", {"instances": rows}, 400, "not an int64"),
        (predict, {"signature_name": ["serving_default"], "instances": rows}, 404, "['serving_default']"),
        (predict, {"instances": [dict(r, user_id=2**63) for r in rows[:1]]}, 400, "out of the range of dtype int64"),
        (predict, {"instances": [dict(r, item_category={"b64": "abc"}) for r in rows]}, 400, "item_category"),
        (predict, {"instances": [dict(r, item_category={"b64": None}) for r in rows]}, 400, "item_category"),
        (predict, {"instances": [dict(r, item_category="\ud800") for r in rows]}, 400, "item_category"),
    ]
    for path, body, code, word in cases:
        received, answer = _call(server, path, body)
        assert received == code and word in answer["error"], (path, body.get("signature_name"), received, answer)
    assert _call(server, predict, raw=b"{not json")[0] == 400
    code, answer = _call(server, predict, raw=b" " * (MAX_BYTES + 1))
    assert code == 413 and f"{MAX_BYTES + 1} bytes" in answer["error"]
    assert _call(server, "/v1/other")[0] == 404
    assert _call(server, predict, {"instances": rows})[0] == 200


@pytest.mark.parametrize(
    "method, path, body, headers, code, word",
    [
        ("POST", f"/v1/models/{MODEL}:predict", b"[" * 100_000, {}, 400, "nested too deeply"),
        ("POST", f"/v1/models/{MODEL}:predict", b"{}", {"Content-Length": "2x"}, 400, "Content-Length '2x'"),
        ("POST", f"/v1/models/{MODEL}:predict", b"2\r\n{}\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}, 400, "chunked"),
        ("POST", f"/v1/models/{MODEL}:predict", b"{}", {"Content-Length": "2", "Transfer-Encoding": "chunked"}, 400, "chunked"),
        ("POST", f"/v1/models/{MODEL}:predict", b"{}", {"Content-Length": "2", "content-length": "3"}, 400, "Conflicting Content-Length"),
        ("PUT", f"/v1/models/{MODEL}", b"", {}, 501, "Unsupported method ('PUT')"),
        ("POST", "", b"", {}, 400, "Bad HTTP/0.9 request type"),
        ("GET", "/" + "x" * 70_000, b"", {}, 414, "URI Too Long"),
    ],
)
def test_malformed_http_is_answered_in_json(server, method, path, body, headers, code, word):
    headers = dict(headers)  # the parameter's own dict would lose its Content-Length for a rerun
    length = headers.pop("Content-Length", str(len(body)) if "Transfer-Encoding" not in headers else False)
    status, content_type, data = http_exchange(server.rest_api_port, method, path, body, headers=headers,
                                               content_length=length.encode() if length else length)
    assert (status, content_type) == (code, "application/json") and word in json.loads(data)["error"], data
    assert _call(server, f"/v1/models/{MODEL}")[0] == 200


def test_a_body_that_stops_is_answered_408(server, monkeypatch):
    monkeypatch.setattr(RestHandler, "timeout", 0.5)
    with socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=30) as sock:
        sock.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{{".encode())
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert response.status == 408 and "did not arrive within 0.5 s" in json.load(response)["error"]
