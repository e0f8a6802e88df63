"""Faults around versions: export and push killed with SIGKILL while writing, corrupt and
truncated versions under ``model_base_path``, a version copied in file by file."""

import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from pipelines.pusher import push
from tf_mtl.export import versions
from tf_mtl.features import tensor_specs
from tf_mtl.serving import Client, ModelServer
from tf_mtl.serving.manager import ModelManager, VersionStatus

from ._load_versions import answer, batches, predict_request, reweighted, same_scores
from ._serving import MODEL, data, export_version, saved_model_outputs

pytestmark = pytest.mark.reliability
REPO = pathlib.Path(__file__).parents[2]

# Runs an export or a push that stops at ``point`` (tells the parent through the file ``ready``,
# then sleeps until the parent's SIGKILL), so every kill lands at a known place.
KILLED_WRITER = r"""
import os, pathlib, shutil, sys, time

mode, point, base, ready, source = sys.argv[1:]


def stop_here():
    pathlib.Path(ready).touch()
    time.sleep(600)


def write_half_and_stop(path, data):
    with open(path, "wb") as file:
        file.write(data[: len(data) // 2])
    stop_here()


replace = os.replace
if point == "before the rename":
    def stop_before_renaming_a_partial(src, dst):
        if ".partial" in os.path.basename(src):
            stop_here()
        replace(src, dst)
    os.replace = stop_before_renaming_a_partial
if mode == "export":
    from tensorflow.python.lib.io import file_io
    from tf_mtl.export import saved_model
    from tests.reliability._serving import export_version

    write_string = file_io.atomic_write_string_to_file
    if point == "writing saved_model.pb":
        def atomic_write_string_to_file(path, contents, overwrite=True):
            if not str(path).endswith("saved_model.pb"):
                return write_string(path, contents, overwrite)
            write_half_and_stop(path, contents)
        file_io.atomic_write_string_to_file = atomic_write_string_to_file
    write_warmup = saved_model.write_warmup
    if point == "writing the warmup requests":
        def write_half_of_the_warmup(path, model_name, inputs):
            write_warmup(path, model_name, inputs)
            write_half_and_stop(path, pathlib.Path(path).read_bytes())
        saved_model.write_warmup = write_half_of_the_warmup
    export_version(base, None)
else:
    from pipelines.pusher import push

    copyfile = shutil.copyfile
    if point == "copying the variables":
        def copy_half_of_the_variables(src, dst, **kwargs):
            if "variables.data" not in os.path.basename(src):
                return copyfile(src, dst, **kwargs)
            write_half_and_stop(dst, pathlib.Path(src).read_bytes())
        shutil.copyfile = copy_half_of_the_variables
    push(source, base)
"""

KILLS = [
    ("export", "writing saved_model.pb"),
    ("export", "writing the warmup requests"),
    ("export", "before the rename"),
    ("push", "copying the variables"),
]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Version 1 and a version with other weights (and so other scores), outside any base."""
    root = tmp_path_factory.mktemp("good")
    export_version(root / "first", 1)
    return {"first": str(root / "first" / "1"), "other": reweighted(root / "first" / "1", root / "other", 1.5)}


def _wait_for(condition, seconds=60.0, what="condition"):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {seconds} s"
        time.sleep(0.02)


def _wait_for_version(manager, version):
    _wait_for(lambda: manager.status(MODEL)[0] == VersionStatus(version, "AVAILABLE"), what=f"version {version} serving")


def test_export_and_push_killed_mid_write_leave_no_version_and_the_next_run_succeeds(good, tmp_path, reliability):
    # The writers share one model folder (pipelines running at once), which a manager polls all along.
    base = tmp_path / MODEL
    shutil.copytree(good["first"], base / "1")
    manager = ModelManager(MODEL, base, poll_seconds=0.05)
    manager.start()
    children = []
    try:
        for i, (mode, point) in enumerate(KILLS):
            ready, log = tmp_path / f"ready{i}", tmp_path / f"log{i}"
            command = [sys.executable, "-c", KILLED_WRITER, mode, point, str(base), str(ready), str(good["other"])]
            with open(log, "w") as output:
                children.append((subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO), ready, log))
        for child, ready, log in children:
            _wait_for(lambda: ready.exists() or child.poll() is not None, 300, "the writer reaching its point")
            child.send_signal(signal.SIGKILL)
            child.wait()
            assert ready.exists() and child.returncode == -signal.SIGKILL, log.read_text()
        hidden = sorted(set(os.listdir(base)) - {"1"})
        # Each kill left its half-written version behind, hidden: nothing but version 1 was ever seen.
        assert len(hidden) == len(KILLS) and all(name.startswith(".2.") and ".partial" in name for name in hidden), hidden
        assert versions(base) == [1]
        manager.poll()
        assert manager.status(MODEL) == [VersionStatus(1, "AVAILABLE")]

        # The next runs take the next versions; the first removes the dead writers' partials.
        export_version(base, None, seed=1)
        assert sorted(os.listdir(base)) == ["1", "2"]
        _wait_for_version(manager, 2)
        pushed = push(good["other"], base)
        assert pushed["path"] == str(base / "3") and sorted(os.listdir(base)) == ["1", "2", "3"]
        _wait_for_version(manager, 3)
        seen = manager.status(MODEL)
        assert seen == [VersionStatus(3, "AVAILABLE"), VersionStatus(2, "END"), VersionStatus(1, "END")]
    finally:
        manager.stop()
        for child, _, _ in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    reliability.record(
        "Faults",
        f"SIGKILL of {len(KILLS)} concurrent writers into one model folder, each at a fixed point: "
        + "; ".join(f"{mode} {point}" for mode, point in KILLS),
        f"{len(hidden)} hidden partial folders left by the kills, 0 visible: versions() and a ModelManager polling "
        f"every 50 ms throughout saw only version 1 and served it; the next export took version "
        f"{versions(base)[1]} and removed the {len(hidden)} dead writers' partials, the next push took version "
        f"{pushed['version']}; the manager saw exactly versions {sorted(s.version for s in seen)}, each loaded without error, and served each new one",
    )


VARIABLES_DATA = pathlib.Path("variables", "variables.data-00000-of-00001")
VARIABLES_INDEX = pathlib.Path("variables", "variables.index")


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(folder):
    shutil.rmtree(folder)
    folder.mkdir()


def _garbage_variables(folder):
    path = folder / VARIABLES_DATA
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _only_saved_model_pb(folder):
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name != "saved_model.pb":
            entry.unlink()


def _failing_signature(folder):
    """Replaces the SavedModel by one with the same inputs whose every run fails, keeping the
    warmup requests: it loads, then fails its warmup."""
    specs = tensor_specs(data().features)

    @tf.function(input_signature=[specs])
    def serve(inputs):
        rows = tf.shape(inputs[next(iter(specs))])[0]
        tf.debugging.assert_less(rows, 0, message="this signature fails every request")
        return {"score": tf.zeros([rows])}

    failing = folder.with_name(folder.name + "-failing")
    tf.saved_model.save(tf.Module(), str(failing), signatures={"serving_default": serve.get_concrete_function()})
    shutil.copytree(folder / "assets.extra", failing / "assets.extra")
    shutil.rmtree(folder)
    failing.rename(folder)


# Each turns a copy of a good version (the folder) into a corrupt one, which the status then
# reports with this error code.
CORRUPT = {
    "truncated saved_model.pb": ("DATA_LOSS", lambda folder: _truncate(folder / "saved_model.pb")),
    "empty folder": ("NOT_FOUND", _empty),
    "garbage variables data (same size)": ("UNKNOWN", _garbage_variables),
    "truncated variables data": ("UNKNOWN", lambda folder: _truncate(folder / VARIABLES_DATA)),
    "missing variables index": ("NOT_FOUND", lambda folder: (folder / VARIABLES_INDEX).unlink()),
    "only saved_model.pb": ("NOT_FOUND", _only_saved_model_pb),
    "a signature that fails at warmup": ("INVALID_ARGUMENT", _failing_signature),
}


def _errors(caplog):
    return sum(record.levelno == logging.ERROR for record in caplog.records)


def _rest_status(server, version):
    url = f"http://127.0.0.1:{server.rest_api_port}/v1/models/{MODEL}/versions/{version}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)["model_version_status"]


def _status_of(client, version):
    return next((s for s in client.status() if s["version"] == version), None)


def test_corrupt_versions_are_reported_and_the_previous_version_keeps_serving(good, tmp_path, caplog, reliability):
    base = tmp_path / MODEL
    shutil.copytree(good["first"], base / "1")
    batch = batches(data(), 1, 8)[0]
    newest = len(CORRUPT) + 2
    expected = {1: saved_model_outputs(good["first"], batch), newest: saved_model_outputs(good["other"], batch)}
    assert not np.allclose(expected[1]["score"], expected[newest]["score"])
    request = predict_request(batch)
    caplog.set_level(logging.ERROR, logger="tf_mtl.serving.manager")
    codes, answered = {}, 0
    with (
        ModelServer(MODEL, base, port=0, rest_api_port=0, poll_seconds=0.05) as server,
        Client("127.0.0.1", server.port, MODEL) as client,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for version, (kind, (code, corrupt)) in enumerate(CORRUPT.items(), start=2):
            staging = tmp_path / f"staging{version}"
            shutil.copytree(good["first"], staging)
            corrupt(staging)
            os.rename(staging, base / str(version))  # whole, at once: the corruption is the only fault
            _wait_for(lambda: (_status_of(client, version) or {}).get("state") == "END", what=f"{kind} reported")
            status = _status_of(client, version)
            folder = base / str(version)
            assert status["error_code"] == code, (kind, status)
            assert f"Failed to load {folder}" in status["error_message"] or f"Failed to warm up {folder}" in status["error_message"], status
            rest = _rest_status(server, version)
            assert rest == [{"version": str(version), "state": "END", "status": {"error_code": status["error_code"], "error_message": status["error_message"]}}]
            assert any(r.levelno == logging.ERROR and f"version {version}:" in r.getMessage() for r in caplog.records), kind
            assert _status_of(client, 1)["state"] == "AVAILABLE"
            for _ in range(3):
                served, outputs = answer(stub.Predict(request, timeout=30))
                assert served == 1 and same_scores(outputs, expected[1]), kind
                answered += 1
            codes[kind] = status["error_code"]
        # A good newer version is picked up past the failed ones.
        shutil.copytree(good["other"], tmp_path / "staging-good")
        os.rename(tmp_path / "staging-good", base / str(newest))
        _wait_for(lambda: (_status_of(client, newest) or {}).get("state") == "AVAILABLE", what="the good version serving")
        served, outputs = answer(stub.Predict(request, timeout=30))
        assert served == newest and same_scores(outputs, expected[newest])
        statuses = client.status()
        assert [s["version"] for s in statuses] == list(range(newest, 0, -1))
        assert all(s["state"] == "END" and s["error_code"] != "OK" for s in statuses[1:-1])
    logged = _errors(caplog)
    assert logged == len(CORRUPT), "each corrupt version is logged once, and not loaded again unchanged"
    reliability.record(
        "Faults",
        f"{len(CORRUPT)} corrupt versions dropped whole into model_base_path, each newer than the one serving: " + "; ".join(CORRUPT),
        f"{logged} errors logged; GetModelStatus over gRPC and REST reported each END with a message naming its folder and "
        f"codes {', '.join(f'{k}: {v}' for k, v in codes.items())}; {answered} requests in between were all answered by "
        f"version 1 with its exact scores; then a good version {newest} was served with its own scores",
    )


def test_a_version_copied_in_file_by_file_is_served_once_complete(good, tmp_path, caplog, reliability):
    base = tmp_path / MODEL
    shutil.copytree(good["first"], base / "1")
    source, target = pathlib.Path(good["other"]), base / "2"
    pb = pathlib.Path("saved_model.pb")
    small = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file() and p.relative_to(source) not in (pb, VARIABLES_INDEX, VARIABLES_DATA))
    # The model becomes loadable with the last byte of its variables and not before.
    steps = [("mkdir", None), *(("copy", p) for p in small), ("half", pb), ("copy", pb), ("copy", VARIABLES_INDEX), ("half", VARIABLES_DATA), ("copy", VARIABLES_DATA)]
    batch = batches(data(), 1, 8)[0]
    expected = {1: saved_model_outputs(good["first"], batch), 2: saved_model_outputs(good["other"], batch)}
    request = predict_request(batch)
    caplog.set_level(logging.INFO, logger="tf_mtl.serving.manager")
    codes = set()
    with ModelServer(MODEL, base, port=0, rest_api_port=None, poll_seconds=0) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for action, relative in steps:
            if action == "mkdir":
                target.mkdir()
            else:
                content = (source / relative).read_bytes()
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                (target / relative).write_bytes(content if action == "copy" else content[: len(content) // 2])
            errors = _errors(caplog)
            server.manager.poll()
            status = server.manager.status(MODEL, 2)[0]
            if status.state == "AVAILABLE":
                break
            assert status.state == "END" and status.error_code != "OK" and _errors(caplog) == errors + 1, (action, relative, status)
            codes.add(status.error_code)
            # Polled again without a change: not loaded again, nothing logged.
            server.manager.poll()
            assert server.manager.status(MODEL, 2)[0] == status and _errors(caplog) == errors + 1
            served, outputs = answer(stub.Predict(request, timeout=30))
            assert served == 1 and same_scores(outputs, expected[1])
        assert (action, relative) == steps[-1] and status.state == "AVAILABLE"
        served, outputs = answer(stub.Predict(request, timeout=30))
        assert served == 2 and same_scores(outputs, expected[2])
    retries = sum("changed since it failed to load" in r.getMessage() for r in caplog.records)
    assert retries == len(steps) - 1
    assert codes == {"DATA_LOSS", "NOT_FOUND", "OUT_OF_RANGE", "UNKNOWN"}, codes
    reliability.record(
        "Faults",
        f"A version copied into model_base_path file by file ({len(steps)} steps: the folder, {len(small)} small files, "
        "saved_model.pb in halves, the variables index, the variables data in halves), the server polled after each step "
        "and again without a change",
        f"{_errors(caplog)} half-written states failed to load, each logged once and reported END ({', '.join(sorted(codes))}); "
        f"each was loaded again only once the folder changed ({retries} retries, none for an unchanged folder); version 1 "
        "answered meanwhile with its exact scores; the first poll after the last byte served version 2 with its scores",
    )
