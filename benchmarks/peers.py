"""Peer libraries measured on the same workload, each in a side environment of its own.

- ``rechub``: torch-rechub's ``MMOE``/``PLE`` on torch CPU, trained by its ``MTLTrainer``
  (``.venv-rechub``).
- ``deepctr``: DeepCTR's ``MMOE``/``PLE`` on tf_keras (Keras 2) with ``TF_USE_LEGACY_KERAS=1``,
  trained by ``model.fit`` (``.venv-deepctr``).

    bash benchmarks/setup_peers.sh all                      # the side environments, from the locks
    python benchmarks/peers.py [--models mmoe ple] [--train-rows 200000] [--seed 0]
    .venv-rechub/bin/python benchmarks/peers.py --one rechub mmoe 200000 0    # one run, one JSON line

A run trains one epoch (batch 1024, Adam 1e-3, binary cross-entropy on click and conversion),
times the steps after the first 20, scores the test split (AUC per task) and times inference:
batch-1024 examples/s over the test split and the latency of single-row requests.
"""

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARMUP_STEPS = 20
LATENCY_WARMUP, LATENCY_REQUESTS = 20, 300
PEERS = {
    "rechub": {"python": os.path.join(ROOT, ".venv-rechub", "bin", "python"), "env": {}},
    "deepctr": {"python": os.path.join(ROOT, ".venv-deepctr", "bin", "python"), "env": {"TF_USE_LEGACY_KERAS": "1"}},
}


def child_env(extra=None):
    """The environment of a measuring process: this checkout importable, TensorFlow quiet."""
    path = os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra or {})}


def run_child(command, env, what):
    """Runs a measuring process; returns the JSON of its last line of output."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env(peer):
    return child_env(PEERS[peer]["env"])


def _import(peer):
    """The peer's library (its top-level module), imported as a run imports it."""
    import importlib

    if peer == "deepctr":
        # deepctr/__init__.py asks PyPI for its latest version, in a thread, on every import: not here.
        sys.modules.setdefault("deepctr.utils", types.SimpleNamespace(check_version=lambda version: None))
    return importlib.import_module({"rechub": "torch_rechub", "deepctr": "deepctr"}[peer])


def available():
    """The peers whose side environment exists and imports its library."""
    found = []
    for peer, spec in PEERS.items():
        if os.path.exists(spec["python"]):
            done = subprocess.run([spec["python"], os.path.abspath(__file__), "--check", peer], env=_env(peer),
                                  capture_output=True, check=False)
            if done.returncode == 0:
                found.append(peer)
    return found


def run(peer, kind, train_rows, seed):
    """Runs one peer once in its side environment (a process of its own); returns its figures."""
    return run_child([PEERS[peer]["python"], os.path.abspath(__file__), "--one", peer, kind, str(train_rows), str(seed)],
                     _env(peer), f"{peer} {kind}")


def _clock():
    """Wall and process CPU time (s): their ratio over a stretch is the share of a core the run had."""
    return time.perf_counter(), time.process_time()


def _throughput(step_ends, batch_size):
    """Examples/s over the steps after ``WARMUP_STEPS``, from the clocks at each step's end, and
    the share of a core the process had meanwhile (below 1 when pinned to a core others use too)."""
    steps = len(step_ends) - WARMUP_STEPS
    if steps < 1:
        raise ValueError(f"need more than {WARMUP_STEPS} steps; got {len(step_ends)} (more training rows)")
    (wall, cpu), (wall_end, cpu_end) = step_ends[WARMUP_STEPS - 1], step_ends[-1]
    return {"examples_per_s": steps * batch_size / (wall_end - wall), "train_cpu_share": (cpu_end - cpu) / (wall_end - wall)}


def _test_figures(predict, test):
    """Test scores and serving figures of ``predict`` (inputs -> a ``(rows, tasks)`` array) on the
    ``test`` inputs: one pass in batches of 1024 (the scores, and the warm-up), a timed second
    pass (examples/s), then single-row requests (p50/p99 latency in ms, after ``LATENCY_WARMUP``)."""
    import numpy as np

    from benchmarks.workload import BATCH_SIZE

    rows = len(next(iter(test.values())))
    batches = [_slices(test, i, i + BATCH_SIZE) for i in range(0, rows, BATCH_SIZE)]
    scores = np.concatenate([predict(batch) for batch in batches])
    wall, cpu = _clock()
    for batch in batches:
        predict(batch)
    wall_end, cpu_end = _clock()
    latencies = []
    for i in range(LATENCY_WARMUP + LATENCY_REQUESTS):
        request = _slices(test, i, i + 1)
        start = time.perf_counter()
        predict(request)
        latencies.append(time.perf_counter() - start)
    p50, p99 = np.percentile(latencies[LATENCY_WARMUP:], [50, 99]) * 1e3
    return scores, {"batch_examples_per_s": rows / (wall_end - wall), "batch_cpu_share": (cpu_end - cpu) / (wall_end - wall),
                    "latency_p50_ms": p50, "latency_p99_ms": p99}


def _dense_names(workload):
    return [name for name in workload.train_x if name not in workload.vocab_sizes]


def _slices(arrays, start, stop):
    return {name: values[start:stop] for name, values in arrays.items()}


def _rechub(kind, workload, seed):
    os.environ.setdefault("TQDM_DISABLE", "1")  # the trainer's progress bar, as Keras' verbose=0
    import numpy as np
    import torch
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import MMOE, PLE
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    from benchmarks.workload import BATCH_SIZE, EMBED_DIM, LEARNING_RATE, MODELS, TASKS, TOWER_DIMS

    features = [SparseFeature(name, vocab, EMBED_DIM) for name, vocab in workload.vocab_sizes.items()]
    features += [DenseFeature(name) for name in _dense_names(workload)]
    labels, test_labels = (np.stack([y[task] for task in TASKS], axis=1) for y in (workload.train_y, workload.test_y))

    def trained(batches):
        torch.manual_seed(seed)
        model = {"mmoe": MMOE, "ple": PLE}[kind](features, ["classification"] * len(TASKS),
                                                 tower_params_list=[{"dims": TOWER_DIMS}] * len(TASKS), **MODELS[kind])
        trainer = MTLTrainer(model, ["classification"] * len(TASKS), optimizer_params={"lr": LEARNING_RATE}, n_epoch=1)
        step_ends = []

        def timed():  # asked for batch k + 1 at the end of step k
            for batch in batches:
                yield batch
                step_ends.append(_clock())

        with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its losses
            trainer.train_one_epoch(timed())
        return model.eval(), _throughput(step_ends, BATCH_SIZE)

    loader = DataGenerator(workload.train_x, labels).generate_dataloader(
        workload.test_x, test_labels, workload.test_x, test_labels, batch_size=BATCH_SIZE)[0]
    model, training = trained(loader)
    order = np.random.default_rng(seed).permutation(len(labels))
    tensors = {name: torch.from_numpy(values[order]) for name, values in workload.train_x.items()}
    ys = torch.from_numpy(labels[order])
    prebuilt = [(_slices(tensors, i, i + BATCH_SIZE), ys[i : i + BATCH_SIZE]) for i in range(0, len(ys), BATCH_SIZE)]
    tensor = trained(prebuilt)[1]

    with torch.no_grad():
        scores, figures = _test_figures(lambda x: model(x).numpy(), {k: torch.from_numpy(v) for k, v in workload.test_x.items()})
    parameters = sum(p.numel() for p in model.parameters())
    return scores, {**training, "examples_per_s_tensor_batches": tensor["examples_per_s"],
                    "tensor_batches_cpu_share": tensor["train_cpu_share"], "parameters": parameters, **figures}


def _deepctr(kind, workload, seed):
    _import("deepctr")
    import tensorflow as tf
    from deepctr.feature_column import DenseFeat, SparseFeat
    from deepctr.models.multitask import MMOE, PLE

    from benchmarks.workload import BATCH_SIZE, EMBED_DIM, EXPERT_DIMS, LEARNING_RATE, MODELS, TASKS, TOWER_DIMS
    from tf_mtl.compat import LEGACY_KERAS, keras

    if not LEGACY_KERAS:
        raise RuntimeError("DeepCTR needs TF_USE_LEGACY_KERAS=1 (tf_keras)")
    keras.utils.set_random_seed(seed)
    columns = [SparseFeat(name, vocab, EMBED_DIM, dtype="int64") for name, vocab in workload.vocab_sizes.items()]
    columns += [DenseFeat(name, 1) for name in _dense_names(workload)]
    shape = dict(dnn_feature_columns=columns, expert_dnn_hidden_units=EXPERT_DIMS, tower_dnn_hidden_units=TOWER_DIMS,
                 l2_reg_embedding=0.0, seed=seed, task_types=["binary"] * len(TASKS), task_names=list(TASKS))
    if kind == "mmoe":
        model = MMOE(num_experts=MODELS[kind]["n_expert"], **shape)
    else:
        spec = MODELS[kind]
        model = PLE(shared_expert_num=spec["n_expert_shared"], specific_expert_num=spec["n_expert_specific"],
                    num_levels=spec["n_level"], **shape)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss={t: "binary_crossentropy" for t in TASKS})

    step_ends = []

    class StepEnds(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step_ends.append(_clock())

    def column(arrays):  # DeepCTR's inputs have shape (rows, 1)
        return {name: values.reshape(-1, 1) for name, values in arrays.items()}

    train = tf.data.Dataset.from_tensor_slices((column(workload.train_x), workload.train_y))
    train = train.shuffle(len(workload.train_y[TASKS[0]]), seed=seed).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)
    model.fit(train, epochs=1, verbose=0, callbacks=[StepEnds()])

    call = tf.function(lambda x: tf.concat(model(x, training=False), axis=1), reduce_retracing=True)
    scores, figures = _test_figures(lambda x: call(x).numpy(), {k: tf.constant(v) for k, v in column(workload.test_x).items()})
    return scores, {**_throughput(step_ends, BATCH_SIZE), "parameters": model.count_params(), **figures}


def run_one(peer, kind, train_rows, seed):
    """Trains and serves one peer in this process (its side environment); returns its figures."""
    from benchmarks.workload import TASKS, make_workload
    from tf_mtl.metrics import auc

    workload = make_workload(seed=0, train_rows=train_rows)
    scores, figures = {"rechub": _rechub, "deepctr": _deepctr}[peer](kind, workload, seed)
    figures.update({f"{task}_auc": auc(workload.test_y[task], scores[:, i]) for i, task in enumerate(TASKS)})
    order = ["examples_per_s", "click_auc", "conversion_auc", "parameters", "batch_examples_per_s", "latency_p50_ms",
             "latency_p99_ms", "examples_per_s_tensor_batches", "train_cpu_share", "tensor_batches_cpu_share", "batch_cpu_share"]
    return {key: float(figures[key]) if key != "parameters" else int(figures[key]) for key in order if key in figures}


def _inside(peer, one):
    """In the peer's side environment: ``--check`` (import, print the version) or ``--one`` (a run)."""
    os.environ.update(PEERS[peer]["env"])  # before TensorFlow loads
    if not one:
        print(f"{peer}: {_import(peer).__version__}")
        return
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    figures = run_one(peer, one[1], int(one[2]), int(one[3]))
    figures["own_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(figures), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), help="default: every available one")
    parser.add_argument("--models", nargs="+", default=["mmoe", "ple"], choices=["mmoe", "ple"])
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    inside = parser.add_mutually_exclusive_group()
    inside.add_argument("--one", nargs=4, metavar=("PEER", "KIND", "TRAIN_ROWS", "SEED"),
                        help="in the peer's venv: one run, printed as one JSON line")
    inside.add_argument("--check", choices=sorted(PEERS), help="in the peer's venv: import its library, print its version")
    args = parser.parse_args()
    if args.one or args.check:
        _inside(args.check or args.one[0], args.one)
        return
    peers = args.peers or available()
    print(f"peers: {', '.join(peers) or 'none available (bash benchmarks/setup_peers.sh all)'}", flush=True)
    for kind in args.models:
        for peer in peers:
            print(json.dumps({"peer": peer, "model": kind, **run(peer, kind, args.train_rows, args.seed)}), flush=True)


if __name__ == "__main__":
    main()
