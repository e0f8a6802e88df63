"""``tf-mtl serve`` in a subprocess: answers gRPC and REST, stops cleanly on Ctrl-C."""

import json
import signal
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
import tensorflow as tf

from tests.reliability._training_processes import free_port
from tf_mtl.cli import main
from tf_mtl.serving import Client, ModelServer, configure_threads
from tf_mtl.serving.server import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES, is_loopback

from .conftest import MODEL


def test_serve_command(version_1, features, reference):
    port, rest_port = free_port(), free_port()
    command = [sys.executable, "-m", "tf_mtl.cli", "serve", "--model_name", MODEL, "--model_base_path", str(version_1.parent),
               "--port", str(port), "--rest_api_port", str(rest_port), "--max_batch_size", "16", "--poll_seconds", "0.5",
               "--tensorflow_intra_op_parallelism", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with Client("127.0.0.1", port, MODEL) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    status = client.status()
                    break
                except grpc.RpcError:
                    assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
                    time.sleep(0.2)
            assert status[0]["state"] == "AVAILABLE"
            assert abs(client.predict(features)["score"] - reference("serving_default", features)["score"]).max() < 1e-6
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}", timeout=30) as response:
            assert json.load(response)["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "version 1 is serving" in output


def test_serve_rejects_bad_arguments(version_1):
    with pytest.raises(ValueError, match="max_batch_size must be >= 1. Received: max_batch_size=-1"):
        main(["serve", "--model_name", MODEL, "--model_base_path", str(version_1.parent), "--port", "0", "--max_batch_size", "-1"])


@pytest.mark.parametrize(
    "flags, caps",
    [
        ([], (DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES)),
        (["--max_batch_size", "0"], (None, DEFAULT_MAX_REQUEST_BYTES)),
        (["--max_batch_size", "16", "--max_request_bytes", "1000"], (16, 1000)),
    ],
)
def test_serve_caps_default_to_the_servers_and_zero_lifts_the_batch_cap(version_1, monkeypatch, flags, caps):
    seen = []
    monkeypatch.setattr(ModelServer, "wait", lambda server: seen.append((server.host, server.max_batch_size, server.max_request_bytes)))
    assert main(["serve", "--model_name", MODEL, "--model_base_path", str(version_1.parent), "--port", "0", "--rest_api_port", "0", *flags]) == 0
    assert seen == [("127.0.0.1", *caps)]


def test_serve_help_names_the_servers_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {DEFAULT_MAX_BATCH_SIZE} rows)" in text and f"(default {DEFAULT_MAX_REQUEST_BYTES >> 20} MiB)" in text


@pytest.mark.parametrize("host, expected", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("10.1.2.3", False), ("example.com", False)])
def test_only_loopback_hosts_bind_without_warning(host, expected):
    assert is_loopback(host) is expected


def test_thread_pools_are_checked_and_refused_once_tensorflow_runs():
    with pytest.raises(ValueError, match="intra_op must be an integer >= 0. Received: intra_op=-1"):
        configure_threads(intra_op=-1)
    tf.constant(1.0) + 1.0  # TensorFlow has run: its pools are fixed
    with pytest.raises(RuntimeError, match="TensorFlow's thread pools are set before it runs anything"):
        configure_threads(intra_op=1)
