"""A run of MTLTrainer with long epochs, for the kill-and-resume test (run in a process of its own).

Trains a tiny MMoE with dropout and uncertainty weighting for 3 epochs of 1,200 steps under
``MODEL_PATH``, resuming from the checkpoints there, then writes ``MODEL_PATH/final.npz``:
the model's weights (``w0``, ``w1``, ...) and the weighting's variables (``s0``, ``s1``, ...).

Usage: ``python _resumable_run.py MODEL_PATH``
"""

import os
import sys

import numpy as np

from _data import click_data, labels, loaders, tiny_model
from tf_mtl.training import MTLTrainer


def main(model_path):
    features, x, y = click_data(12_000)
    train, val, _ = loaders(x, labels(y, ["ctr", "cvr"]), batch_size=8, split_ratio=(0.8, 0.1))
    model = tiny_model(features, "mmoe", dropout=0.3)
    trainer = MTLTrainer(
        model, optimizer_params={"lr": 1e-3}, adaptive_params={"method": "uwl"}, n_epoch=3, earlystop_patience=3,
        model_path=model_path, verbose=2,
    )
    trainer.fit(train, val)
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"s{i}": np.asarray(v) for i, v in enumerate(trainer.weighting.variables)})
    np.savez(os.path.join(model_path, "final.npz"), **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
