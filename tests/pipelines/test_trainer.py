"""``run_fn`` called the way a TFX Trainer calls it."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipelines.example_gen import ExampleGen, Source
from pipelines.runner import run_pipeline
from pipelines.trainer import make_dataset, run_fn
from tests.pipelines.conftest import TASKS
from tf_mtl.compat import keras
from tf_mtl.features import DenseFeature, SequenceFeature, SparseFeature, features_to_config
import tf_mtl.models  # noqa: F401  (registers tf_mtl's classes for load_model)

FEATURES = (
    SparseFeature("user_id", 1000, 4),
    SparseFeature("item_category", None, 4, vocabulary=[f"cat_{i:02d}" for i in range(20)], shared_embed_name="category"),
    SequenceFeature("clicked_categories", None, 4, "mean", 10, vocabulary=[f"cat_{i:02d}" for i in range(20)], shared_embed_name="category"),
    DenseFeature("item_price", mean=25.0, std=10.0),
    DenseFeature("position", mean=10.0, std=5.0),
)


@pytest.fixture(scope="module")
def examples(tmp_path_factory, small_frame):
    root = tmp_path_factory.mktemp("examples")
    step = ExampleGen(Source(frame=small_frame), key="impression_id", list_columns={"clicked_categories": "|"})
    return run_pipeline([step], root, log=lambda _: None)[0].artifact.path


def _fn_args(examples, out, **custom):
    """An object with exactly the attributes of TFX's ``FnArgs``."""
    return types.SimpleNamespace(
        working_dir=str(out / "working"),
        train_files=[os.path.join(examples, "Split-train", "*")],
        eval_files=[os.path.join(examples, "Split-eval", "*")],
        train_steps=20,
        eval_steps=None,
        schema_path=None,
        schema_file=None,
        transform_graph_path=None,
        transform_output=None,
        data_accessor=None,
        serving_model_dir=str(out / "serving_model_dir"),
        eval_model_dir=str(out / "eval_model_dir"),
        model_run_dir=str(out / "model_run_dir"),
        base_model=None,
        hyperparameters={"space": [], "values": {"model.params.expert_params.dims": "[16]", "training.optimizer.lr": 0.003}},
        custom_config={
            "name": "ranker",
            "features": features_to_config(FEATURES),
            "defaults": {"item_price": 25.0},
            "tasks": TASKS,
            "model": {"name": "mmoe", "params": {"n_expert": 2, "expert_params": {"dims": [64]}}},
            "training": {"epochs": 2, "batch_size": 128, "weighting": {"method": "uwl"}, "loss_masks": {"cvr": "ctr"}},
            **custom,
        },
    )


def test_run_fn_called_as_tfx_does_trains_and_exports(examples, tmp_path):
    fn_args = _fn_args(examples, tmp_path, fusion={"method": "product", "weights": {"ctr": 1.0, "cvr": 0.5}})
    summary = run_fn(fn_args)
    assert summary["epochs"] == 2 and set(summary["val"]) >= {"ctr/auc", "cvr/auc"}
    history = json.load(open(os.path.join(fn_args.model_run_dir, "history.json")))
    assert len(history) == 2
    # The hyperparameters reached the model: experts of width 16, not the config's 64.
    model = keras.models.load_model(os.path.join(fn_args.model_run_dir, "model.keras"))
    assert [w.shape for w in model.trainable_weights if "expert" in getattr(w, "path", w.name) and "kernel" in getattr(w, "path", w.name)][0][-1] == 16
    # The SavedModel in serving_model_dir gives the Keras model's scores on raw values.
    data = make_dataset(fn_args.eval_files, FEATURES, TASKS, {"item_price": 25.0}, batch_size=64)
    x, _ = next(iter(data))
    served = tf.saved_model.load(fn_args.serving_model_dir).signatures["serving_default"](**x)
    expected = model(x, training=False)
    for name in ("ctr", "cvr"):
        np.testing.assert_allclose(served[name].numpy(), np.reshape(expected[name], -1), rtol=1e-5, atol=1e-6)
    fused = served["ctr"].numpy() * served["cvr"].numpy() ** 0.5
    np.testing.assert_allclose(served["score"].numpy(), fused, rtol=1e-4)
    assert os.path.exists(os.path.join(fn_args.serving_model_dir, "assets.extra", "tf_serving_warmup_requests"))


def test_run_fn_searches_the_fusion_on_the_eval_files(examples, tmp_path):
    fn_args = _fn_args(examples, tmp_path, fusion={"method": "sum", "search": {"metric": "auc:ctr", "grid_step": 0.5}})
    summary = run_fn(fn_args)
    assert summary["fusion"]["method"] == "sum" and set(summary["fusion"]["weights"]) == {"ctr", "cvr"}
    # The grid holds ctr alone (cvr weight 0), whose AUC the validation reported.
    assert summary["fusion_search"]["score"] >= summary["val"]["ctr/auc"] - 1e-6


def test_run_fn_needs_a_feature_spec(examples, tmp_path):
    fn_args = _fn_args(examples, tmp_path)
    del fn_args.custom_config["features"]
    with pytest.raises(ValueError, match="no feature spec"):
        run_fn(fn_args)


def test_missing_values_take_the_defaults_and_int_columns_feed_dense_features(examples):
    files = [os.path.join(examples, "Split-train", "*")]
    x, y = next(iter(make_dataset(files, FEATURES, TASKS, {"item_price": -1.0}, batch_size=4000)))
    assert x["position"].dtype == tf.float32 and x["clicked_categories"].shape[1] == 10
    price = x["item_price"].numpy()
    assert (price == -1.0).sum() > 0 and (price[price != -1.0] > 0).all()
    assert set(np.unique(y["ctr"].numpy())) == {0.0, 1.0}


def test_run_fn_trains_under_the_strategy_the_config_names(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("_mirrored_run_fn.py")), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["replicas"] == {"default": 1, "mirrored": 2}
    # Two replicas train as one device does (see tests/training/test_distributed.py).
    assert result["spread"] > 1e-3 and result["difference"] < 1e-4
