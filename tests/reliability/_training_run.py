"""A run of MTLTrainer for the kill-and-resume test, in a process of its own.

Trains a tiny MMoE with dropout, batch normalization and uncertainty weighting for 3 epochs of
50 steps under ``MODEL_PATH``, resuming from the checkpoints there, then writes
``MODEL_PATH/final.npz``: the model's variables (``m0``, ``m1``, ...: weights, batch-norm
statistics, dropout generator states), the optimizer's (``o0``, ...) and the weighting's (``s0``, ...).
With ``PAUSE`` it stops there until killed (see ``_training_pauses``).

Usage: ``python _training_run.py MODEL_PATH [PAUSE]``
"""

import os
import sys

import numpy as np

from tests.reliability._training_pauses import pause_at
from tests.training._data import click_data, labels, loaders, tiny_model
from tf_mtl.training import MTLTrainer

EPOCHS, STEPS = 3, 50


def main(model_path, pause=None):
    callbacks = pause_at(pause)
    features, x, y = click_data(2000)
    train, val, _ = loaders(x, labels(y, ["ctr", "cvr"]), batch_size=32, split_ratio=(0.8, 0.1))
    model = tiny_model(features, "mmoe", expert_params={"dims": [8], "dropout": 0.3, "batch_norm": True})
    trainer = MTLTrainer(
        model, optimizer_params={"lr": 1e-3}, adaptive_params={"method": "uwl"}, n_epoch=EPOCHS, earlystop_patience=EPOCHS,
        model_path=model_path, verbose=2, callbacks=callbacks,
    )
    assert trainer._steps(train) == STEPS
    trainer.fit(train, val)
    arrays = {}
    for key, variables in (("m", model.variables), ("o", trainer.optimizer.variables), ("s", trainer.weighting.variables)):
        arrays.update({f"{key}{i}": np.asarray(v) for i, v in enumerate(variables)})
    np.savez(os.path.join(model_path, "final.npz"), **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
