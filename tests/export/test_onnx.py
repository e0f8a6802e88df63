import os

# TensorFlow's C++ start-up chatter hides test output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
import tf2onnx

import tf_mtl.export.onnx as onnx_export
from tf_mtl import files
from tf_mtl.export import export_onnx
from tf_mtl.features import DenseFeature, FeatureEmbedding, SequenceFeature, SparseFeature, keras_inputs
from tf_mtl.models import ESMM, MultiTaskModel, build_model
from tf_mtl.tasks import make_tasks

C, R = "classification", "regression"
VOCAB = [3, 7, 11, 2, 100, 55, 8]
# Every kind of integer feature: OOV buckets, an integer vocabulary, a sequence sharing its table,
# plain and normalized dense values.
FEATURES = (
    SparseFeature("user", 50, 4, num_oov_buckets=3),
    SparseFeature("item", None, 4, vocabulary=VOCAB, num_oov_buckets=2),
    SequenceFeature("history", None, 4, "mean", 5, vocabulary=VOCAB, num_oov_buckets=2, shared_embed_name="item"),
    SequenceFeature("tags", 20, 3, "max", 4),
    DenseFeature("price", mean=10.0, std=5.0),
    DenseFeature("stats", 3, min_value=0.0, max_value=2.0),
)
SMALL = {"dims": [8]}
TOWERS = [{"dims": [4]}, {"dims": [4]}]
MODELS = {
    "mmoe": lambda: build_model(
        "mmoe", FEATURES, [C, R], n_expert=3, gate_dropout=0.3, tower_params_list=TOWERS,
        expert_params={"dims": [8], "dropout": 0.5, "batch_norm": True},
    ),
    "esmm": lambda: ESMM(FEATURES, [C, C], SMALL, TOWERS),
    "ple": lambda: build_model(
        "ple", FEATURES, [C, C], n_level=2, expert_params=SMALL, tower_params_list=TOWERS, task_names=["click", "like"]
    ),
    "aitm": lambda: build_model("aitm", FEATURES, [C, C, C], bottom_params=SMALL, tower_params_list=TOWERS + [{}]),
    "shared_bottom": lambda: build_model("shared_bottom", FEATURES, [C, R], bottom_params=SMALL, tower_params_list=TOWERS),
    "single_task": lambda: build_model("single_task", FEATURES, [C, C], bottom_params=SMALL, tower_params_list=TOWERS),
}


def raw_inputs(n, seed=0):
    """Raw feature values with unknown, negative and padding ids among the known ones."""
    rng = np.random.default_rng(seed)
    ids = np.array(VOCAB + [-9, -4, -3, 0, 1, 4, 99, 101, 1000])
    return {
        "user": rng.integers(-10, 60, n),
        "item": rng.choice(ids, n),
        "history": rng.choice(ids[ids != 0].tolist() + [0, 0], (n, 5)),
        "tags": rng.integers(-3, 25, (n, 4)) * rng.integers(0, 2, (n, 4)),
        "price": rng.normal(10, 5, n).astype("float32"),
        "stats": rng.uniform(-1, 3, (n, 3)).astype("float32"),
    }


def perturb_weights(model, seed=0):
    """Moves every weight off its initial value, so that batch-norm statistics count."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        values = np.asarray(weight)
        weight.assign(values + rng.normal(0, 0.1, values.shape).astype(values.dtype))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_outputs_match_the_model_for_any_batch_size(name, tmp_path):
    model = MODELS[name]()
    perturb_weights(model)
    path = str(tmp_path / f"{name}.onnx")
    assert export_onnx(model, path) == path
    session = onnxruntime.InferenceSession(path)
    assert [i.name for i in session.get_inputs()] == [f.name for f in FEATURES]
    for graph_input in session.get_inputs():
        assert isinstance(graph_input.shape[0], str), f"{graph_input.name}: batch dimension is fixed"
    for n in (1, 37):
        x = raw_inputs(n, seed=n)
        expected = {k: v.numpy() for k, v in model(x, training=False).items()}
        assert [o.name for o in session.get_outputs()] == sorted(expected)
        got = dict(zip(sorted(expected), session.run(None, x)))
        for output, value in expected.items():
            assert got[output].shape == (n,)
            np.testing.assert_allclose(got[output], value, rtol=0, atol=1e-5, err_msg=f"{name}: {output}")


def test_esmm_exports_its_ctcvr_output(tmp_path):
    model = ESMM(FEATURES[:1], [C, C], None, TOWERS, task_names=["click", "buy"])
    session = onnxruntime.InferenceSession(export_onnx(model, str(tmp_path / "esmm.onnx")))
    assert [o.name for o in session.get_outputs()] == ["buy", "click", "ctcvr"]
    click, buy, ctcvr = (session.run([name], {"user": np.arange(-3, 6)})[0] for name in ("click", "buy", "ctcvr"))
    np.testing.assert_allclose(ctcvr, click * buy, rtol=1e-6)


def test_integer_vocabulary_lookup_gives_the_same_rows(tmp_path):
    """Vocabularies of 1 to 9 values (powers of two and not) pick exactly the rows TensorFlow does."""
    features = tuple(
        SparseFeature(f"ids{size}", None, 2, vocabulary=list(range(5, 5 + 3 * size, 3)), num_oov_buckets=3)
        for size in (1, 2, 3, 4, 5, 8, 9)
    )
    inputs = keras_inputs(features)
    outputs = {"embedding": FeatureEmbedding(features)(inputs)}
    model = MultiTaskModel(inputs, outputs, features, make_tasks([R], ["embedding"]), config={})
    session = onnxruntime.InferenceSession(export_onnx(model, str(tmp_path / "ids.onnx")))
    values = np.arange(-4, 35)
    x = {f.name: values for f in features}
    np.testing.assert_array_equal(session.run(None, x)[0], model(x, training=False)["embedding"].numpy())


def test_opset_is_passed_to_the_converter(tmp_path):
    model = build_model("shared_bottom", FEATURES[:1], [C], bottom_params=SMALL, tower_params_list=[{}])
    proto = onnx.load(export_onnx(model, str(tmp_path / "m.onnx"), opset=13))
    assert {o.domain: o.version for o in proto.opset_import}[""] == 13


@pytest.mark.parametrize(
    "feature, how",
    [
        (SparseFeature("city", None, 3, vocabulary=["paris", "rome"]), "looked up in its vocabulary"),
        (SequenceFeature("queries", 100, 3, "sum", 4, dtype="string"), "hashed"),
    ],
)
def test_string_features_are_refused_by_name_and_leave_no_file(feature, how, tmp_path):
    model = build_model("mmoe", [FEATURES[0], feature], [C, C], n_expert=2, expert_params=SMALL, tower_params_list=TOWERS)
    with pytest.raises(ValueError, match=f"Feature '{feature.name}' cannot be exported to ONNX: its string ids are {how}"):
        export_onnx(model, str(tmp_path / "m.onnx"))
    assert os.listdir(tmp_path) == []


def test_an_op_without_onnx_equivalent_is_named_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "_HANDLERS", {})
    model = build_model("shared_bottom", FEATURES[1:2], [C], bottom_params=SMALL, tower_params_list=[{}])
    with pytest.raises(ValueError, match=r"no ONNX operator for the TensorFlow ops \['LowerBound'\]"):
        export_onnx(model, str(tmp_path / "m.onnx"))
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous export")
    model = build_model("shared_bottom", FEATURES[:1], [C], bottom_params=SMALL, tower_params_list=[{}])

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        export_onnx(model, str(path))
    assert os.listdir(tmp_path) == ["m.onnx"]
    assert path.read_bytes() == b"previous export"


def test_file_gets_the_permissions_open_would_give(tmp_path):
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    model = build_model("shared_bottom", FEATURES[:1], [C], bottom_params=SMALL, tower_params_list=[{}])
    path = export_onnx(model, str(tmp_path / "m.onnx"))
    assert os.stat(path).st_mode & 0o777 == reference.stat().st_mode & 0o777


@pytest.mark.parametrize("dtype", [tf.int64, tf.float32])
def test_floor_mod_takes_the_sign_of_the_divisor(dtype):
    """tf2onnx alone turns integer floormod(-3, 2) into -1; TensorFlow gives 1."""
    spec = tf.TensorSpec([None], dtype, name="x")

    @tf.function(input_signature=[spec])
    def floor_mod(x):
        return {"mod": tf.math.floormod(x, tf.constant(3, dtype))}

    proto, _ = tf2onnx.convert.from_function(floor_mod, [spec], custom_op_handlers=onnx_export._HANDLERS)
    x = np.arange(-7, 8).astype(dtype.as_numpy_dtype)
    got = onnxruntime.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, np.mod(x, 3))
