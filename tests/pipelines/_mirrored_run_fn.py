"""``run_fn`` on one device and under ``training.strategy: mirrored`` over two logical CPUs, in a
process of its own (logical CPUs must be set before TensorFlow starts; one MirroredStrategy per
process). Prints one JSON line: the replicas of each run and the largest difference between
the two SavedModels' scores on an eval batch.

Usage: ``python _mirrored_run_fn.py WORKDIR``
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf


def main(workdir):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from pipelines.example_gen import ExampleGen, Source
    from pipelines.runner import run_pipeline
    from pipelines.trainer import FnArgs, make_dataset, run_fn
    from tests.pipelines.conftest import TASKS, impressions
    from tests.pipelines.test_trainer import FEATURES
    from tf_mtl.features import features_to_config

    step = ExampleGen(Source(frame=impressions(2000)), key="impression_id", list_columns={"clicked_categories": "|"})
    examples = run_pipeline([step], os.path.join(workdir, "root"), log=lambda _: None)[0].artifact.path
    train, evaluation = (os.path.join(examples, f"Split-{s}", "*") for s in ("train", "eval"))
    results, scores = {}, {}
    for strategy in ("default", "mirrored"):
        out = os.path.join(workdir, strategy)
        custom = {
            "features": features_to_config(FEATURES), "tasks": TASKS,
            "model": {"name": "mmoe", "params": {"n_expert": 2, "expert_params": {"dims": [16]}}},
            "training": {"epochs": 2, "batch_size": 128, "strategy": strategy, "devices": ["/cpu:0", "/cpu:1"]},
            "verbose": 0,
        }
        if strategy == "default":
            del custom["training"]["devices"]
        summary = run_fn(FnArgs([train], [evaluation], os.path.join(out, "serving"), os.path.join(out, "run"), custom))
        x, _ = next(iter(make_dataset([evaluation], FEATURES, TASKS, batch_size=256)))
        served = tf.saved_model.load(os.path.join(out, "serving")).signatures["serving_default"](**x)
        results[strategy] = summary["replicas"]
        scores[strategy] = served["ctr"].numpy()
    difference = float(np.max(np.abs(scores["default"] - scores["mirrored"])))
    print(json.dumps({"replicas": results, "difference": difference, "spread": float(np.std(scores["default"]))}))


if __name__ == "__main__":
    main(sys.argv[1])
