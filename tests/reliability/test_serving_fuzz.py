"""Bad serving requests thrown at a running ModelServer by hypothesis, over gRPC and REST.

Every answer must be a proper error (gRPC: INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED or
UNIMPLEMENTED, never UNKNOWN or INTERNAL; REST: a 4xx, or 501 for what is not implemented, with
a JSON ``{"error": ...}``, never a 500 or a dropped connection), a valid request among them must
be scored exactly as the SavedModel scores it, the server stays up, and valid requests sent
after all of them are scored exactly as the model.
"""

import collections
import copy
import json
import math
import urllib.parse

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tf_mtl.serving.server import DEFAULT_MAX_BATCH_SIZE
from tf_mtl.serving.tensors import to_proto

from ._serving import MODEL, counts, data, export_version, http_exchange, json_body, saved_model_outputs, serve

pytestmark = pytest.mark.reliability

MAX_BYTES = 4 << 20  # the fuzzed server's request cap (the default is 64 MiB): huge bodies stay cheap to send
POOL = 200  # rows of valid inputs requests are cut from
ERROR_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
}
NAMES = ["../ranker", "ranker/../ranker", "/etc/passwd", "ranker\x00", "RANKER", " ranker", "..", "%2e%2e%2f", "r" * 20000]


class Served:
    """The served model and what the tests need of it (short repr: hypothesis prints it)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return "served"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz") / MODEL
    features, expected = export_version(base, 1)
    with serve(base, max_request_bytes=MAX_BYTES) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Served(
                server=server,
                path=base / "1",
                channel=channel,
                stub=prediction_service_pb2_grpc.PredictionServiceStub(channel),
                features=features,
                expected=expected,
                pool={name: values[:POOL] for name, values in data().x.items()},
                specs=tf.saved_model.load(str(base / "1")).signatures["serving_default"].structured_input_signature[1],
            )


def _assert_scores(outputs, expected):
    assert sorted(outputs) == sorted(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(np.asarray(outputs[name], dtype=np.float32), values, atol=1e-6, rtol=0, equal_nan=True)


def _assert_valid_requests_still_scored(served):
    """After the fuzzing: the server still answers, over both protocols, exactly as the model."""
    response = served.stub.Predict(_predict_request({n: to_proto(v) for n, v in served.features.items()}), timeout=30)
    _assert_scores({n: tf.make_ndarray(p) for n, p in response.outputs.items()}, served.expected)
    status, _, body = http_exchange(served.server.rest_api_port, "POST", f"/v1/models/{MODEL}:predict", json_body(served.features, rows=False))
    assert status == 200, body
    _assert_scores(json.loads(body)["outputs"], served.expected)


def _predict_request(protos, name=MODEL, signature="serving_default"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for key, proto in protos.items():
        request.inputs[key].CopyFrom(proto)
    return request


# ---------------------------------------------------------------------------------------------
# gRPC: PredictRequests built from valid rows, left valid or broken in up to three ways.

NUMPY_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.bool_, np.complex64, np.complex128, object]


def _shape(*dims):
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


@st.composite
def random_tensor_protos(draw):
    """Any TensorProto: random dtype number, declared shape (negative and huge sizes too) and values."""
    proto = tensor_pb2.TensorProto(
        dtype=draw(st.one_of(st.integers(0, 30), st.integers(100, 130), st.just(2**31 - 1))),
        tensor_shape=_shape(*draw(st.lists(st.one_of(st.integers(-3, 4), st.integers(2**40, 2**62)), max_size=4))),
    )
    field = draw(st.sampled_from(["float_val", "int64_val", "int_val", "string_val", "bool_val", "scomplex_val", "half_val", "tensor_content"]))
    if field == "tensor_content":
        proto.tensor_content = draw(st.binary(max_size=64))
    elif field == "string_val":
        proto.string_val.extend(draw(st.lists(st.binary(max_size=8), max_size=6)))
    elif field in ("float_val", "scomplex_val"):
        getattr(proto, field).extend(draw(st.lists(st.floats(width=32), max_size=6)))
    elif field == "bool_val":
        proto.bool_val.extend(draw(st.lists(st.booleans(), max_size=6)))
    else:
        bits = 64 if field == "int64_val" else 32
        getattr(proto, field).extend(draw(st.lists(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1), max_size=6)))
    return proto


def _other_name(names):
    return st.one_of(st.sampled_from(NAMES), st.text(max_size=40)).filter(lambda name: name not in names)


def _first(array):
    """One value of ``array``'s dtype, as a one-element array."""
    return array.reshape(-1)[:1] if array.size else np.array([b"" if array.dtype == object else 0], array.dtype)


def _resized(array, shape):
    """``array``'s values repeated to ``shape`` (its dtype's zero or b"" if it has none)."""
    return np.resize(array if array.size else _first(array), shape)


def _break(draw, fault, request, protos, arrays, specs):
    """Applies one fault; all of them but 'random tensor' make the request invalid."""
    name = draw(st.sampled_from(sorted(specs)))
    spec, array = specs[name], arrays[name]
    if fault == "model name":
        request.model_spec.name = draw(_other_name({MODEL}))
    elif fault == "version":
        request.model_spec.version.value = draw(st.integers(-(2**63), 2**63 - 1).filter(lambda v: v != 1))
    elif fault == "version label":
        request.model_spec.version_label = draw(st.text(max_size=20))
    elif fault == "signature":
        request.model_spec.signature_name = draw(_other_name({"", "serving_default"}))
    elif fault == "output filter":
        request.output_filter.append(draw(_other_name({"ctr", "cvr", "score"})))
    elif fault == "missing inputs":
        for key in draw(st.lists(st.sampled_from(sorted(specs)), min_size=1, unique=True)):
            protos.pop(key, None)
    elif fault == "extra input":
        protos[draw(_other_name(set(specs)))] = to_proto(array)
    elif fault == "dtype":
        wanted = draw(st.sampled_from([d for d in NUMPY_DTYPES if d != (object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype)]))
        if wanted is object:
            changed = np.full(array.shape, b"7", dtype=object)
        else:
            changed = np.zeros(array.shape, wanted) if array.dtype == object else array.astype(wanted)
        protos[name] = tf.make_tensor_proto(changed)
    elif fault == "rank":
        rank = draw(st.sampled_from([r for r in (0, 1, 2, 3) if r != len(spec.shape)]))
        protos[name] = tf.make_tensor_proto(_resized(array, (len(array),) + (1,) * (rank - 1)) if rank else _first(array).reshape(()))
    elif fault == "inner size" and len(spec.shape) == 2:
        protos[name] = tf.make_tensor_proto(_resized(array, (len(array), draw(st.integers(0, 30).filter(lambda n: n != spec.shape[1])))))
    elif fault == "batch sizes":
        protos[name] = tf.make_tensor_proto(_resized(array, (len(array) + draw(st.integers(1, 5)),) + array.shape[1:]))
    elif fault == "huge batch":
        rows = draw(st.one_of(st.integers(DEFAULT_MAX_BATCH_SIZE + 1, 200_000), st.integers(2**31, 2**62)))
        for key in [key for key in protos if key in specs]:  # every input declares the same huge batch, filled from one value
            value = tf.make_tensor_proto(_first(arrays[key])[0])
            value.tensor_shape.CopyFrom(_shape(rows, *specs[key].shape[1:]))
            protos[key] = value
    elif fault == "negative size":
        proto = protos.setdefault(name, to_proto(array))
        (proto.tensor_shape.dim[0] if proto.tensor_shape.dim else proto.tensor_shape.dim.add()).size = draw(st.integers(-(2**63), -1))
    elif fault == "tensor_content length" and spec.dtype != tf.string:
        proto = to_proto(array)
        proto.tensor_content = draw(st.binary(max_size=200).filter(lambda b: len(b) != array.nbytes))
        protos[name] = proto
    elif fault == "random tensor":
        protos[name] = draw(random_tensor_protos())
    else:  # a fault that does not apply to this input: make the request invalid another way
        protos.pop(name, None)


GRPC_FAULTS = ["model name", "version", "version label", "signature", "output filter", "missing inputs", "extra input", "dtype",
               "rank", "inner size", "batch sizes", "huge batch", "negative size", "tensor_content length", "random tensor"]


@st.composite
def predict_requests(draw, served):
    pool, specs = served.pool, served.specs
    start = draw(st.integers(0, POOL - 16))
    rows = draw(st.sampled_from([0, 1, 3, 16]))
    arrays = {name: values[start : start + rows] for name, values in pool.items()}
    protos = {name: to_proto(values) for name, values in arrays.items()}
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = draw(st.sampled_from(["", "serving_default"]))
    faults = draw(st.lists(st.sampled_from(GRPC_FAULTS), max_size=3, unique=True))
    for fault in faults:
        _break(draw, fault, request, protos, arrays, specs)
    for key, proto in protos.items():
        request.inputs[key].CopyFrom(proto)
    return request, faults


def test_grpc_predict_fuzz(served, reliability):
    codes, valid = collections.Counter(), collections.Counter()

    @settings(max_examples=400)
    @given(predict_requests(served))
    def check(case):
        request, faults = case
        try:
            response = served.stub.Predict(request, timeout=60)
        except grpc.RpcError as error:
            assert error.code() in ERROR_CODES and faults, (faults, error.code(), error.details())
            codes[error.code().name] += 1
        else:
            assert set(faults) <= {"random tensor"}, (faults, "answered OK")
            inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            _assert_scores({n: tf.make_ndarray(p) for n, p in response.outputs.items()}, saved_model_outputs(served.path, inputs))
            codes["OK"] += 1
            valid["empty" if response.outputs["score"].tensor_shape.dim[0].size == 0 else "rows"] += 1

    check()
    assert valid["rows"] and valid["empty"], valid
    rows, size = 100_000, MAX_BYTES + (1 << 20)
    huge = {name: to_proto(np.resize(values, (rows,) + values.shape[1:])) for name, values in served.features.items()}
    large = {"examples": to_proto(np.array([b"x" * size], object))}
    for request in _predict_request(huge), _predict_request(large, signature="serve_tf_examples"):
        with pytest.raises(grpc.RpcError) as error:
            served.stub.Predict(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.value.details()
        codes[error.value.code().name] += 1
    _assert_valid_requests_still_scored(served)
    total = sum(codes.values())
    reliability.record(
        "Bad input: serving requests",
        f"{total} gRPC Predict requests: valid rows (0, 1, 3 or 16, empty batches included) broken in up to 3 ways each "
        f"(unknown model names incl. '../ranker', versions, version labels, signatures, output filters; missing and extra inputs; "
        f"dtypes incl. string, bool, complex, half; rank 0 to 3; uneven batches; batches declared up to 2**62 rows from one value; "
        f"negative sizes; tensor_content of the wrong length; random TensorProtos), a real {rows:,}-row batch and a "
        f"{size >> 20} MiB request",
        f"answers: {counts(codes)}, no other code (no UNKNOWN or INTERNAL); each of the {sum(valid.values())} valid ones "
        f"({valid['empty']} of 0 rows) scored as tf.saved_model.load scores it; server up, valid requests after them scored "
        f"exactly as the model",
    )


METHODS = [
    "/tensorflow.serving.PredictionService/Predict",
    "/tensorflow.serving.PredictionService/Classify",
    "/tensorflow.serving.PredictionService/Regress",
    "/tensorflow.serving.PredictionService/MultiInference",
    "/tensorflow.serving.PredictionService/GetModelMetadata",
    "/tensorflow.serving.ModelService/GetModelStatus",
    "/tensorflow.serving.ModelService/HandleReloadConfigRequest",
]
NO_METHODS = ["/tensorflow.serving.PredictionService/Nope", "/nope.Service/Nope"]


def test_grpc_garbage_bytes(served, reliability):
    codes, parsed = collections.Counter(), collections.Counter()

    @settings(max_examples=300)
    @given(st.sampled_from(METHODS + NO_METHODS), st.one_of(st.binary(max_size=2048), st.builds(lambda b: b"\n" + b, st.binary(max_size=300))))
    def check(method, payload):
        call = served.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            call(payload, timeout=30)
        except grpc.RpcError as error:
            assert error.code() in ERROR_CODES, (method, payload, error.code(), error.details())
            unparsed = "does not parse" in (error.details() or "")
            assert not unparsed or error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, payload, error.code())
            codes[error.code().name] += 1
            parsed["unparsed" if unparsed else "parsed"] += 1
        else:
            pytest.fail(f"{method} answered OK to {payload!r}")

    check()
    assert parsed["unparsed"] and parsed["parsed"], parsed
    _assert_valid_requests_still_scored(served)
    reliability.record(
        "Bad input: serving requests",
        f"{sum(codes.values())} random byte strings sent as the request message (no serializer) to the {len(METHODS)} "
        f"methods of PredictionService and ModelService and {len(NO_METHODS)} that do not exist",
        f"answers: {counts(codes)} ({parsed['unparsed']} did not parse as the method's message: INVALID_ARGUMENT, "
        f"not gRPC's INTERNAL), no other code; server up, valid requests after them scored exactly as the model",
    )


# ---------------------------------------------------------------------------------------------
# REST: predict bodies built from valid rows, left valid or broken; and raw HTTP of every sort.


def _rest_break(draw, fault, body, path, specs):
    """Applies one fault to a predict body (a dict of columns or rows) or its path; all make it invalid."""
    columns = body.get("inputs") or {}
    rows = body.get("instances") or []
    name = draw(st.sampled_from(sorted(specs)))
    spec = specs[name]

    def replace(value):
        if rows:
            rows[draw(st.integers(0, len(rows) - 1))][name] = value
        else:
            column = columns.setdefault(name, [value])
            column[draw(st.integers(0, len(column) - 1))] = value

    if fault == "model name":
        path["name"] = urllib.parse.quote(draw(_other_name({MODEL}).filter(bool)), safe=draw(st.sampled_from(["", "/.%"])))
    elif fault == "version":
        path["version"] = draw(st.one_of(st.integers(2, 2**64).map(str), st.just("9" * 5000), st.just("0" * 30 + "1" * 20)))
    elif fault == "signature":
        body["signature_name"] = draw(st.one_of(_other_name({"serving_default"}).filter(bool), st.lists(st.integers(), min_size=1),
                                                st.dictionaries(st.text(max_size=3), st.integers(), min_size=1), st.integers(1, 9)))
    elif fault == "missing input":
        for item in rows or [columns]:
            item.pop(name, None)
    elif fault == "extra input":
        extra = draw(_other_name(set(specs)).filter(bool))
        for item in rows or [columns]:
            item[extra] = 1.0 if rows else [1.0] * len(columns.get(name, [0]))
    elif fault == "wrong type":
        replace("cheap" if spec.dtype != tf.string else draw(st.sampled_from([3, 2.5, True, None, {"a": 1}])))
    elif fault == "float for integer" and spec.dtype == tf.int64:
        replace(draw(st.floats(allow_nan=True).filter(lambda v: not (math.isfinite(v) and v == int(v)))))
    elif fault == "integer out of range" and spec.dtype == tf.int64:
        replace(draw(st.one_of(st.integers(2**63, 2**80), st.integers(-(2**80), -(2**63) - 1))))
    elif fault == "nesting":
        depth = draw(st.sampled_from([1, 2, 40, 600]))
        value = copy.deepcopy(columns.get(name, [1])[0] if columns else rows[0].get(name, 1))
        for _ in range(depth):
            value = [value]
        replace(value)
    elif fault == "ragged" and len(spec.shape) == 2:
        replace(["cat_01"] * draw(st.integers(0, 30).filter(lambda n: n != spec.shape[1])))
    elif fault == "b64 garbage":
        replace(draw(st.sampled_from([{"b64": "abc"}, {"b64": 5}, {"b64": None}, {"b64": "QQ==", "x": 1}, {"b64": ["QQ=="]}])))
        if spec.dtype != tf.string:
            replace({"b64": "QQ=="})
    elif fault == "lone surrogate" and spec.dtype == tf.string:
        replace("\ud800")
    elif fault == "uneven batch" and columns:
        columns[name] = columns.get(name, [1]) * 2
    elif fault == "body shape":
        body.clear()
        body.update(draw(st.sampled_from([{}, {"instances": []}, {"instances": rows, "inputs": columns}, {"inputs": None},
                                          {"instances": {"a": 1}}, {"instances": [1, 2]}, {"instances": [{}]}])))
    else:  # a fault that does not apply to this input: make the request invalid another way
        for item in rows or [columns]:
            item.pop(name, None)


# "body shape" last: it replaces the body the others change.
REST_FAULTS = ["model name", "version", "signature", "missing input", "extra input", "wrong type", "float for integer", "integer out of range",
               "nesting", "ragged", "b64 garbage", "lone surrogate", "uneven batch", "body shape"]


@st.composite
def predict_bodies(draw, served):
    """``(path, body bytes, faults, arrays, rows)``: a predict request from 1 to 16 valid rows (row
    format or columnar), a NaN price sometimes (valid: the model scores it), broken in up to 3 ways."""
    pool, specs = served.pool, served.specs
    start, n = draw(st.integers(0, POOL - 16)), draw(st.sampled_from([1, 3, 16]))
    arrays = {name: values[start : start + n].copy() for name, values in pool.items()}
    if draw(st.booleans()):
        arrays["item_price"][0] = np.nan
    rows = draw(st.booleans())
    body = json.loads(json_body(arrays, rows))
    path = {"name": MODEL, "version": draw(st.sampled_from([None, "1"]))}
    faults = sorted(draw(st.lists(st.sampled_from(REST_FAULTS), max_size=3, unique=True)), key=REST_FAULTS.index)
    for fault in faults:
        _rest_break(draw, fault, body, path, specs)
    version = f"/versions/{path['version']}" if path["version"] else ""
    return f"/v1/models/{path['name']}{version}:predict", json.dumps(body).encode(), faults, arrays, rows


def _assert_json_error(status, content_type, data, context):
    assert 400 <= status < 500 or status == 501, (status, data[:300], context)
    assert content_type == "application/json", (content_type, context)
    assert isinstance(json.loads(data)["error"], str), context


def test_rest_predict_fuzz(served, reliability):
    statuses, valid = collections.Counter(), collections.Counter()

    @settings(max_examples=300)
    @given(predict_bodies(served))
    def check(case):
        path, body, faults, arrays, rows = case
        status, content_type, data = http_exchange(served.server.rest_api_port, "POST", path, body)
        statuses[status] += 1
        if faults:
            _assert_json_error(status, content_type, data, (path[:100], faults))
            return
        assert status == 200, data[:500]
        answer = json.loads(data)
        outputs = {k: [row[k] for row in answer["predictions"]] for k in answer["predictions"][0]} if rows else answer["outputs"]
        _assert_scores(outputs, saved_model_outputs(served.path, arrays))
        valid["NaN" if np.isnan(arrays["item_price"]).any() else "plain"] += 1

    check()
    assert valid["plain"] and valid["NaN"], valid
    over = [DEFAULT_MAX_BATCH_SIZE + 1, 100_000]  # rows: over the batch cap, and over the byte cap too
    for n in over:
        body = json_body({k: np.resize(v, (n,) + v.shape[1:]) for k, v in served.features.items()}, rows=n == over[0])
        status, content_type, data = http_exchange(served.server.rest_api_port, "POST", f"/v1/models/{MODEL}:predict", body)
        assert status == 413, (n, data[:300])
        _assert_json_error(status, content_type, data, n)
        statuses[status] += 1
    _assert_valid_requests_still_scored(served)
    reliability.record(
        "Bad input: serving requests",
        f"{sum(statuses.values())} REST predict requests (row and columnar), valid rows broken in up to 3 ways each "
        f"(model names incl. '..%2F..', versions beyond int64 and of 5000 digits, signature names of every JSON type, missing "
        f"and extra inputs, strings for numbers and numbers for strings, fractions and NaN for integers, integers beyond "
        f"int64, nesting up to 600 deep, ragged lists, b64 garbage, lone surrogates, uneven batches, bodies of the wrong "
        f"shape), and {over[0]:,} and {over[1]:,} rows (over the batch cap; the second over the {MAX_BYTES >> 20} MiB cap too)",
        f"HTTP statuses: {counts(statuses)}, no other (no 500), no dropped connection, every error a JSON {{\"error\"}}; each "
        f"of the {sum(valid.values())} valid ones ({valid['NaN']} with a NaN price) scored as tf.saved_model.load scores it; "
        f"server up, valid requests after them scored exactly as the model",
    )


HTTP_METHODS = ["POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW"]
BRACKETS, DEPTH = 100_000, 5_000


@st.composite
def raw_http(draw):
    """Anything a client may send: method, path, body bytes and a Content-Length true or not."""
    method = draw(st.sampled_from(["POST"] * 8 + ["GET"] * 3 + HTTP_METHODS[2:]))
    name = draw(st.one_of(st.just(MODEL), st.sampled_from(NAMES[:-1]).map(lambda n: urllib.parse.quote(n, safe="")),
                          st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20)))
    path = draw(st.one_of(
        st.builds(lambda v, s: f"/v1/models/{name}{v}{s}", st.sampled_from(["", "/versions/1", "/versions/2", "/versions/-1", "/versions/99999999999999999999"]),
                  st.sampled_from(["", ":predict", ":classify", ":regress", ":explode", "/metadata", "/metadata:predict", "/"])),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60).map(lambda s: "/" + s),
        st.binary(max_size=40).filter(lambda b: b" " not in b and b"\r" not in b and b"\n" not in b),
    ))
    body = draw(st.one_of(
        st.binary(max_size=512),
        st.just(b"[" * BRACKETS),
        st.just(b'{"instances": [{"item_price": NaN, "user_id": Infinity}]}'),
        st.just(b'{"inputs": ' + b'{"a": ' * DEPTH + b"1" + b"}" * (DEPTH + 1)),
        st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=10), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)).map(lambda v: json.dumps(v).encode()),
    ))
    length = draw(st.sampled_from(["exact", "exact", "shorter", "longer", "not a number", "negative", "absent", "chunked", "chunked and a length",
                                   "two lengths", "over the cap"]))
    return method, path, body, length


def test_rest_raw_fuzz(served, reliability):
    statuses = collections.Counter()
    routes = {f"/v1/models/{MODEL}{v}{s}" for v in ("", "/versions/1") for s in ("", "/metadata")}

    @settings(max_examples=300)
    @given(raw_http())
    def check(case):
        method, path, body, length = case
        options = {
            "exact": {},
            "shorter": {"content_length": str(len(body) // 2).encode()},
            "longer": {"content_length": str(len(body) + 10).encode(), "half_close": True},
            "not a number": {"content_length": b"12abc"},
            "negative": {"content_length": b"-5"},
            "absent": {"content_length": False},
            "chunked": {"content_length": False, "headers": {"Transfer-Encoding": "chunked"}, "body": b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"},
            "chunked and a length": {"headers": {"Transfer-Encoding": "chunked"}},
            "two lengths": {"headers": {"content-length": str(len(body) + 1)}},
            "over the cap": {"content_length": str(MAX_BYTES + 1).encode(), "half_close": True, "body": b""},
        }[length]
        status, content_type, data = http_exchange(served.server.rest_api_port, method, path, **{"body": body, **options})
        statuses[status] += 1
        if status == 200:
            assert method in ("GET", "HEAD") and path in routes, (method, path, length)
        elif method != "HEAD":
            _assert_json_error(status, content_type, data, (method, path, length))
        else:
            assert 400 <= status < 500 or status == 501, (method, path, length, status)

    check()
    _assert_valid_requests_still_scored(served)
    reliability.record(
        "Bad input: serving requests",
        f"{sum(statuses.values())} raw HTTP requests: {len(HTTP_METHODS)} methods, random and malformed URL paths (bytes, "
        f"'..', percent-escapes, versions -1 and beyond int64), random bytes and random JSON bodies, {BRACKETS:,} open "
        f"brackets, {DEPTH:,}-deep objects, NaN/Infinity literals; Content-Length exact, shorter, longer (then half-closed), not a number, negative, "
        f"absent, twice with different values, chunked bodies (with and without a Content-Length), over the {MAX_BYTES >> 20} MiB cap",
        f"HTTP statuses: {counts(statuses)}, no other (no 500), no dropped connection, every error a JSON {{\"error\"}}; 200 only "
        f"for GET of the model's status and metadata; server up, valid requests after them scored exactly as the model",
    )
