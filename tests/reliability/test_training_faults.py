"""Training faults: a run killed with SIGKILL (mid-epoch, mid-checkpoint-write) resumes to the
weights of an uninterrupted run; a worker of a MultiWorkerMirroredStrategy cluster that dies
stops the others quickly with an error naming it, and the restarted cluster resumes."""

import json
import math
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ._training_pauses import STAGES
from ._training_processes import cluster_envs, finish, kill, start, wait_for_pause
from ._training_run import EPOCHS, STEPS

pytestmark = pytest.mark.reliability

HERE = Path(__file__).resolve().parent
RUN = HERE / "_training_run.py"
WORKER = HERE.parent / "distribute" / "train_worker.py"
SEED = 1


def kill_plan(seed):
    """The points at which to kill the run, drawn with ``seed``, in the order the run reaches
    them: a training step, and each stage of a checkpoint write at a drawn epoch."""
    rng = random.Random(seed)
    step = f"step:{rng.randint(1, EPOCHS * STEPS - 1)}"
    saves = [f"save:{rng.randint(1, EPOCHS)}:{stage}" for stage in STAGES]
    return sorted([step] + saves, key=_position)


def _position(point):
    kind, *where = point.split(":")
    if kind == "step":
        return (math.ceil(int(where[0]) / STEPS), 0, int(where[0]))
    return (int(where[0]), 1 + list(STAGES).index(where[1]), 0)


def epoch_kept(point):
    """The epoch of the last checkpoint a kill at ``point`` must leave: every stage comes before
    the state file names the new checkpoint, so it is the epoch before the one running."""
    return _position(point)[0] - 1


def read_checkpoint(directory):
    """``(epoch, tensors)`` of the latest checkpoint under ``directory``, every tensor read back."""
    latest = tf.train.latest_checkpoint(str(directory))
    if latest is None:
        return 0, 0
    reader = tf.train.load_checkpoint(latest)
    names = list(reader.get_variable_to_shape_map())
    for name in names:
        reader.get_tensor(name)
    return int(latest.rsplit("-", 1)[1]), len(names)


def resumed_epoch(output):
    """The epoch a run's output says it resumed from (0: it started from the beginning)."""
    lines = [line for line in output.splitlines() if line.startswith("Resumed from ")]
    assert len(lines) <= 1, lines
    return int(lines[0].rsplit("(epoch ", 1)[1].rstrip(").")) if lines else 0


def assert_same_arrays(path, expected_path):
    """Asserts that two ``final.npz`` files hold the same arrays, bit for bit; returns how many."""
    with np.load(path) as got, np.load(expected_path) as expected:
        assert sorted(got.files) == sorted(expected.files)
        for name in expected.files:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{path}: {name}")
        return len(expected.files)


@pytest.fixture
def launch():
    """``start`` for one test: the processes it leaves running (a failed test) are killed."""
    started = []

    def launch(*args, **kwargs):
        started.append(start(*args, **kwargs))
        return started[-1]

    yield launch
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_run_killed_mid_epoch_and_mid_checkpoint_write_resumes_to_the_same_weights(tmp_path, launch, reliability):
    uninterrupted = launch(RUN, tmp_path / "uninterrupted")
    run = tmp_path / "killed"
    plan = kill_plan(SEED)
    kept, tensors, resumed = [], [], []
    for point in plan:
        process = launch(RUN, run, point)
        output = wait_for_pause(process, f"the run to pause at {point}")
        resumed.append(resumed_epoch(output))
        kill(process)
        epoch, count = read_checkpoint(run / "checkpoints")
        assert epoch == epoch_kept(point), f"killed at {point}: the latest checkpoint is of epoch {epoch}"
        kept.append(epoch)
        tensors.append(count)
    output = finish(launch(RUN, run), "the run resumed after the last kill")
    resumed.append(resumed_epoch(output))
    # Each start resumed from the checkpoint the kill before it left.
    assert resumed == [0] + kept
    # Every checkpoint left held the same tensors, all readable.
    assert {count for epoch, count in zip(kept, tensors) if epoch} == {max(tensors)} != {0}, (kept, tensors)
    finish(uninterrupted, "the uninterrupted run")
    arrays = assert_same_arrays(run / "final.npz", tmp_path / "uninterrupted" / "final.npz")
    with open(run / "history.json") as file:
        assert [r["epoch"] for r in json.load(file)] == list(range(1, EPOCHS + 1))

    reliability.record(
        "Faults",
        f"{len(plan)} SIGKILLs of one {EPOCHS}-epoch training run ({EPOCHS * STEPS} steps) at seeded points (seed {SEED}), "
        f"restarted after each: {', '.join(_describe(point) for point in plan)}",
        f"after every kill the latest checkpoint was the last epoch finished before it (epochs {kept}; 0: none yet) and "
        f"was whole (all {max(tensors)} tensors read back); each restart resumed from it; the final "
        f"{arrays} arrays (model variables incl. batch-norm statistics and dropout RNG state, optimizer slots, "
        f"uncertainty weights) equal an uninterrupted run's bit for bit; history.json has each epoch once",
    )


def _describe(point):
    kind, *where = point.split(":")
    if kind == "step":
        return f"after step {where[0]} (epoch {_position(point)[0]})"
    return f"while writing epoch {where[0]}'s checkpoint: {STAGES[where[1]].format(epoch=where[0])}"


def test_a_dead_worker_stops_the_cluster_with_a_clear_error_and_the_restarted_cluster_resumes(tmp_path, launch, reliability):
    run = tmp_path / "killed"
    arguments = ("worker", run, "uwl", "--epochs", "3")
    # Worker 1 stops while writing its checkpoint of epoch 2 (before it is complete); the chief
    # writes its own and waits for worker 1 in the first step of epoch 3. Then worker 1 is killed.
    chief_env, victim_env = cluster_envs(2)
    chief = launch(WORKER, *arguments, env=chief_env)
    victim = launch(WORKER, *arguments, "--pause", "save:2:shards", env=victim_env)
    wait_for_pause(victim, "worker 1")
    # The uninterrupted run to compare with, on the CPU the chief leaves idle while it waits.
    reference = [launch(WORKER, "worker", tmp_path / "reference", "uwl", "--epochs", "3", env=env) for env in cluster_envs(2)]
    deadline = time.monotonic() + 120
    while not str(tf.train.latest_checkpoint(str(run / "checkpoints"))).endswith("ckpt-2"):
        assert chief.poll() is None and time.monotonic() < deadline, "the chief wrote no checkpoint of epoch 2"
        time.sleep(0.05)
    killed_at = kill(victim)
    try:
        output, _ = chief.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the chief still ran {time.monotonic() - killed_at:.0f} s after worker 1 was killed")
    seconds = time.monotonic() - killed_at
    error = [line for line in output.splitlines() if line.startswith("tf_mtl.training.trainer.WorkerLostError: ")]
    assert chief.returncode == 1 and len(error) == 1, output[-4000:]
    message = error[0].split(": ", 1)[1]
    assert message.startswith("Lost /job:worker/task:1 of the MultiWorkerMirroredStrategy cluster at epoch 3, step 1 ")
    assert seconds <= 60, f"the chief stopped {seconds:.0f} s after worker 1 was killed"
    # The chief holds epoch 2's checkpoint, worker 1 epoch 1's: the restarted workers agree on 1.
    held = [read_checkpoint(run / path / "checkpoints")[0] for path in ("", "worker_1")]
    assert held == [2, 1]

    restarted = [launch(WORKER, *arguments, env=env) for env in cluster_envs(2)]
    outputs = [finish(process, f"restarted worker {i}") for i, process in enumerate(restarted)]
    resumed = [resumed_epoch(output) for output in outputs]
    assert resumed == [1, 1]
    for i, process in enumerate(reference):
        finish(process, f"reference worker {i}")
    arrays = [assert_same_arrays(run / path / "final.npz", tmp_path / "reference" / path / "final.npz") for path in ("", "worker_1")]
    for path in ("", "worker_1"):
        with open(run / path / "history.json") as file:
            assert [r["epoch"] for r in json.load(file)] == [1, 2, 3]

    reliability.record(
        "Faults",
        "SIGKILL of worker 1 of a 2-worker MultiWorkerMirroredStrategy training run (127.0.0.1, TF_CONFIG) while it wrote "
        "its checkpoint of epoch 2, the chief having written its own and waiting in epoch 3's first step; then both "
        "workers restarted",
        f"the chief stopped {seconds:.1f} s after the kill (no hang; exit code {chief.returncode}) with WorkerLostError: "
        f"\"{message.split(' (')[0]}\"; restarted, both workers resumed from epoch {resumed[0]}, the last checkpoint both "
        f"held (the chief's own was epoch {held[0]}), and finished with the {arrays[0]} arrays (weights, optimizer slots, "
        f"task weights) of an uninterrupted 2-worker run, bit for bit, on both workers",
    )
