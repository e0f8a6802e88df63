"""Security defaults, measured: the server binds loopback unless told otherwise (and warns when
told), request size and batch caps are on, requests and CLI values never lead the server outside
``model_base_path``, no code builds a shell command, and every dependency has a known-good range
that the lock file sits inside."""

import ast
import collections
import configparser
import ipaddress
import logging
import os
import pathlib
import shutil
import socket
import struct
import sys
import types
import urllib.parse

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from tf_mtl.cli import main
from tf_mtl.serving import Client, ModelServer
from tf_mtl.serving.server import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES

from ._serving import MODEL, counts, export_version, http_exchange, json_body, serve
from ._training_processes import free_port

pytestmark = pytest.mark.reliability

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``base`` (version 1) and, beside it, ``outside/1``: a SavedModel with other weights that
    no request may reach."""
    root = tmp_path_factory.mktemp("security")
    features, expected = export_version(root / MODEL, 1)
    _, outside = export_version(root / "outside", 1, seed=1)
    assert not np.allclose(outside["score"], expected["score"])
    return types.SimpleNamespace(base=root / MODEL, outside=root / "outside", features=features, expected=expected["score"], outside_scores=outside["score"])


def _predict(port, features, name=MODEL, version=None):
    with Client("127.0.0.1", port, name, timeout=60) as client:
        return client.predict(features, version=version)


def _grpc_code(call):
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


# ---------------------------------------------------------------------------------------------
# Binding


def _listening(port):
    """The local addresses listening on TCP ``port``, read from the kernel's socket tables
    (IPv4-mapped IPv6 addresses as IPv4)."""
    addresses = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with open(table) as file:
            for line in file.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    words = [int(address[i : i + 8], 16) for i in range(0, len(address), 8)]
                    ip = ipaddress.ip_address(socket.inet_ntop(family, struct.pack(f"<{len(words)}I", *words)))
                    addresses.add(str(getattr(ip, "ipv4_mapped", None) or ip))  # gRPC binds IPv4 as ::ffff:a.b.c.d
    return addresses


def _serve_cli(monkeypatch, arguments, while_serving):
    """``tf-mtl serve ARGUMENTS`` in this process; ``while_serving(server)`` runs in place of
    waiting for Ctrl-C, then the command stops the server and returns."""
    seen = {}

    def wait(server):
        seen["result"] = while_serving(server)

    monkeypatch.setattr(ModelServer, "wait", wait)
    assert main(["serve", *arguments]) == 0
    return seen["result"]


def _warnings(caplog):
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING and record.name == "tf_mtl.serving.server"]


def test_loopback_by_default_and_a_warning_elsewhere(models, monkeypatch, caplog, reliability):
    base = models.base
    caplog.set_level(logging.INFO)
    with serve(base) as server:
        library = _listening(server.port) | _listening(server.rest_api_port)
    assert library == {"127.0.0.1"} and not _warnings(caplog)
    rest_port = free_port()
    cli = _serve_cli(monkeypatch, ["--model_name", MODEL, "--model_base_path", str(base), "--port", "0", "--rest_api_port", str(rest_port)],
                     lambda server: _listening(server.port) | _listening(server.rest_api_port))
    assert cli == {"127.0.0.1"} and not _warnings(caplog)
    with serve(base, host="0.0.0.0") as server:
        anywhere = {"gRPC": _listening(server.port), "REST": _listening(server.rest_api_port)}
    library_warnings = _warnings(caplog)
    caplog.clear()
    anywhere_cli = _serve_cli(monkeypatch, ["--model_name", MODEL, "--model_base_path", str(base), "--port", "0", "--rest_api_port", "0", "--host", "0.0.0.0"],
                              lambda server: _listening(server.port))
    cli_warnings = _warnings(caplog)
    assert anywhere_cli == anywhere["gRPC"] and all(addresses and addresses <= {"0.0.0.0", "::"} for addresses in anywhere.values())
    assert len(library_warnings) == len(cli_warnings) == 1 and "no authentication" in cli_warnings[0] and "0.0.0.0" in cli_warnings[0]
    reliability.record(
        "Security defaults",
        "ModelServer(...) and `tf-mtl serve` without a host, then with host 0.0.0.0 (listening addresses read from /proc/net/tcp)",
        f"without: gRPC and REST listen on {sorted(library | cli)} only, no warning; with 0.0.0.0: "
        f"{', '.join(f'{k} listens on {sorted(v)}' for k, v in anywhere.items())} (every interface) and each logs the warning "
        f"\"{cli_warnings[0]}\"",
    )


# ---------------------------------------------------------------------------------------------
# Caps


def test_request_and_batch_caps_are_on_by_default(models, monkeypatch, reliability):
    base, features, expected = models.base, models.features, models.expected
    at_cap = {k: np.resize(v, (DEFAULT_MAX_BATCH_SIZE,) + v.shape[1:]) for k, v in features.items()}
    over_cap = {k: np.resize(v, (DEFAULT_MAX_BATCH_SIZE + 1,) + v.shape[1:]) for k, v in features.items()}
    with serve(base) as server:
        assert (server.max_batch_size, server.max_request_bytes) == (DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES)
        np.testing.assert_allclose(_predict(server.port, at_cap)["score"], np.resize(expected, DEFAULT_MAX_BATCH_SIZE), atol=1e-6)
        rows_grpc = _grpc_code(lambda: _predict(server.port, over_cap))
        rows_rest = http_exchange(server.rest_api_port, "POST", f"/v1/models/{MODEL}:predict", json_body(over_cap, rows=True))[0]
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=[("grpc.max_send_message_length", -1)]) as channel:
            send = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
            bytes_grpc = _grpc_code(lambda: send(b"\n" * (DEFAULT_MAX_REQUEST_BYTES + 1), timeout=120))
        bytes_rest = http_exchange(server.rest_api_port, "POST", f"/v1/models/{MODEL}:predict", b"", content_length=str(DEFAULT_MAX_REQUEST_BYTES + 1).encode(), half_close=True)[0]
    assert (rows_grpc, rows_rest, bytes_grpc, bytes_rest) == (grpc.StatusCode.RESOURCE_EXHAUSTED, 413, grpc.StatusCode.RESOURCE_EXHAUSTED, 413)
    serve_base = ["--model_name", MODEL, "--model_base_path", str(base), "--port", "0", "--rest_api_port", "0"]
    default_cli = _serve_cli(monkeypatch, serve_base, lambda s: (s.max_batch_size, s.max_request_bytes))
    lifted_cli = _serve_cli(monkeypatch, [*serve_base, "--max_batch_size", "0"],
                            lambda s: (s.max_batch_size, _predict(s.port, over_cap)["score"].shape))
    assert default_cli == (DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES) and lifted_cli == (None, (DEFAULT_MAX_BATCH_SIZE + 1,))
    reliability.record(
        "Security defaults",
        f"ModelServer and `tf-mtl serve` with default caps: {DEFAULT_MAX_BATCH_SIZE} and {DEFAULT_MAX_BATCH_SIZE + 1} rows over "
        f"gRPC and REST, a {DEFAULT_MAX_REQUEST_BYTES + 1}-byte request over both; then `--max_batch_size 0`",
        f"{DEFAULT_MAX_BATCH_SIZE} rows scored as the model; {DEFAULT_MAX_BATCH_SIZE + 1} rows: gRPC {rows_grpc.name}, REST "
        f"{rows_rest}; {DEFAULT_MAX_REQUEST_BYTES >> 20} MiB + 1 byte: gRPC {bytes_grpc.name}, REST {bytes_rest}; the CLI "
        f"defaults to the same caps {default_cli}; `--max_batch_size 0` lifts the row cap ({DEFAULT_MAX_BATCH_SIZE + 1} rows scored)",
    )


# ---------------------------------------------------------------------------------------------
# Paths: the file-system calls of every thread, seen through an audit hook (sys.addaudithook).

_FILE_EVENTS = {"open", "os.listdir", "os.scandir", "glob.glob", "os.chdir", "os.mkdir", "os.remove", "os.rename", "os.rmdir",
                "os.symlink", "os.link", "os.truncate", "shutil.copyfile", "shutil.copytree", "shutil.rmtree", "shutil.move"}


class FileCalls:
    """Python's file-system calls (events ``_FILE_EVENTS``) made by any thread inside ``with``."""

    _recording = None
    _installed = False

    @classmethod
    def _hook(cls, event, args):
        recording = cls._recording
        if recording is not None and event in _FILE_EVENTS and args and isinstance(args[0], (str, bytes, os.PathLike)):
            recording.append((event, os.path.abspath(os.fsdecode(args[0]))))

    def __enter__(self):
        if not FileCalls._installed:
            sys.addaudithook(FileCalls._hook)  # hooks cannot be removed: one for the process, idle outside ``with``
            FileCalls._installed = True
        self.calls = []
        FileCalls._recording = self.calls
        return self

    def __exit__(self, *exc):
        FileCalls._recording = None

    def outside(self, base):
        """The calls whose path, symlinks resolved, is not ``base`` or inside it."""
        root = os.path.realpath(base)
        return [(event, path) for event, path in self.calls if not _inside(os.path.realpath(path), root)]


def _inside(path, folder):
    return path == folder or path.startswith(folder + os.sep)


def _escape_attempts(server, name, codes):
    """Every call that takes a model name, with ``name``, over gRPC and REST; answers counted."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        predict = predict_pb2.PredictRequest()
        predict.model_spec.name = name
        metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata.model_spec.name = name
        status = get_model_status_pb2.GetModelStatusRequest()
        status.model_spec.name = name
        for call in (lambda: stub.Predict(predict, timeout=30), lambda: stub.GetModelMetadata(metadata, timeout=30), lambda: models.GetModelStatus(status, timeout=30)):
            codes[_grpc_code(call).name] += 1
    for quoted in {urllib.parse.quote(name, safe=""), urllib.parse.quote(name, safe="/.%")}:
        for method, suffix in (("POST", ":predict"), ("GET", ""), ("GET", "/metadata")):
            codes[f"HTTP {http_exchange(server.rest_api_port, method, f'/v1/models/{quoted}{suffix}', b'{}')[0]}"] += 1


LONG_NAME = "r" * 20_000
ESCAPES = ["../outside", "..%2Foutside", "../outside/1", "..", ".", "", "/", "/etc", "/etc/passwd", "~root", "ranker/1", "ranker/../outside",
           "ranker\x00../outside", "ranker\x00", "\\..\\outside", "file:///etc/passwd", LONG_NAME]
RANDOM_NAMES = 60
GRPC_VERSIONS = [-1, -(2**63), 0, 2, 2**63 - 1]
REST_VERSIONS = ["2", "-1", "9" * 20, "9" * 5000, "1/../../outside/1", "%2e%2e"]


def test_requests_never_leave_model_base_path(models, reliability):
    names = ESCAPES + [str(models.outside), str(models.outside / "1")]

    @settings(max_examples=RANDOM_NAMES)
    @given(st.one_of(st.text(max_size=30), st.builds(lambda a, b: f"{a}/../{b}", st.text(max_size=8), st.text(max_size=8))))
    def draw(name):  # drawn before anything is recorded: hypothesis reads files of its own
        names.append(name)

    draw()
    codes = collections.Counter()
    with serve(models.base) as server:
        _escape_attempts(server, MODEL + "x", collections.Counter())  # warm up: lazy imports read files too
        with FileCalls() as recorded:
            for name in names:
                _escape_attempts(server, name, codes)
            for version in GRPC_VERSIONS:
                codes[_grpc_code(lambda: _predict(server.port, models.features, version=version)).name] += 1
            for version in REST_VERSIONS:
                path = f"/v1/models/{MODEL}/versions/{version}:predict"
                codes[f"HTTP {http_exchange(server.rest_api_port, 'POST', path, json_body(models.features, rows=False))[0]}"] += 1
        np.testing.assert_allclose(_predict(server.port, models.features)["score"], models.expected, atol=1e-6)
    escaped = recorded.outside(models.base)
    assert not escaped, escaped[:5]
    assert set(codes) <= {"NOT_FOUND", "INVALID_ARGUMENT", "HTTP 404", "HTTP 400"}, codes
    listed = sum(event in ("os.listdir", "os.scandir") for event, _ in recorded.calls)
    reliability.record(
        "Security defaults",
        f"{sum(codes.values())} requests naming {len(names)} models ('../outside', '..%2Foutside', the absolute path of a "
        f"SavedModel beside the base, '/etc/passwd', names with NUL, a {len(LONG_NAME):,}-character one and "
        f"{len(names) - len(ESCAPES) - 2} random ones) in Predict, GetModelMetadata, GetModelStatus and REST "
        f"predict/status/metadata (escaped and raw), and versions {GRPC_VERSIONS} (gRPC), "
        f"{[f'{len(v)} digits' if v.isdigit() and len(v) > 9 else v for v in REST_VERSIONS]} (REST)",
        f"answers: {counts(codes)}; file-system calls of every thread meanwhile (audit hook): {len(recorded.calls)}, "
        f"{listed} of them listings, all inside model_base_path; request names are compared, never joined into a path",
    )


ODD_FOLDERS = ["2 ", " 3", "+4", "-5", "6.0", "1e3", "0x10", ".10", "11abc", "\u00b2", "latest", ".99"]


def test_version_folders_are_numeric_names_directly_under_the_base(models, tmp_path, monkeypatch, reliability):
    features, outside_scores = models.features, models.outside_scores
    base = tmp_path / "base" / MODEL
    shutil.copytree(models.base / "1", base / "1")
    for name in ODD_FOLDERS:
        shutil.copytree(models.outside / "1", base / name)
    (base / "7").symlink_to(models.outside / "1", target_is_directory=True)
    (base / "8").symlink_to(tmp_path / "missing")
    (base / "9").write_bytes(b"not a folder")
    with FileCalls() as recorded:
        with serve(base, poll_seconds=0) as server:
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                status = get_model_status_pb2.GetModelStatusRequest()
                status.model_spec.name = MODEL
                statuses = [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
                            for s in model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status, timeout=30).model_version_status]
            served = _predict(server.port, features)["score"]
        listings = [path for event, path in recorded.calls if event in ("os.listdir", "os.scandir")]
    assert statuses == [(7, "AVAILABLE")]
    assert os.path.abspath(base) in listings and all(p == os.path.abspath(base) or _inside(p, os.path.abspath(base / "7")) for p in listings), listings
    np.testing.assert_allclose(served, outside_scores, atol=1e-6)
    served_cli = _serve_cli(
        monkeypatch,
        ["--model_name", "../../etc", "--model_base_path", f"{base}/../{MODEL}", "--port", "0", "--rest_api_port", "0"],
        lambda server: _cli_escape(server, features, base),
    )
    np.testing.assert_allclose(served_cli["scores"], outside_scores, atol=1e-6)
    assert served_cli["outside"] == [] and served_cli["codes"] == {"NOT_FOUND": 1}
    reliability.record(
        "Security defaults",
        f"model_base_path holding version 1, folders named {ODD_FOLDERS} (each a SavedModel), 7 a symlink to a "
        f"SavedModel outside, 8 a dangling symlink, 9 a file; then `tf-mtl serve --model_name ../../etc --model_base_path "
        f"<base>/../{MODEL}`",
        f"versions seen: {statuses} (the odd names ignored, 8 and 9 not folders); the symlinked 7 is served, as TF Serving "
        f"follows symlinks: whoever can write model_base_path decides what runs; {len(listings)} listings, of "
        f"model_base_path and, while loading it, of version 7's folder; the CLI serves the model under the name "
        f"'../../etc' (name 'ranker' answered {next(iter(served_cli['codes']))}) and lists only model_base_path",
    )


def _cli_escape(server, features, base):
    with FileCalls() as recorded:
        scores = _predict(server.port, features, name="../../etc")["score"]
        codes = collections.Counter([_grpc_code(lambda: _predict(server.port, features, name=MODEL)).name])
        server.manager.poll()
    return {"scores": scores, "codes": dict(codes), "outside": recorded.outside(base)}


# ---------------------------------------------------------------------------------------------
# Shell commands


SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"), ("asyncio", "create_subprocess_shell")}


def _shell_uses(tree):
    """``(line, what)`` of every call that runs a shell: os.system/popen, subprocess.getoutput,
    shell=True (any value but a literal False), and the same names imported bare."""
    imported = {alias.asname or alias.name: (node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if (node.module, alias.name) in SHELL_CALLS}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (func.value.id, func.attr) in SHELL_CALLS:
            found.append((node.lineno, f"{func.value.id}.{func.attr}"))
        elif isinstance(func, ast.Name) and func.id in imported:
            found.append((node.lineno, ".".join(imported[func.id])))
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                found.append((node.lineno, "shell=True"))
    return found


def _subprocess_calls(tree):
    return sum(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"
        for node in ast.walk(tree)
    )


def test_no_shell_commands(reliability):
    assert _shell_uses(ast.parse("import os\nfrom subprocess import getoutput as g\nos.system('x')\ng('y')\nsubprocess.run('z', shell=flag)\n")) == [
        (3, "os.system"), (4, "subprocess.getoutput"), (5, "shell=True")]
    files = sorted(path for folder in ("tf_mtl", "pipelines", "benchmarks") for path in (REPO / folder).rglob("*.py"))
    found, lines, argv_calls = {}, 0, 0
    for path in files:
        source = path.read_text()
        tree = ast.parse(source, str(path))
        lines += source.count("\n")
        argv_calls += _subprocess_calls(tree)
        for line, what in _shell_uses(tree):
            found[f"{path.relative_to(REPO)}:{line}"] = what
    assert files and not found, found
    folders = collections.Counter(path.relative_to(REPO).parts[0] for path in files)
    reliability.record(
        "Security defaults",
        f"An AST scan of {len(files)} files ({', '.join(f'{n} in {f}/' for f, n in sorted(folders.items()))}; {lines} lines) for "
        f"os.system, os.popen, subprocess.getoutput/getstatusoutput, asyncio.create_subprocess_shell and shell= anything but False",
        f"none found; the {argv_calls} subprocess calls (benchmarks/) pass argument lists, no shell",
    )


# ---------------------------------------------------------------------------------------------
# Dependencies

# The CPU lock installs TensorFlow as tensorflow-cpu (see the comment in setup.cfg).
LOCKED_AS = {"tensorflow": "tensorflow-cpu"}
LOWER, UPPER = {">=", ">", "==", "~=", "==="}, {"<", "<=", "==", "~=", "==="}


def _requirements(setup_cfg):
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    groups = {"install_requires": config["options"]["install_requires"]}
    groups.update({f"extras[{name}]": value for name, value in config["options.extras_require"].items()})
    return {group: [Requirement(line) for line in text.strip().splitlines() if line.strip() and not line.strip().startswith("#")] for group, text in groups.items()}


def _lock(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_dependencies_have_known_good_ranges_and_the_lock_sits_inside(reliability):
    groups = _requirements(REPO / "setup.cfg")
    pins = _lock(REPO / "requirements-cpu.lock")
    unbounded, outside = [], []
    for group, requirements in groups.items():
        for requirement in requirements:
            operators = {spec.operator for spec in requirement.specifier}
            if not (operators & LOWER and operators & UPPER):
                unbounded.append(f"{group}: {requirement}")
            pin = pins.get(canonicalize_name(LOCKED_AS.get(requirement.name, requirement.name)))
            if pin is None or not requirement.specifier.contains(pin, prereleases=True):
                outside.append(f"{group}: {requirement} locked at {pin}")
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    python = config["options"]["python_requires"]
    assert not unbounded, unbounded
    assert not outside, outside
    assert Requirement(f"python{python}").specifier.contains(".".join(map(str, sys.version_info[:3])))
    total = sum(len(r) for r in groups.values())
    reliability.record(
        "Security defaults",
        f"setup.cfg's {total} requirements ({len(groups['install_requires'])} install_requires, "
        f"{total - len(groups['install_requires'])} in {len(groups) - 1} extras) and python_requires '{python}'; "
        f"requirements-cpu.lock's {len(pins)} pins",
        f"every requirement has a lower and an upper bound; every lock line is ==; each requirement's locked version lies "
        f"inside its range ({len(LOCKED_AS)} by its CPU name: {', '.join(f'{a} as {b}' for a, b in LOCKED_AS.items())}); "
        f"this Python {sys.version_info.major}.{sys.version_info.minor} inside python_requires",
    )
