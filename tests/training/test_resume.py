"""Checkpoints and resume: a run stopped after any epoch and started again ends exactly as an
uninterrupted run, in this process and after a SIGKILL in the middle of an epoch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import LEGACY_KERAS
from tf_mtl.training import MTLTrainer

from ._data import labels, loaders, tiny_model

HERE = Path(__file__).resolve().parent


def train(click, path, n_epoch, seed, method):
    """A run on ``path``: MMoE whose experts have dropout and batch normalization."""
    features, x, y = click
    train_data, val, _ = loaders(x, labels(y, ["ctr", "cvr"]))
    model = tiny_model(features, "mmoe", seed=seed, expert_params={"dims": [8], "dropout": 0.3, "batch_norm": True})
    trainer = MTLTrainer(
        model, optimizer_params={"lr": 1e-2, "weight_decay": 1e-4}, adaptive_params={"method": method},
        n_epoch=n_epoch, earlystop_patience=3, model_path=str(path), verbose=0,
    )
    history = trainer.fit(train_data, val)
    return trainer, history


def state(trainer):
    """Everything that must match: model variables (weights, batch-norm statistics, dropout
    generator states), the optimizer's slots and the weighting's state."""
    variables = list(trainer.model.variables) + list(trainer.optimizer.variables) + list(trainer.weighting.variables)
    return [np.asarray(v) for v in variables]


@pytest.mark.parametrize("method", ["uwl", "dwa"])
def test_resume_after_one_epoch_ends_as_the_uninterrupted_run(click, tmp_path, method):
    uninterrupted, history = train(click, tmp_path / "a", 3, seed=0, method=method)
    train(click, tmp_path / "b", 1, seed=0, method=method)
    # A fresh model with other initial weights: everything must come from the checkpoint.
    resumed, resumed_history = train(click, tmp_path / "b", 3, seed=5, method=method)
    assert [r["epoch"] for r in resumed_history] == [1, 2, 3]
    with open(tmp_path / "b" / "history.json") as file:
        assert [r["epoch"] for r in json.load(file)] == [1, 2, 3]
    for key in ("train", "val", "weights", "monitor"):
        assert [r[key] for r in resumed_history] == [r[key] for r in history], key
    expected, actual = state(uninterrupted), state(resumed)
    assert len(expected) == len(actual)
    for a, b in zip(actual, expected):
        np.testing.assert_array_equal(a, b)
    # The weighting state compared above has moved: the task weights are no longer 1.
    assert not np.allclose(resumed.weighting.current_weights().numpy(), 1.0, atol=1e-3)


def test_checkpoints_keep_the_last_epochs(click, tmp_path):
    train(click, tmp_path, 3, seed=0, method="uwl")
    checkpoints = tmp_path / "checkpoints"
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-3")
    # max_to_keep=2: epoch 1's checkpoint is gone.
    assert sorted(p.name for p in checkpoints.glob("ckpt-*.index")) == ["ckpt-2.index", "ckpt-3.index"]


def run_script(model_path, env):
    return subprocess.Popen(
        [sys.executable, str(HERE / "_resumable_run.py"), str(model_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process, what):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"{what} failed:\n{err[-4000:]}"
    return out


def kill_in_epoch_two(model_path, env):
    """Starts the script, waits for the checkpoint of epoch 1 and kills the process with SIGKILL
    half a second later, well before epoch 2 (seconds of steps) ends."""
    process = run_script(model_path, env)
    index = model_path / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 240
    while not index.exists():
        assert process.poll() is None, f"the run ended before its first checkpoint:\n{process.communicate()[1][-4000:]}"
        assert time.monotonic() < deadline, "no checkpoint after 240 s"
        time.sleep(0.02)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


MODES = [
    pytest.param(mode, marks=[] if (mode == "legacy") == LEGACY_KERAS else [pytest.mark.large])
    for mode in ("keras3", "legacy")
]


@pytest.mark.parametrize("mode", MODES)
def test_a_run_killed_in_epoch_two_resumes_to_the_same_weights(tmp_path, mode):
    """The Keras mode of this session runs by default; the other under ``-m large``."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1" if mode == "legacy" else "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    uninterrupted = run_script(tmp_path / "uninterrupted", env)
    killed = tmp_path / "killed"
    kill_in_epoch_two(killed, env)
    # Killed in epoch 2: the checkpoint and the history of epoch 1 only.
    assert tf.train.latest_checkpoint(str(killed / "checkpoints")).endswith("ckpt-1")
    assert not list((killed / "checkpoints").glob("ckpt-2*")), "epoch 2 ended before the kill: make the epochs longer"
    with open(killed / "history.json") as file:
        assert [r["epoch"] for r in json.load(file)] == [1]
    assert not (killed / "final.npz").exists()

    resumed_log = finish(run_script(killed, env), "the resumed run")
    assert "Resumed from" in resumed_log and "(epoch 1)" in resumed_log
    assert [line.split()[1] for line in resumed_log.splitlines() if line.startswith("epoch ")] == ["2/3", "3/3"]
    finish(uninterrupted, "the uninterrupted run")
    with np.load(killed / "final.npz") as got, np.load(tmp_path / "uninterrupted" / "final.npz") as expected:
        assert sorted(got.files) == sorted(expected.files) and "s0" in got.files
        for name in expected.files:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    with open(killed / "history.json") as file:
        assert [r["epoch"] for r in json.load(file)] == [1, 2, 3]


def test_fit_without_resume_starts_over(click, click_loaders, tmp_path):
    train, val, _ = click_loaders
    trainer = MTLTrainer(tiny_model(click[0]), n_epoch=1, model_path=str(tmp_path), verbose=0)
    assert [r["epoch"] for r in trainer.fit(train.take(5), val)] == [1]
    # Resumed, the finished run trains no further; started over, it trains its epoch again.
    assert [r["epoch"] for r in trainer.fit(train.take(5), val)] == [1]
    assert int(trainer.optimizer.iterations.numpy()) == 5
    assert [r["epoch"] for r in trainer.fit(train.take(5), val, resume=False)] == [1]
    assert int(trainer.optimizer.iterations.numpy()) == 10
