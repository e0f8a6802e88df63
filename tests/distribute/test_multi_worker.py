"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 train as one device does."""

import pathlib

import numpy as np
import pytest

from tests.reliability._training_processes import cluster_envs, finish, start

WORKER = pathlib.Path(__file__).with_name("train_worker.py")


@pytest.mark.parametrize("method", ["uwl", pytest.param("pareto", marks=pytest.mark.large)])
def test_two_workers_match_one_device(tmp_path, method):
    single = start(WORKER, "single", tmp_path / "single", method)
    workers = [start(WORKER, "worker", tmp_path / "cluster", method, env=env) for env in cluster_envs(2)]
    for process, what in zip([single, *workers], ["the one-device run", "worker 0", "worker 1"]):
        finish(process, what)

    expected = np.load(tmp_path / "single" / "final.npz")
    for path in (tmp_path / "cluster" / "final.npz", tmp_path / "cluster" / "worker_1" / "final.npz"):
        got = np.load(path)
        assert sorted(got.files) == sorted(expected.files) and "o0" in got.files
        for key in expected.files:
            np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=f"{path}: {key}")
    # The chief writes the run's files; the other worker keeps its own checkpoints apart.
    assert (tmp_path / "cluster" / "checkpoints" / "checkpoint").exists()
    assert (tmp_path / "cluster" / "worker_1" / "checkpoints" / "checkpoint").exists()
