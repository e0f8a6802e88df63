"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 train as one device does."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("train_worker.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args, env=None, timeout=300):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen([sys.executable, str(WORKER), *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process, timeout=300):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"worker timed out:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]


@pytest.mark.parametrize("method", ["uwl", pytest.param("pareto", marks=pytest.mark.large)])
def test_two_workers_match_one_device(tmp_path, method):
    single = _run(["single", str(tmp_path / "single"), method])
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    workers = [
        _run(["worker", str(tmp_path / "cluster"), method], {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)
    ]
    for process in [single, *workers]:
        _finish(process)

    expected = np.load(tmp_path / "single" / "final.npz")
    for path in (tmp_path / "cluster" / "final.npz", tmp_path / "cluster" / "worker_1" / "final.npz"):
        got = np.load(path)
        for key in expected.files:
            np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=f"{path}: {key}")
    # The chief writes the run's files; the other worker keeps its own checkpoints apart.
    assert (tmp_path / "cluster" / "checkpoints" / "checkpoint").exists()
    assert (tmp_path / "cluster" / "worker_1" / "checkpoints" / "checkpoint").exists()
