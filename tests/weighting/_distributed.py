"""One global batch trained on one device and on two replicas of a MirroredStrategy.

Run by ``test_distributed.py`` in a process of its own: the two logical CPUs must be
configured before TensorFlow initializes its devices. Prints one JSON line: per weighting
method, the largest differences between the two runs (variables, weighting state, logs), how
far the variables moved, and how far the replicas' copies of each state variable disagree.

Usage: ``python _distributed.py fixed uwl ...`` (names of ``tf_mtl.weighting.METHODS``).
"""

import json
import sys

import numpy as np
import tensorflow as tf

SPECS = {
    "fixed": {"method": "fixed", "weights": [2.0, 1.0, 0.5]},
    "uwl": {"method": "uwl", "initial_log_variance": 0.2},
    "gradnorm": {"method": "gradnorm", "alpha": 1.5},
    "dwa": {"method": "dwa"},
    "pareto": {"method": "pareto"},
    "pcgrad": {"method": "pcgrad", "shuffle": True},
    "metabalance": {"method": "metabalance", "relax_factor": 0.7},
}
STEPS = 2
LEARNING_RATE = 0.5


def main(methods):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from tf_mtl.compat import keras
    from tf_mtl.features import DenseFeature, SequenceFeature, SparseFeature
    from tf_mtl.models import build_model
    from tf_mtl.weighting.step import train_step

    features = (
        SparseFeature("user", 20, 3),
        SequenceFeature("history", 20, 3, "mean", 4, shared_embed_name="user"),
        DenseFeature("price", mean=10.0, std=5.0),
    )
    rng = np.random.default_rng(0)
    n = 64
    price = rng.normal(10, 5, n).astype("float32")
    x = {"user": rng.integers(0, 20, n), "history": rng.integers(0, 20, (n, 4)), "price": price}
    y = {"click": (price > 10).astype("float32"), "buy": (price > 14).astype("float32"), "time": price / 5}
    # Rows weigh 0.2 to 2: the replicas' halves have different total weights.
    sample_weight = np.linspace(0.2, 2.0, n).astype("float32")
    # Exactly one global batch, split by the strategy into one half per replica.
    dataset = tf.data.Dataset.from_tensor_slices((x, y, sample_weight)).batch(n)

    def new_model():
        return build_model(
            "shared_bottom",
            features,
            ["classification", "classification", "regression"],
            task_names=["click", "buy", "time"],
            bottom_params={"dims": [8]},
            tower_params_list=[{"dims": [4]}, {}, {}],
        )

    initial = new_model().get_weights()

    def run(strategy, spec):
        with strategy.scope():
            model = new_model()
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), weighting=dict(spec))

        @tf.function
        def step(bx, by, bw):
            def replica_step(bx, by, bw):
                _, logs = train_step(model, model.weighting, model.optimizer, bx, by, bw)
                return logs["loss"], logs["weights"]

            return strategy.run(replica_step, args=(bx, by, bw))

        logs = []
        for _ in range(STEPS):
            bx, by, bw = next(iter(strategy.experimental_distribute_dataset(dataset)))
            loss, weights = (strategy.experimental_local_results(t) for t in step(bx, by, bw))
            # Each replica's logged loss and weights (all should be the global batch's).
            logs.append([np.append(np.asarray(w, np.float64), l) for l, w in zip(loss, weights)])
        state = {
            v.name: [np.asarray(c.numpy(), np.float64) for c in strategy.experimental_local_results(v)]
            for v in model.weighting.variables
        }
        return [np.asarray(w, np.float64) for w in model.get_weights()], state, logs

    def largest(pairs):
        return max((float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if np.size(a) else 0.0) for a, b in pairs)

    one_device = tf.distribute.get_strategy()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    results = {}
    for method in methods:
        weights_1, state_1, logs_1 = run(one_device, SPECS[method])
        weights_2, state_2, logs_2 = run(mirrored, SPECS[method])
        results[method] = {
            "variables": largest(zip(weights_1, weights_2)),
            "moved": largest(zip(weights_1, initial)),
            "state": {name: largest([(state_1[name][0], copy) for copy in state_2[name]]) for name in state_1},
            "replicas": {name: largest([(copies[0], c) for c in copies]) for name, copies in state_2.items()},
            "logs": largest([(a[0], b) for a, bs in zip(logs_1, logs_2) for b in bs]),
            "final_state": {name: copies[0].tolist() for name, copies in state_1.items()},
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
