"""Training throughput, test AUC and peak memory: tf_mtl against the plain Keras 3 reference.

    python benchmarks/train.py [--models mmoe ple] [--repeats 3] [--train-rows 200000] [--no-peers]

Each run is a process of its own (so its peak RSS is its own), and runs alternate between the
systems (reference, tf_mtl, tf_mtl_bf16, then the peers of ``peers.py`` whose side
environments exist), so drift of the machine hits all alike. ``tf_mtl_bf16`` is the same
tf_mtl model built inside ``tf_mtl.compat.mixed_precision("mixed_bfloat16")`` (products in
bfloat16 on AVX-512 BF16 / AMX, variables and scores float32). A run trains one epoch of the
workload (``benchmarks/workload.py``) with batch 1024 and Adam 1e-3: the reference with Keras
``model.fit`` on ``tf.data`` batches of sliced rows, tf_mtl as its users do, with
``DataGenerator`` batches and ``MTLTrainer`` (its default optimizer, ``LazyAdam``) with
uncertainty weighting. Throughput counts the steps after the first 20 (tracing and warm-up
excluded), timed by one Keras callback in each system. Prints the median of each figure and each
system's ratio to the reference.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script: the benchmarks package

from benchmarks import peers  # noqa: E402
from benchmarks.peers import WARMUP_STEPS  # noqa: E402

SYSTEMS = ("reference", "tf_mtl", "tf_mtl_bf16")


def _timer():
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Wall time from the end of step ``WARMUP_STEPS`` to the end of the last step."""

        def __init__(self):
            super().__init__()
            self.start, self.end, self.steps = None, None, 0

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if batch + 1 == WARMUP_STEPS:
                self.start = now
            self.end, self.steps = now, batch + 1

    return StepTimer()


def run_one(system, kind, train_rows, seed):
    """Trains one system once; returns its figures (called in a child process)."""
    import numpy as np
    import tensorflow as tf

    from benchmarks.reference import reference_model
    from benchmarks.workload import BATCH_SIZE, LEARNING_RATE, MODELS, TASKS, TOWER_DIMS, make_workload
    from tf_mtl.compat import keras
    from tf_mtl.metrics import auc

    keras.utils.set_random_seed(seed)
    workload = make_workload(seed=0, train_rows=train_rows)
    timer = _timer()
    if system == "reference":
        train = tf.data.Dataset.from_tensor_slices((workload.train_x, workload.train_y))
        train = train.shuffle(len(workload.train_y["click"]), seed=seed).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)
        model = reference_model(kind, workload)
        model.fit(train, epochs=1, verbose=0, callbacks=[timer])
    else:
        from tf_mtl.compat import mixed_precision
        from tf_mtl.data import DataGenerator
        from tf_mtl.models import build_model
        from tf_mtl.training import MTLTrainer

        train, _, _ = DataGenerator(workload.train_x, workload.train_y).generate_dataloader(batch_size=BATCH_SIZE, seed=seed)

        params = {**MODELS[kind], "tower_params_list": [{"dims": TOWER_DIMS}] * len(TASKS)}
        with mixed_precision("mixed_bfloat16" if system == "tf_mtl_bf16" else "float32"):
            model = build_model(kind, workload.features, ["classification"] * len(TASKS), list(TASKS), **params)
        with tempfile.TemporaryDirectory() as folder:
            trainer = MTLTrainer(model, optimizer_params={"lr": LEARNING_RATE}, adaptive_params={"method": "uwl"},
                                 n_epoch=1, model_path=folder, verbose=0, callbacks=[timer])
            trainer.fit(train)
    test = tf.data.Dataset.from_tensor_slices(workload.test_x).batch(4096)
    scores = {task: [] for task in TASKS}
    for x in test:
        outputs = model(x, training=False)
        for task in TASKS:
            scores[task].append(np.reshape(outputs[task], -1))
    steps = timer.steps - WARMUP_STEPS
    return {
        "examples_per_s": steps * BATCH_SIZE / (timer.end - timer.start),
        **{f"{task}_auc": auc(workload.test_y[task], np.concatenate(scores[task])) for task in TASKS},
        "parameters": int(model.count_params()),
    }


def _run(system, kind, train_rows, seed):
    """One run of a system in a process of its own (a peer's in its side environment)."""
    if system in SYSTEMS:
        command = [sys.executable, os.path.abspath(__file__), "--one", system, kind, str(train_rows), str(seed)]
        figures = peers.run_child(command, peers.child_env(), f"{system} {kind}")
    else:
        figures = peers.run(system, kind, train_rows, seed)
    figures["peak_rss_mb"] = figures.pop("own_peak_rss_kb") / 1024  # the child's own peak (KiB on Linux)
    return figures


def _number(value):
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mmoe", "ple"], choices=["mmoe", "ple"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--no-peers", action="store_true", help="skip torch-rechub and DeepCTR even when their side environments exist")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        system, kind, rows, seed = args.one
        figures = run_one(system, kind, int(rows), int(seed))
        figures["own_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(figures))
        return
    systems = list(SYSTEMS) + ([] if args.no_peers else peers.available())
    for kind in args.models:
        runs = {system: [] for system in systems}
        for repeat in range(args.repeats):
            for system in systems:
                figures = _run(system, kind, args.train_rows, repeat)
                runs[system].append(figures)
                print(f"{kind} {system:9s} run {repeat + 1}: " + ", ".join(f"{k} {_number(v)}" for k, v in figures.items()), flush=True)
        print(f"\n{kind}: medians of {args.repeats} interleaved runs; each system's ratio to the reference")
        print(f"{'figure':<16}" + "".join(f"{system:>14}{'ratio':>8}" for system in systems))
        names = list(dict.fromkeys(name for figures in runs.values() for name in figures[0]))
        for name in names:
            medians = [statistics.median(r[name] for r in runs[system]) if name in runs[system][0] else None for system in systems]
            cells = ["".join((f"{_number(m):>14}", f"{m / medians[0]:>8.3f}" if medians[0] else " " * 8)) if m is not None else f"{'-':>14}{'':>8}" for m in medians]
            print(f"{name:<16}" + "".join(cells))
        print()

if __name__ == "__main__":
    main()
