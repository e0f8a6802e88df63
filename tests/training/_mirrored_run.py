"""MTLTrainer on one device and on a MirroredStrategy over two logical CPUs, for
``test_distributed.py`` (in a process of its own: the logical CPUs must be configured before
TensorFlow initializes its devices, and one process holds exactly one MirroredStrategy).

Per weighting method, both runs train the same MMoE from the same weights for 2 epochs.
Prints one JSON line: per method, the largest differences between the runs (variables after
each epoch, weighting state, training figures), how far the variables moved, and the error a
model built outside the strategy's scope raises.

Usage: ``python _mirrored_run.py WORKDIR fixed uwl ...``
"""

import contextlib
import json
import os
import sys

import numpy as np
import tensorflow as tf

SPECS = {
    "fixed": {"method": "fixed", "weights": [2.0, 0.5]},
    "uwl": {"method": "uwl", "initial_log_variance": 0.2},
    "gradnorm": {"method": "gradnorm", "alpha": 1.5},
    "pareto": {"method": "pareto"},
}
EPOCHS = 2


def largest(pairs):
    """The largest absolute difference between the arrays of each pair."""
    differences = (np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) for a, b in pairs)
    return max((float(np.max(d)) for d in differences if d.size), default=0.0)


def main(workdir, methods):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from _data import click_data, labels, loaders, tiny_model
    from tf_mtl.training import MTLTrainer

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    features, x, y = click_data(1200)
    initial = tiny_model(features, "mmoe").get_weights()
    epoch_weights = []
    original_validate = MTLTrainer._validate

    def validate(self, dataset):
        epoch_weights.append([np.asarray(v) for v in self.model.variables])
        return original_validate(self, dataset)

    MTLTrainer._validate = validate

    def run(method, strategy):
        epoch_weights.clear()
        train, val, _ = loaders(x, labels(y, ["ctr", "cvr"]), batch_size=64, split_ratio=(0.5, 0.25))
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = tiny_model(features, "mmoe")
        model.set_weights(initial)
        trainer = MTLTrainer(
            model, optimizer_params={"lr": 1e-2}, adaptive_params=dict(SPECS[method]), n_epoch=EPOCHS,
            earlystop_patience=EPOCHS, model_path=os.path.join(workdir, f"{method}_{bool(strategy)}"), strategy=strategy,
            verbose=0,
        )
        history = trainer.fit(train, val)
        state = [np.asarray(v) for v in trainer.weighting.variables]
        return list(epoch_weights), state, history

    results = {}
    for method in methods:
        weights_1, state_1, history_1 = run(method, None)
        weights_2, state_2, history_2 = run(method, strategy)
        results[method] = {
            "epochs": [len(weights_1), len(weights_2)],
            "variables": largest(zip(sum(weights_1, []), sum(weights_2, []))),
            "moved": largest(zip(weights_1[-1], initial)),
            "state": largest(zip(state_1, state_2)),
            "train": largest((r1["train"][k], r2["train"][k]) for r1, r2 in zip(history_1, history_2) for k in r1["train"]),
            "weights": [list(r["weights"].values()) for r in history_2],
        }
    outside = tiny_model(features, "mmoe")
    try:
        MTLTrainer(outside, model_path=os.path.join(workdir, "outside"), strategy=strategy, verbose=0)
        results["outside"] = None
    except ValueError as error:
        results["outside"] = str(error)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
