"""Version policy: a new version is picked up by polling and replaces the old one (TF Serving's
default, latest version only), and the old one's memory is freed; a version that fails to load
is reported, and loaded again once its folder changes; only folders named by a plain int64 are
versions. Corrupt versions of every kind, and hot reloads under load, are in
tests/reliability (test_export_faults.py, test_load.py)."""

import shutil
import time
import weakref

import grpc
import numpy as np
import pytest

from tf_mtl.export import export_saved_model
from tf_mtl.serving import Client, ModelServer
from tf_mtl.serving.manager import ModelManager, VersionStatus

from .conftest import MODEL


def _wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds} s")


@pytest.fixture()
def base_dir(version_1, tmp_path):
    base = tmp_path / MODEL
    shutil.copytree(version_1, base / "1")
    (base / ".2-partial").mkdir()
    (base / "latest").mkdir()
    return base


def test_new_version_replaces_old(model, base_dir, features, reference):
    expected = reference("serving_default", features)["score"]
    with ModelServer(MODEL, base_dir, port=0, rest_api_port=None, poll_seconds=0.1) as server, Client("127.0.0.1", server.port, MODEL) as client:
        assert [s["version"] for s in client.status()] == [1]
        np.testing.assert_allclose(client.predict(features, version=1)["score"], expected, atol=1e-6)

        export_saved_model(model, base_dir, version=2)
        _wait_for(lambda: client.status()[0] == {"version": 2, "state": "AVAILABLE", "error_code": "OK", "error_message": ""})
        assert client.status(version=1) == [{"version": 1, "state": "END", "error_code": "OK", "error_message": ""}]
        np.testing.assert_allclose(client.predict(features)["score"], expected, atol=1e-6)
        assert client.predict(features, version=2).keys() == {"ctr", "cvr", "score"}
        with pytest.raises(grpc.RpcError) as error:
            client.predict(features, version=1)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_failed_version_is_loaded_again_only_once_its_folder_changes(base_dir, version_1, features, caplog):
    (base_dir / "5").mkdir()
    with ModelServer(MODEL, base_dir, port=0, rest_api_port=None, poll_seconds=0) as server, Client("127.0.0.1", server.port, MODEL) as client:
        assert [(s["version"], s["state"], s["error_code"]) for s in client.status()] == [(5, "END", "NOT_FOUND"), (1, "AVAILABLE", "OK")]
        assert client.status(version=5)[0]["error_message"].startswith(f"Failed to load {base_dir / '5'}: FileNotFoundError")
        assert client.predict(features)["score"].shape == (8,)
        failures = [r for r in caplog.records if r.levelname == "ERROR"]
        assert [r.getMessage() for r in failures] == [f"Model {MODEL!r} version 5: {client.status(version=5)[0]['error_message']}"]
        server.manager.poll()
        assert [r for r in caplog.records if r.levelname == "ERROR"] == failures
        shutil.copytree(version_1, base_dir / "5", dirs_exist_ok=True)
        server.manager.poll()
        assert [(s["version"], s["state"], s["error_code"]) for s in client.status()] == [(5, "AVAILABLE", "OK"), (1, "END", "OK")]


def test_an_unloaded_version_is_freed_at_the_next_poll(model, base_dir):
    manager = ModelManager(MODEL, base_dir, poll_seconds=0)
    manager.start()
    # A loaded SavedModel's function graphs sit in reference cycles: only the cyclic collector frees them.
    old = weakref.ref(manager.servable(MODEL).signatures["serving_default"].graph)
    export_saved_model(model, base_dir, version=2)
    manager.poll()
    assert manager.status(MODEL) == [VersionStatus(2, "AVAILABLE"), VersionStatus(1, "END")]
    manager.poll()
    assert old() is None


def test_only_plain_int64_folder_names_are_versions(tmp_path):
    # Each other name would load another folder than <base>/str(version), or not fit the gRPC API's int64.
    for name in ["1", "\u0663", "8\n", "0005", "9" * 25, str(2**63)]:
        (tmp_path / name).mkdir()
    assert ModelManager(MODEL, tmp_path, poll_seconds=0).versions_on_disk() == [1]


def test_polling_goes_on_after_the_base_folder_could_not_be_listed(base_dir, monkeypatch, caplog):
    manager = ModelManager(MODEL, base_dir, poll_seconds=0.01)
    listings = []

    def flaky():
        listings.append(None)
        if len(listings) == 2:
            raise PermissionError(13, "Permission denied", str(base_dir))
        return [1]

    manager.start()
    monkeypatch.setattr(manager, "versions_on_disk", flaky)
    try:
        _wait_for(lambda: len(listings) >= 4)
    finally:
        manager.stop()
    assert manager.servable(MODEL).version == 1
    assert any("cannot list" in record.getMessage() for record in caplog.records)
