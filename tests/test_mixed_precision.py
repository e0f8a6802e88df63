"""Mixed precision: bfloat16 (CPU AMX / AVX-512 BF16) and float16 with dynamic loss scaling."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import LEGACY_KERAS, keras, loss_scale, mixed_precision, with_policy
from tf_mtl.data import DataGenerator, click_conversion
from tf_mtl.features import DenseFeature, FeatureEmbedding, SparseFeature
from tf_mtl.metrics import evaluate
from tf_mtl.models import build_model
from tf_mtl.trainers import MTLTrainer


def _global_policy():
    return keras.mixed_precision.global_policy().name if LEGACY_KERAS else keras.config.dtype_policy().name


@pytest.fixture(scope="module")
def data():
    generated = click_conversion(20_000, seed=0)
    loaders = DataGenerator(generated.x, generated.y).generate_dataloader(split_ratio=[0.8, 0.1], batch_size=512)
    return generated, loaders


def test_the_policy_applies_inside_the_block_only(data):
    generated, _ = data
    before = _global_policy()
    with mixed_precision("mixed_bfloat16"):
        model = build_model("esmm", generated.features, generated.task_types, generated.task_names)
    assert _global_policy() == before
    assert model.compute_dtype == "bfloat16"
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    # Scores come out in float32: a bfloat16 sigmoid would round them to ~3 digits.
    outputs = model({k: v[:8] for k, v in generated.x.items()})
    assert {k: v.dtype for k, v in outputs.items()} == {"ctr": tf.float32, "cvr": tf.float32, "ctcvr": tf.float32}


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training_learns(data, tmp_path, policy):
    generated, (train, val, test) = data
    keras.utils.set_random_seed(0)
    with mixed_precision(policy):
        model = build_model("mmoe", generated.features, generated.task_types, generated.task_names, )
    trainer = MTLTrainer(model, adaptive_params="uwl", n_epoch=2, model_path=str(tmp_path), verbose=0)
    scaled = isinstance(trainer.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
    if scaled:
        assert float(loss_scale(trainer.optimizer)) > 1.0
    history = trainer.fit(train, val)
    assert all(np.isfinite(r["train"]["loss"]) for r in history)
    assert evaluate(model, test)["ctr"]["auc"] > 0.62


def test_embedding_tables_are_gathered_not_cast_whole(data):
    generated, _ = data
    with mixed_precision("mixed_bfloat16"):
        model = build_model("mmoe", generated.features, generated.task_types, generated.task_names)
    batch = {k: tf.constant(v[:8]) for k, v in generated.x.items()}
    graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(batch).graph
    table_shapes = {tuple(v.shape) for v in model.embedding_trainable_variables}
    casts = [op for op in graph.get_operations() if op.type == "Cast"]
    # One cast of the concatenated features; none of a whole table (a copy of every row a step).
    assert not [op.name for op in casts if tuple(op.inputs[0].shape) in table_shapes]
    assert sum(op.outputs[0].dtype == tf.bfloat16 and "feature_embedding" in op.name for op in casts) == 1


def test_dense_values_are_normalized_before_the_cast():
    with mixed_precision("mixed_bfloat16"):
        layer = FeatureEmbedding([SparseFeature("user", 10, 2), DenseFeature("price", mean=1200.0, std=1.0)])
    out = layer({"user": tf.constant([1]), "price": tf.constant([1234.5])})
    assert out.dtype == tf.bfloat16
    # 34.5 is exact in bfloat16; 1234.5 is not (1232), so casting first would give 32.
    assert float(tf.cast(out, tf.float32)[0, -1]) == 34.5


def test_with_policy_copies_the_weights_into_the_other_precision(data):
    generated, _ = data
    with mixed_precision("mixed_bfloat16"):
        model = build_model("ple", generated.features, generated.task_types, generated.task_names)
    rng = np.random.default_rng(0)
    # Weights far from their initial values, so that a weight copied to the wrong place shows.
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    batch = {k: v[:256] for k, v in generated.x.items()}
    copy = with_policy(model, "float32")
    assert copy.compute_dtype == "float32" and model.compute_dtype == "bfloat16"
    ours, theirs = model(batch), copy(batch)
    # Rebuilt in bfloat16 again: every weight is back in its place, so the scores are the same.
    again = with_policy(copy, "mixed_bfloat16")(batch)
    for task in generated.task_names:
        np.testing.assert_allclose(again[task], ours[task], rtol=1e-6)
        # In float32, the same scores to bfloat16's precision (8 bits of mantissa in the products).
        np.testing.assert_allclose(ours[task], theirs[task], atol=0.02)
