"""SavedModels run by TensorFlow's C++ loader, the one TF Serving uses, through the C API.

``_capi.py`` runs in a child process that never imports TensorFlow Python: it loads the
SavedModel with ``TF_LoadSessionFromSavedModel`` (tag ``serve``) from the wheel's
``libtensorflow_cc.so.2`` and feeds the graph tensors the SignatureDef names, as TF Serving's
Predict does. Its outputs must match ``tf.saved_model.load(path).signatures[...]``.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

# TensorFlow's C++ start-up chatter hides test output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tf_mtl.data import click_conversion
from tf_mtl.export import export_saved_model
from tf_mtl.export.saved_model import SCORE, WARMUP_FILE
from tf_mtl.features import SequenceFeature
from tf_mtl.models import build_model

CAPI = Path(__file__).with_name("_capi.py")
LIBRARY = os.path.join(os.path.dirname(tf.__file__), "libtensorflow_cc.so.2")
SIGNATURES = ("serving_default", "serve_tf_examples")
TOWERS = [{"dims": [4]}, {"dims": [4]}]
MODELS = {
    "mmoe": ({"n_expert": 2, "expert_params": {"dims": [8]}}, {"method": "sum", "weights": {"ctr": 1.0, "cvr": 0.5}}),
    "esmm": ({}, {"method": "product", "weights": {"ctr": 1.0, "ctcvr": 2.0}}),
    "ple": ({"n_expert_specific": 1, "n_expert_shared": 1, "expert_params": {"dims": [8]}}, None),
    "aitm": ({}, {"method": "product", "weights": {"ctr": 0.5, "cvr": 1.0}}),
    "shared_bottom": ({}, None),
    "single_task": ({}, {"method": "sum", "weights": {"cvr": 1.0}}),
}
# Longer than the 22 bytes a TF_TString holds inline: the C API allocates these on the heap.
LONG = "a category nobody has seen, long enough for the heap"


def _load_capi():
    spec = importlib.util.spec_from_file_location("capi", CAPI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


capi = _load_capi()


def signature_spec(path, name):
    """The graph tensors, dtypes and shapes of signature ``name``, read from saved_model.pb."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(Path(path, "saved_model.pb").read_bytes())
    (meta_graph,) = [m for m in saved_model.meta_graphs if "serve" in m.meta_info_def.tags]
    signature = meta_graph.signature_def[name]

    def tensor(info):
        shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
        return {"name": info.name, "dtype": tf.as_dtype(info.dtype).name, "shape": shape}

    return {
        "library": LIBRARY,
        "inputs": {key: tensor(info) for key, info in signature.inputs.items()},
        "outputs": {key: tensor(info) for key, info in signature.outputs.items()},
    }


def run_capi(path, spec, inputs, workdir):
    """Runs ``_capi.py`` on ``inputs``; returns its outputs and the CompletedProcess."""
    workdir.mkdir(exist_ok=True)
    spec_path, inputs_path, outputs_path = workdir / "spec.json", workdir / "inputs.npz", workdir / "outputs.npz"
    spec_path.write_text(json.dumps(spec))
    capi.save_arrays(inputs_path, inputs)
    child = subprocess.run(
        [sys.executable, str(CAPI), str(path), str(spec_path), str(inputs_path), str(outputs_path)],
        capture_output=True, text=True, timeout=120,
    )
    return (capi.load_arrays(outputs_path) if child.returncode == 0 else None), child


def run_signature_in_c(path, signature, inputs, workdir):
    outputs, child = run_capi(path, signature_spec(path, signature), inputs, workdir)
    assert child.returncode == 0, f"{signature}: the C API child failed:\n{child.stderr[-4000:]}"
    # Printed after the run: TensorFlow Python was never imported in the child.
    assert child.stdout.splitlines()[-1] == "CAPI_OK []"
    return outputs


def run_signature_in_python(path, signature, inputs):
    function = tf.saved_model.load(str(path)).signatures[signature]
    return {key: value.numpy() for key, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def assert_same_outputs(actual, expected, what):
    assert sorted(actual) == sorted(expected), what
    for key in expected:
        assert actual[key].dtype == expected[key].dtype, f"{what}: {key}"
        if expected[key].dtype == object:
            assert actual[key].tolist() == expected[key].tolist(), f"{what}: {key}"
        else:
            np.testing.assert_allclose(actual[key], expected[key], rtol=0, atol=1e-6, err_msg=f"{what}: {key}")


def serialize_examples(inputs, features):
    """One ``tf.Example`` per row, as a client writes them: sequences without their padding."""
    sequences = {f.name: f.padding_value for f in features if isinstance(f, SequenceFeature)}
    examples = []
    for i in range(len(next(iter(inputs.values())))):
        feature = {}
        for name, column in inputs.items():
            values = np.asarray(column[i], dtype=column.dtype).reshape(-1)
            if name in sequences:
                values = values[values != sequences[name]]
            if values.dtype == object:
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
            elif values.dtype == np.int64:
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))
            else:
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        examples.append(example.SerializeToString())
    return np.array(examples, dtype=object)


def ranking_data(n=16):
    """click_conversion rows (int64 ids, string vocabulary features, a string sequence,
    dense floats) with an unknown id and unknown, heap-sized strings among them."""
    data = click_conversion(n, embed_dim=3, max_len=4)
    x = {name: values.copy() for name, values in data.x.items()}
    x["user_id"][0] = 5000
    x["item_category"][1] = LONG
    x["clicked_categories"][2] = ["cat_03", LONG, "", ""]
    return data, x


class Toy(tf.Module):
    """A dict of int64/float32/string tensors in; a vocabulary table the init op fills."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable([[0.5], [2.0]])
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(["a", LONG], [10.0, 20.0]), default_value=-1.0
        )

    @tf.function(
        input_signature=[{
            "i": tf.TensorSpec([None], tf.int64, name="i"),
            "f": tf.TensorSpec([None, 2], tf.float32, name="f"),
            "s": tf.TensorSpec([None], tf.string, name="s"),
        }]
    )
    def serve(self, x):
        return {
            "y": tf.matmul(x["f"], self.w)[:, 0] + self.table.lookup(x["s"]),
            "i2": x["i"] * 2,
            "n": tf.cast(tf.strings.length(x["s"]), tf.int64),
            "s": x["s"],
        }


def test_a_tf_function_savedmodel_runs_in_the_c_api_exactly(tmp_path):
    toy = Toy()
    path = tmp_path / "toy"
    tf.saved_model.save(toy, str(path), signatures={"serving_default": toy.serve})
    strings = np.array([b"a", LONG.encode(), b"nul\x00inside\x00", b""], dtype=object)
    inputs = {"i": np.array([-3, 0, 7, 2**40]), "f": np.arange(8, dtype=np.float32).reshape(4, 2), "s": strings}
    outputs = run_signature_in_c(path, "serving_default", inputs, tmp_path / "run")
    np.testing.assert_array_equal(outputs["y"], np.float32([12.0, 27.0, 11.0, 16.0]))
    np.testing.assert_array_equal(outputs["i2"], [-6, 0, 14, 2**41])
    np.testing.assert_array_equal(outputs["n"], [1, len(LONG), 11, 0])
    assert outputs["s"].tolist() == strings.tolist()
    assert_same_outputs(outputs, run_signature_in_python(path, "serving_default", inputs), "toy")


def test_the_c_api_child_reports_a_missing_graph_tensor(tmp_path):
    toy = Toy()
    tf.saved_model.save(toy, str(tmp_path / "toy"), signatures={"serving_default": toy.serve})
    spec = signature_spec(tmp_path / "toy", "serving_default")
    spec["outputs"] = {"y": {"name": "no_such_op:0", "dtype": "float32", "shape": [-1]}}
    inputs = {"i": np.int64([1]), "f": np.float32([[1, 2]]), "s": np.array([b"a"], dtype=object)}
    outputs, child = run_capi(tmp_path / "toy", spec, inputs, tmp_path / "run")
    assert outputs is None and child.returncode != 0
    assert "no operation 'no_such_op'" in child.stderr


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_model_serves_both_signatures_through_the_c_api(name, tmp_path):
    overrides, fusion = MODELS[name]
    data, x = ranking_data()
    model = build_model(name, data.features, list(data.task_types), list(data.task_names), tower_params_list=TOWERS, **overrides)
    path = export_saved_model(model, tmp_path / name, fusion=fusion)
    requests = {"serving_default": x, "serve_tf_examples": {"examples": serialize_examples(x, data.features)}}
    results = {}
    for signature, inputs in requests.items():
        results[signature] = run_signature_in_c(path, signature, inputs, tmp_path / signature)
        assert sorted(results[signature]) == sorted([*model.output_names, SCORE])
        for key, value in results[signature].items():
            assert value.dtype == np.float32 and value.shape == (len(x["user_id"]),), f"{signature}: {key}"
        assert_same_outputs(results[signature], run_signature_in_python(path, signature, inputs), f"{name} {signature}")
    assert_same_outputs(results["serve_tf_examples"], results["serving_default"], f"{name}: tf.Examples vs raw features")
    in_memory = model(x, training=False)
    for key in model.output_names:
        expected = np.reshape(in_memory[key], [-1])
        np.testing.assert_allclose(results["serving_default"][key], expected, rtol=0, atol=1e-6, err_msg=f"{name}: {key}")


def test_tf_serving_warmup_requests_run_in_the_c_api(tmp_path):
    """TF Serving replays assets.extra's warmup records on load and refuses the model if one fails."""
    data, _ = ranking_data()
    overrides, fusion = MODELS["mmoe"]
    model = build_model("mmoe", data.features, list(data.task_types), list(data.task_names), tower_params_list=TOWERS, **overrides)
    path = export_saved_model(model, tmp_path / "mmoe", fusion=fusion)
    records = tf.data.TFRecordDataset(os.path.join(path, "assets.extra", WARMUP_FILE))
    signatures = []
    for i, record in enumerate(records):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        signature = request.model_spec.signature_name
        outputs = run_signature_in_c(path, signature, inputs, tmp_path / f"warmup{i}")
        assert_same_outputs(outputs, run_signature_in_python(path, signature, inputs), f"warmup {signature}")
        signatures.append(signature)
    assert sorted(signatures) == sorted(SIGNATURES)
