"""Training scripts run in processes of their own, for the tests that kill them: started with the
repository importable and this session's Keras mode, stopped at a pause point (see
``_training_pauses``), killed with SIGKILL, or waited for; and free loopback ports for the
servers such processes run (cluster workers, ``tf-mtl serve`` in ``test_load``)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ._training_pauses import MARKER

ROOT = Path(__file__).resolve().parents[2]


def start(script, *args, env=None):
    """Runs ``python script *args`` with the repository on ``PYTHONPATH``; stdout and stderr are
    read together from ``process.stdout``."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process, what, timeout=300):
    """Waits for ``process`` to end well and returns its output."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{what} still ran after {timeout} s:\n{output[-4000:]}")
    assert process.returncode == 0, f"{what} failed:\n{output[-4000:]}"
    return output


def wait_for_pause(process, what, timeout=240):
    """Reads ``process``'s output until it says it paused; returns that output."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith(MARKER):
                return "".join(lines)
    finally:
        timer.cancel()
    process.wait()
    pytest.fail(f"{what} ended (exit code {process.returncode}) without reaching its pause point:\n{''.join(lines)[-4000:]}")


def kill(process):
    """SIGKILL, as ``kill -9`` sends it; returns the time it was sent (``time.monotonic``)."""
    sent = time.monotonic()
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return sent


def free_port():
    """A TCP port on 127.0.0.1 free now (the OS picks it; a server started soon after can bind it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_envs(workers):
    """The ``TF_CONFIG`` environment of each worker of a cluster on 127.0.0.1."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(workers)]}
    return [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in range(workers)]
