"""SavedModel export: both signatures match the Keras model, the fused score is right and
changeable after loading, versions are atomic (a kill mid-export: tests/reliability/
test_export_faults.py), and the warmup requests are valid."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tf_mtl.data import click_conversion
from tf_mtl.export import export_saved_model, next_version, saved_model as saved_model_lib, to_examples
from tf_mtl.models import build_model

SMALL = {"expert_params": {"dims": [8]}, "tower_params_list": [{"dims": [4]}, {"dims": [4]}]}


@pytest.fixture(scope="module")
def data():
    return click_conversion(500, seed=0)


def small_model(name, data):
    extra = SMALL if name in ("mmoe", "ple") else {"tower_params_list": SMALL["tower_params_list"]}
    return build_model(name, data.features, data.task_types, data.task_names, **extra)


def rows(data, n=9):
    x = {k: v[:n] for k, v in data.x.items()}
    # An unseen category and an unseen id still get scores.
    x["item_category"] = x["item_category"].copy()
    x["item_category"][0] = "never seen"
    x["user_id"] = x["user_id"].copy()
    x["user_id"][1] = 10**9
    return x


def as_tensors(x):
    return {k: tf.constant(v.astype(str) if v.dtype.kind == "O" else v) for k, v in x.items()}


@pytest.mark.parametrize("name", ["mmoe", "esmm", "ple", "aitm", "shared_bottom", "single_task"])
def test_both_signatures_match_the_model(data, tmp_path, name):
    model = small_model(name, data)
    x = rows(data)
    expected = {k: np.asarray(v).reshape(-1) for k, v in model(x, training=False).items()}
    path = export_saved_model(model, tmp_path / name)
    assert path == str(tmp_path / name / "1")
    loaded = tf.saved_model.load(path)
    by_features = loaded.signatures["serving_default"](**as_tensors(x))
    by_examples = loaded.signatures["serve_tf_examples"](examples=tf.constant(to_examples(x)))
    assert set(by_features) == set(expected) | {"score"} == set(by_examples)
    for key, value in expected.items():
        np.testing.assert_allclose(by_features[key].numpy(), value, atol=1e-6)
        np.testing.assert_allclose(by_examples[key].numpy(), value, atol=1e-6)
    # Default fusion: the mean of the task scores.
    mean = np.mean([expected[t] for t in model.task_names], axis=0)
    np.testing.assert_allclose(by_features["score"].numpy(), mean, atol=1e-6)
    assert np.all(np.isfinite(by_features["score"].numpy()))


@pytest.mark.parametrize("method", ["sum", "product"])
def test_fusion_is_computed_in_the_graph_and_changeable_after_loading(data, tmp_path, method):
    model = small_model("esmm", data)
    x = rows(data)
    out = {k: np.asarray(v, np.float64).reshape(-1) for k, v in model(x, training=False).items()}
    weights = {"ctr": 0.3, "ctcvr": 2.0}
    loaded = tf.saved_model.load(export_saved_model(model, tmp_path, fusion={"method": method, "weights": weights}))
    names = [n.decode() for n in loaded.fusion_outputs.numpy()]
    assert sorted(names) == sorted(model.output_names)
    np.testing.assert_allclose(loaded.fusion_weights.numpy(), [weights.get(n, 0.0) for n in names])

    def expected(w):
        if method == "sum":
            return sum(w.get(n, 0.0) * out[n] for n in names)
        return np.prod([np.clip(out[n], 1e-7, 1.0) ** w.get(n, 0.0) for n in names], axis=0)

    serve = loaded.signatures["serving_default"]
    np.testing.assert_allclose(serve(**as_tensors(x))["score"].numpy(), expected(weights), rtol=1e-5)
    changed = {"cvr": 1.0, "ctr": 0.5}
    loaded.fusion_weights.assign([changed.get(n, 0.0) for n in names])
    np.testing.assert_allclose(serve(**as_tensors(x))["score"].numpy(), expected(changed), rtol=1e-5)


def test_fusion_specs_are_checked(data, tmp_path):
    model = small_model("mmoe", data)
    with pytest.raises(ValueError, match="'ctrr' is not an output of the model; did you mean 'ctr'"):
        export_saved_model(model, tmp_path, fusion={"method": "sum", "weights": {"ctrr": 1.0}})
    with pytest.raises(ValueError, match="fusion.method must be one of"):
        export_saved_model(model, tmp_path, fusion={"method": "max", "weights": {"ctr": 1.0}})
    with pytest.raises(ValueError, match="unknown keys"):
        export_saved_model(model, tmp_path, fusion={"method": "sum", "weights": {"ctr": 1.0}, "bias": 1})
    assert not os.path.exists(tmp_path / "1")


def test_versions_count_up_and_are_never_overwritten(data, tmp_path):
    model = small_model("mmoe", data)
    assert next_version(tmp_path / "absent") == 1
    assert export_saved_model(model, tmp_path).endswith("1")
    assert export_saved_model(model, tmp_path).endswith("2")
    assert export_saved_model(model, tmp_path, version=10).endswith("10")
    assert next_version(tmp_path) == 11
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(model, tmp_path, version=2)
    with pytest.raises(ValueError, match="positive integer"):
        export_saved_model(model, tmp_path, version=0)


def test_a_failed_export_leaves_no_version(data, tmp_path, monkeypatch):
    model = small_model("mmoe", data)

    def failing_warmup(path, model_name, inputs):
        with open(path, "wb") as file:
            file.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(saved_model_lib, "write_warmup", failing_warmup)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, tmp_path)
    # Nothing visible, nothing left behind: the next export takes version 1.
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    assert export_saved_model(model, tmp_path).endswith("1")


def test_warmup_requests_run_on_the_loaded_model(data, tmp_path):
    model = small_model("esmm", data)
    path = export_saved_model(model, tmp_path, warmup=rows(data, 3), model_name="ranker")
    records = list(tf.data.TFRecordDataset(os.path.join(path, "assets.extra", "tf_serving_warmup_requests")))
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == ["serving_default", "serve_tf_examples"]
    loaded = tf.saved_model.load(path)
    results = []
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "ranker"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        results.append(loaded.signatures[request.model_spec.signature_name](**{k: tf.constant(v) for k, v in inputs.items()}))
    assert set(logs[0].predict_log.request.inputs) == {f.name for f in data.features}
    np.testing.assert_allclose(results[0]["score"].numpy(), results[1]["score"].numpy(), atol=1e-6)
    metadata = json.load(open(os.path.join(path, "assets.extra", "tf_mtl.json")))
    assert metadata["tasks"] == {"ctr": "classification", "cvr": "classification"}
    assert metadata["fusion"]["method"] == "sum"


def test_saved_model_cli_lists_both_signatures(data, tmp_path):
    path = export_saved_model(small_model("mmoe", data), tmp_path)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, check=True).stdout
    for name in ("serving_default", "serve_tf_examples", "inputs['examples']", "inputs['user_id']", "outputs['score']", "outputs['cvr']"):
        assert name in shown


def test_the_next_export_removes_the_partials_of_dead_writers_only(data, tmp_path):
    host, token = socket.gethostname(), "0123456789abcdef"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [f".1.{host}.{dead.pid}.{token}.partial", f".metrics.json.{host}.{dead.pid}.{token}.partial"]
    kept = [
        f".1.{host}.{os.getpid()}.{token}.partial",  # a writer still running
        f".1.{host}-other.{dead.pid}.{token}.partial",  # another host's (a shared file system)
        ".1-partial",  # not written by atomic_path
    ]
    for name in stale[:1] + kept:
        (tmp_path / name).mkdir()
    (tmp_path / stale[1]).write_text("{")
    assert next_version(tmp_path) == 1
    assert export_saved_model(small_model("mmoe", data), tmp_path).endswith("1")
    assert sorted(os.listdir(tmp_path)) == sorted(["1", *kept])
