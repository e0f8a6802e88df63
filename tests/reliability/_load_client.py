"""One client of the load test, a process of its own: sends serialized ``PredictRequest``s over
one gRPC channel, one at a time, and keeps every answer's bytes and latency.

    python _load_client.py <address> <requests.pickle> <progress file> <slot>

It imports grpc only (no TensorFlow: the requests come serialized, the answers are checked by
the test), so 32 of them start in a few seconds. It runs one round per line on stdin, a JSON
object ``{"count", "first", "deadline", "timeout", "out"}``: ``count`` requests starting at
request ``first`` (cycling), none sent after ``deadline`` (``time.monotonic()``, shared by
the processes of one machine), then ``[(request index, seconds, response bytes or None,
error or None)]`` pickled to ``out`` and ``done`` on stdout. Requests sent so far are counted
in the progress file (an int64 per client at ``8 * slot``) so the test can act midway.
"""

import json
import mmap
import pickle
import struct
import sys
import time

import grpc

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def run_round(predict, requests, order, count_progress):
    results = []
    for index in range(order["first"], order["first"] + order["count"]):
        index %= len(requests)
        if time.monotonic() > order["deadline"]:
            results.append((index, None, None, "not sent: past the round's deadline"))
            continue
        start = time.perf_counter()
        try:
            response, error = predict(requests[index], timeout=order["timeout"]), None
        except grpc.RpcError as failure:
            response, error = None, f"{failure.code().name}: {failure.details()}"
        results.append((index, time.perf_counter() - start, response, error))
        count_progress()
    return results


def main(address, requests_path, progress_path, slot):
    with open(requests_path, "rb") as file:
        requests = pickle.load(file)
    with open(progress_path, "r+b") as file:
        progress = mmap.mmap(file.fileno(), 0)
    sent = 0

    def count_progress():
        nonlocal sent
        sent += 1
        struct.pack_into("q", progress, 8 * slot, sent)

    with grpc.insecure_channel(address) as channel:
        predict = channel.unary_unary(PREDICT)  # no serializers: bytes in, bytes out
        for line in sys.stdin:
            order = json.loads(line)
            results = run_round(predict, requests, order, count_progress)
            with open(order["out"], "wb") as file:
                pickle.dump(results, file)
            print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
