"""Inference: batch throughput and single-request latency, tf_mtl against the plain Keras 3 reference.

    python benchmarks/serve.py [--models mmoe ple] [--repeats 3] [--requests 500]

Both systems hold the workload's model (``benchmarks/workload.py``), untrained (weights do not
change the time a forward pass takes): the reference is called the obvious way, ``model.predict(x, batch_size=1024)`` for batches
and ``model.predict_on_batch(x)`` for one request; tf_mtl's exported SavedModel is called
through ``tf_mtl.serving.Servable`` (what the server runs: inputs checked, then the
``serving_default`` signature) in the process, and over the gRPC server (``tf_mtl.serving``)
on 127.0.0.1 for one request; ``tf_mtl_bf16`` is the same model copied into
``mixed_bfloat16`` (``tf_mtl.compat.with_policy``), exported and called in the process.
Inputs are numpy arrays in every case. Batches and single requests are measured in two
processes: single requests with one thread per op for both systems
(``tf_mtl.serving.configure_threads(intra_op=1)``, ``tf-mtl serve
--tensorflow_intra_op_parallelism 1``: a one-row request split over two threads waits for
both), batches with TensorFlow's default threads. Rounds alternate between the systems;
every figure is the median over ``--repeats`` rounds, and each tf_mtl figure is also given
as a ratio to the reference's.
"""

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the benchmarks package

BATCH = 1024


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _latencies(call, requests):
    """Milliseconds per call, one request after the other (after 20 warm-up calls)."""
    for request in requests[:20]:
        call(request)
    times = []
    for request in requests:
        start = time.perf_counter()
        call(request)
        times.append((time.perf_counter() - start) * 1e3)
    return np.array(times)


def _throughput(call, x, rows, passes=3):
    """Rows per second over ``passes`` passes of ``call`` (after one warm-up pass)."""
    call(x)
    start = time.perf_counter()
    for _ in range(passes):
        call(x)
    return passes * rows / (time.perf_counter() - start)


def measure(kind, phase, repeats, n_requests):
    """One phase's figures for one model kind: ``{figure: {system: [value per round]}}``."""
    from benchmarks.reference import reference_model
    from benchmarks.workload import MODELS, TASKS, TOWER_DIMS, make_workload
    from tf_mtl.compat import with_policy
    from tf_mtl.export import export_saved_model
    from tf_mtl.models import build_model
    from tf_mtl.serving import Client, ModelServer, Servable, configure_threads

    if phase == "latency":
        configure_threads(intra_op=1)  # both systems: one request is too small to split
    workload = make_workload(seed=0, train_rows=1, test_rows=50_000)
    x = workload.test_x
    rows = len(x["d0"])
    reference = reference_model(kind, workload)
    params = {**MODELS[kind], "tower_params_list": [{"dims": TOWER_DIMS}] * len(TASKS)}
    model = build_model(kind, workload.features, ["classification"] * len(TASKS), list(TASKS), **params)
    base = tempfile.mkdtemp(prefix="tf_mtl_serve_bench_")
    servable = Servable("ranker", 1, export_saved_model(model, base))
    bf16 = export_saved_model(with_policy(model, "mixed_bfloat16"), tempfile.mkdtemp(prefix="tf_mtl_serve_bench_bf16_"))
    servable_bf16 = Servable("ranker", 1, bf16)
    figures = {}

    def add(figure, system, value):
        figures.setdefault(figure, {}).setdefault(system, []).append(value)

    if phase == "batch":
        batches = [{k: v[i : i + BATCH] for k, v in x.items()} for i in range(0, rows, BATCH)]

        def serve_batches(servable):
            def call(_):
                for batch in batches:
                    servable.predict("serving_default", batch)

            return call

        for _ in range(repeats):
            add("batch_examples_per_s", "reference", _throughput(lambda b: reference.predict(b, batch_size=BATCH, verbose=0), x, rows))
            add("batch_examples_per_s", "tf_mtl", _throughput(serve_batches(servable), x, rows))
            add("batch_examples_per_s", "tf_mtl_bf16", _throughput(serve_batches(servable_bf16), x, rows))
        return figures
    server = ModelServer("ranker", base, port=_free_port(), rest_api_port=None)
    server.start()
    client = Client("127.0.0.1", server.port, "ranker")
    singles = [{k: v[i : i + 1] for k, v in x.items()} for i in range(n_requests)]
    try:
        for _ in range(repeats):
            for system, call in (
                ("reference", reference.predict_on_batch),
                ("tf_mtl", lambda request: servable.predict("serving_default", request)),
                ("tf_mtl_bf16", lambda request: servable_bf16.predict("serving_default", request)),
                ("tf_mtl_grpc", client.predict),
            ):
                latencies = _latencies(call, singles)
                add("latency_p50_ms", system, float(np.percentile(latencies, 50)))
                add("latency_p99_ms", system, float(np.percentile(latencies, 99)))
    finally:
        client.close()
        server.stop()
    return figures


def _child(kind, phase, repeats, n_requests):
    """``measure`` in a process of its own (thread pools are set once per process)."""
    from benchmarks import peers

    command = [sys.executable, os.path.abspath(__file__), "--one", kind, phase, str(repeats), str(n_requests)]
    return peers.run_child(command, peers.child_env(), f"{kind} {phase}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mmoe", "ple"], choices=["mmoe", "ple"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, phase, repeats, n_requests = args.one
        print(json.dumps(measure(kind, phase, int(repeats), int(n_requests))))
        return
    for kind in args.models:
        figures = {**_child(kind, "batch", args.repeats, args.requests), **_child(kind, "latency", args.repeats, args.requests)}
        print(f"\n{kind}: medians of {args.repeats} interleaved rounds")
        print(f"{'figure':<22}{'system':<14}{'median':>12}{'ratio':>8}")
        for figure, systems in figures.items():
            baseline = statistics.median(systems["reference"])
            for system, values in systems.items():
                median = statistics.median(values)
                print(f"{figure:<22}{system:<14}{median:>12,.2f}{median / baseline:>8.2f}")


if __name__ == "__main__":
    main()
