"""Serving latency: a tf_mtl MMoE exported as a SavedModel, called in-process and over the
gRPC server, against the same Keras model called directly (the baseline, same run).

    python benchmarks/serving.py [--requests 300] [--output-dir /tmp/tf_mtl_serving_bench]

Prints p50/p99 latency (ms) and throughput for batch 1 and 256, in-process and over gRPC on
127.0.0.1 with 1 and 8 concurrent clients, and each p50 as a ratio to the baseline's.
"""

import argparse
import socket
import tempfile
import threading
import time
from concurrent import futures

import numpy as np
import tensorflow as tf

from tf_mtl.data import click_conversion
from tf_mtl.export import export_saved_model
from tf_mtl.models import build_model
from tf_mtl.serving import Client, ModelServer


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(data, start, size):
    return {k: v[start : start + size] for k, v in data.x.items()}


def _as_tensors(x):
    return {k: tf.constant(v.astype(str) if v.dtype.kind == "O" else v) for k, v in x.items()}


def _time(call, batches, clients):
    """Latencies (s) of ``call`` over ``batches``, shared out over ``clients`` threads."""
    latencies, lock = [], threading.Lock()
    chunks = [batches[i::clients] for i in range(clients)]

    def run(chunk):
        for batch in chunk:
            start = time.perf_counter()
            call(batch)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)

    wall = time.perf_counter()
    with futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, chunks))
    return np.array(latencies), time.perf_counter() - wall


def main(requests=300, output_dir=None):
    data = click_conversion(20_000, seed=0)
    model = build_model("mmoe", data.features, data.task_types, data.task_names)
    base = output_dir or tempfile.mkdtemp(prefix="tf_mtl_serving_bench_")
    path = export_saved_model(model, base)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    keras_call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    port = _free_port()
    server = ModelServer("ranker", base, port=port, rest_api_port=0)
    server.start()
    client_pool = [Client("127.0.0.1", port, "ranker") for _ in range(8)]
    local = threading.local()

    def grpc_call(batch):
        if not hasattr(local, "client"):
            local.client = client_pool[threading.get_ident() % len(client_pool)]
        local.client.predict(batch)

    print(f"{'path':<28}{'batch':>6}{'clients':>8}{'p50 ms':>9}{'p99 ms':>9}{'rows/s':>11}{'p50 vs baseline':>17}")
    try:
        for size in (1, 256):
            raw = [_rows(data, (i * size) % (len(data.y["ctr"]) - size), size) for i in range(requests)]
            tensors = [_as_tensors(x) for x in raw]
            cases = [
                ("keras model (baseline)", lambda b: keras_call(b), tensors, 1),
                ("SavedModel in-process", lambda b: serve(**b), tensors, 1),
                ("gRPC, 1 client", grpc_call, raw, 1),
                ("gRPC, 8 clients", grpc_call, raw, 8),
            ]
            baseline = None
            for name, call, batches, clients in cases:
                for batch in batches[:10]:
                    call(batch)
                latencies, wall = _time(call, batches, clients)
                p50, p99 = np.percentile(latencies, [50, 99]) * 1e3
                baseline = p50 if baseline is None else baseline
                print(f"{name:<28}{size:>6}{clients:>8}{p50:>9.2f}{p99:>9.2f}{len(batches) * size / wall:>11.0f}{p50 / baseline:>16.2f}x")
    finally:
        for client in client_pool:
            client.close()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    main(args.requests, args.output_dir)
