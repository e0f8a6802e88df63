"""MTLTrainer as one worker of a cluster, the cluster faked in this process: which checkpoint the
workers resume from together, and the error a lost worker raises. (Real clusters of worker
processes: tests/distribute and tests/reliability/test_training_faults.py.)"""

import types

import pytest
import tensorflow as tf

from tf_mtl.training import MTLTrainer, WorkerLostError
from tf_mtl.training import trainer as trainer_lib
from tf_mtl.training.devices import other_tasks_named, task_name, worker_path

from ._data import tiny_model

STEPS = 3


def fake_strategy(task_id, workers=2):
    """An object with the ``cluster_resolver`` of worker ``task_id`` of a cluster of ``workers``."""
    spec = tf.train.ClusterSpec({"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]})
    return types.SimpleNamespace(cluster_resolver=tf.distribute.cluster_resolver.SimpleClusterResolver(spec, task_type="worker", task_id=task_id))


def test_task_names_and_worker_paths():
    assert task_name(tf.distribute.get_strategy()) is None
    assert task_name(fake_strategy(1)) == "/job:worker/task:1"
    assert worker_path(fake_strategy(0), "run") == "run"
    assert worker_path(fake_strategy(1), "run") == "run/worker_1"
    text = "aborted by: Error reported from /job:worker/task:1: unhealthy: /job:worker/replica:0/task:1, /job:chief/replica:0/task:0"
    assert other_tasks_named(fake_strategy(1), text) == ["/job:chief/task:0"]
    assert other_tasks_named(fake_strategy(0), text) == ["/job:chief/task:0", "/job:worker/task:1"]


@pytest.fixture
def as_worker(monkeypatch):
    """Makes the trainer see itself as worker 0 of a cluster whose workers' latest checkpoints
    have at least epoch ``agreed[0]``."""
    agreed = [0]
    monkeypatch.setattr(trainer_lib, "task_name", lambda strategy: "/job:worker/task:0")
    monkeypatch.setattr(trainer_lib, "smallest_over_workers", lambda strategy, number: min(number, agreed[0]))
    return agreed


def trainer_on(click, path, n_epoch, max_to_keep=2):
    return MTLTrainer(
        tiny_model(click[0]), n_epoch=n_epoch, earlystop_patience=n_epoch, model_path=str(path), steps_per_epoch=STEPS,
        max_to_keep=max_to_keep, verbose=1,
    )


def test_workers_resume_from_the_last_checkpoint_all_of_them_hold(click, click_loaders, tmp_path, as_worker, capsys):
    train, _, _ = click_loaders
    trainer_on(click, tmp_path, 2).fit(train)
    # Another worker was killed while it saved epoch 2: epoch 1 is the last checkpoint of all.
    as_worker[0] = 1
    trainer = trainer_on(click, tmp_path, 3)
    history = trainer.fit(train)
    assert f"Resumed from {tmp_path / 'checkpoints' / 'ckpt-1'} (epoch 1)." in capsys.readouterr().out
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert int(trainer.optimizer.iterations.numpy()) == 3 * STEPS


def test_no_checkpoint_on_another_worker_starts_every_worker_over(click, click_loaders, tmp_path, as_worker, capsys):
    train, _, _ = click_loaders
    trainer_on(click, tmp_path, 1).fit(train)
    trainer = trainer_on(click, tmp_path, 1)
    assert [r["epoch"] for r in trainer.fit(train)] == [1]
    assert "Resumed" not in capsys.readouterr().out
    assert int(trainer.optimizer.iterations.numpy()) == STEPS


def test_a_checkpoint_all_workers_hold_that_this_one_deleted_is_an_error(click, click_loaders, tmp_path, as_worker):
    train, _, _ = click_loaders
    trainer_on(click, tmp_path, 2, max_to_keep=1).fit(train)
    as_worker[0] = 1
    with pytest.raises(RuntimeError, match=r"epoch 1 is the latest all of them hold, and /job:worker/task:0 no longer has it "
                       r"under .*checkpoints \(it keeps \['ckpt-2'\]\)\. .*received max_to_keep=1"):
        trainer_on(click, tmp_path, 3, max_to_keep=1).fit(train)


@pytest.mark.parametrize(
    "message, lost",
    [
        (
            "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy "
            "(stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.",
            "/job:worker/task:1",
        ),
        ("Collective ops is aborted by: Socket closed", "another worker (the error names none)"),
    ],
)
def test_a_lost_worker_stops_training_with_an_error_naming_it(click, click_loaders, tmp_path, monkeypatch, message, lost):
    train, _, _ = click_loaders

    def failing_step(self):
        def step(*batch):
            raise tf.errors.UnavailableError(None, None, f"Graph execution error:\n\n{message}\n\t [[{{node CollectiveReduceV2}}]]")

        return step

    monkeypatch.setattr(MTLTrainer, "_make_train_function", failing_step)
    # Outside a cluster the error is TensorFlow's own.
    with pytest.raises(tf.errors.UnavailableError):
        trainer_on(click, tmp_path / "alone", 1).fit(train)
    monkeypatch.setattr(trainer_lib, "task_name", lambda strategy: "/job:worker/task:0")
    with pytest.raises(WorkerLostError) as error:
        trainer_on(click, tmp_path / "worker", 1).fit(train)
    assert str(error.value).startswith(
        f"Lost {lost} of the MultiWorkerMirroredStrategy cluster at epoch 1, step 1 "
        f"({message.splitlines()[0]}). Training stopped on /job:worker/task:0; restart every worker"
    )
    assert isinstance(error.value.__cause__, tf.errors.UnavailableError)
