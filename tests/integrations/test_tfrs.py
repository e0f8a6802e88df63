"""tf_mtl models as TensorFlow Recommenders models (``tf_mtl.integrations.tfrs``).

TensorFlow Recommenders runs on Keras 2 only: the module is skipped on Keras 3 and runs in
CI's ``TF_USE_LEGACY_KERAS=1`` step, where the package must be installed.

Losses are checked against the formulas computed by hand from the model's outputs; learning
on ``click_conversion`` (20,000 training impressions, seed 0), whose two-epoch click AUC is
about 0.65 for every model (see ``tests/models/test_learning.py``).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import LEGACY_KERAS

if not LEGACY_KERAS:
    pytest.skip("TensorFlow Recommenders needs TF_USE_LEGACY_KERAS=1", allow_module_level=True)

import tensorflow_recommenders as tfrs

from tf_mtl.compat import keras
from tf_mtl.data import click_conversion
from tf_mtl.integrations.tfrs import MultiTaskRanking
from tf_mtl.models import build_model
from tf_mtl.weighting import METHODS

C, R = "classification", "regression"
EPSILON = 1e-7
SMALL = {"mmoe": {"expert_params": {"dims": [32]}}, "esmm": {}, "aitm": {"bottom_params": {"dims": [32]}}}


def bce(labels, probabilities):
    """Keras' binary cross-entropy of probabilities, per example."""
    p = np.clip(probabilities, EPSILON, 1 - EPSILON)
    return -(labels * np.log(p + EPSILON) + (1 - labels) * np.log(1 - p + EPSILON))


def as_dataset(data, rows, batch_size=256):
    return tf.data.Dataset.from_tensor_slices({k: v[rows] for k, v in {**data.x, **data.y}.items()}).batch(batch_size)


@pytest.fixture(scope="module")
def data():
    return click_conversion(24_000, seed=0)


@pytest.fixture
def batch(data):
    """64 rows with clicks and conversions in them, features and labels as tensors."""
    rows = np.arange(64)
    assert data.y["ctr"][rows].sum() > 3 and data.y["cvr"][rows].sum() > 0
    return {k: tf.constant(v[rows]) for k, v in {**data.x, **data.y}.items()}


def wrap(data, name, weighting=None, task_types=None, **compile_kwargs):
    keras.utils.set_random_seed(0)
    model = build_model(name, data.features, task_types or data.task_types, data.task_names, **SMALL[name])
    ranking = MultiTaskRanking(model, weighting=weighting)
    ranking.compile(optimizer=keras.optimizers.Adam(3e-3), **compile_kwargs)
    return ranking


def features_of(data, batch):
    return {f.name: batch[f.name] for f in data.features}


def test_esmm_fixed_weights_tuple_inputs_with_sample_weights(data, batch):
    ranking = wrap(data, "esmm", {"method": "fixed", "weights": {"ctr": 0.5, "ctcvr": 2.0}})
    assert isinstance(ranking, tfrs.models.Model)
    assert all(isinstance(t, tfrs.tasks.Ranking) for t in ranking.ranking_tasks.values())
    # ESMM's contract: the loss trains ctr and ctcvr, the metrics score cvr too.
    assert sorted(ranking.ranking_tasks) == ["ctcvr", "ctr", "cvr"]
    features = features_of(data, batch)
    weights = np.linspace(0.5, 2.0, 64).astype("float32")
    labels = {"ctr": batch["ctr"], "cvr": batch["cvr"]}
    loss = ranking.compute_loss((features, labels, tf.constant(weights)), training=True)

    outputs = {k: v.numpy().reshape(-1) for k, v in ranking.multitask_model(features).items()}
    click, conversion = batch["ctr"].numpy(), batch["cvr"].numpy()
    ctr_loss = np.sum(weights * bce(click, outputs["ctr"])) / weights.sum()
    ctcvr_loss = np.sum(weights * bce(click * conversion, outputs["ctcvr"])) / weights.sum()
    np.testing.assert_allclose(loss.numpy(), 0.5 * ctr_loss + 2.0 * ctcvr_loss, rtol=1e-5)


def test_esmm_scores_cvr_on_clicked_rows(data, batch):
    ranking = wrap(data, "esmm")
    ranking.compute_loss(batch, training=False)
    outputs = ranking.multitask_model(features_of(data, batch))
    clicked = batch["ctr"].numpy() > 0.5
    expected = keras.metrics.AUC()
    expected.update_state(batch["cvr"].numpy()[clicked], outputs["cvr"].numpy().reshape(-1)[clicked])
    reported = {m.name: m.result().numpy() for m in ranking.metrics}
    np.testing.assert_allclose(reported["cvr_auc"], expected.result().numpy(), rtol=1e-6)


def test_uwl_is_kendall_on_dict_inputs(data, batch):
    ranking = wrap(data, "mmoe", "uwl", task_types=[C, R])
    s = np.array([0.3, -0.4], "float32")
    ranking.weighting.log_variance.assign(s)
    loss = ranking.compute_loss(batch, training=True)

    outputs = {k: v.numpy().reshape(-1) for k, v in ranking.multitask_model(features_of(data, batch)).items()}
    ctr_loss = bce(batch["ctr"].numpy(), outputs["ctr"]).mean()
    cvr_loss = np.square(batch["cvr"].numpy() - outputs["cvr"]).mean()
    expected = np.exp(-s[0]) * ctr_loss + 0.5 * s[0] + 0.5 * np.exp(-s[1]) * cvr_loss + 0.5 * s[1]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
    assert {m.name for m in ranking.metrics} == {"ctr_auc", "cvr_rmse", "loss", "regularization_loss", "total_loss"}


def test_aitm_adds_its_calibration_loss(data, batch):
    ranking = wrap(data, "aitm")
    loss = ranking.compute_loss(batch, training=False)

    outputs = {k: v.numpy().reshape(-1) for k, v in ranking.multitask_model(features_of(data, batch)).items()}
    task_losses = sum(bce(batch[n].numpy(), outputs[n]).mean() for n in ("ctr", "cvr"))
    calibration = ranking.multitask_model.calibration_weight * np.maximum(outputs["cvr"] - outputs["ctr"], 0).mean()
    assert calibration > 0
    np.testing.assert_allclose(loss.numpy(), task_losses + calibration, rtol=1e-5)


@pytest.mark.parametrize("name, weighting", [("mmoe", "uwl"), ("esmm", None), ("esmm", "gradnorm")])
def test_fit_learns_and_reports_tfrs_metrics(data, name, weighting):
    train, test = as_dataset(data, np.arange(20_000)), as_dataset(data, np.arange(20_000, 24_000))
    ranking = wrap(data, name, weighting)
    initial = [v.numpy().copy() for v in ranking.weighting.trainable_variables]
    history = ranking.fit(train, epochs=2, verbose=0)
    scores = ranking.evaluate(test, return_dict=True, verbose=0)
    print(name, weighting, {k: round(v, 4) for k, v in scores.items()})

    aucs = ["ctr_auc", "cvr_auc"] + (["ctcvr_auc"] if name == "esmm" else [])
    assert set(aucs + ["loss", "regularization_loss", "total_loss"]) <= set(history.history) & set(scores)
    assert scores["ctr_auc"] > 0.6
    assert np.isfinite(scores["loss"])
    if weighting == "uwl":
        (log_variance,) = ranking.weighting.trainable_variables
        assert np.abs(log_variance.numpy() - initial[0]).min() > 1e-3


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"fixed", "uwl"}))
def test_every_weighting_trains(data, method):
    ranking = wrap(data, "mmoe", method)
    before = [v.numpy().copy() for v in ranking.multitask_model.trainable_variables]
    history = ranking.fit(as_dataset(data, np.arange(512), batch_size=128), epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = [not np.allclose(b, v.numpy()) for b, v in zip(before, ranking.multitask_model.trainable_variables)]
    assert all(changed)
    if method == "dwa":
        # DWA's weights leave 1 after two finished epochs, told by fit's end-of-epoch callback.
        assert not np.allclose(ranking.weighting.current_weights().numpy(), 1.0)


def test_compute_loss_refuses_gradient_weightings(data, batch):
    ranking = wrap(data, "mmoe", "gradnorm")
    with pytest.raises(ValueError, match="GradNorm weighs per-term gradients"):
        ranking.compute_loss(batch, training=True)
    assert np.isfinite(ranking.compute_loss(batch, training=False).numpy())


def test_batch_errors_name_what_is_missing(data, batch):
    ranking = wrap(data, "esmm")
    with pytest.raises(KeyError, match="lacks the features \\['user_id'\\]"):
        ranking.compute_loss({k: v for k, v in batch.items() if k != "user_id"})
    with pytest.raises(KeyError, match="Labels lack the tasks \\['cvr'\\]"):
        ranking.compute_loss({k: v for k, v in batch.items() if k != "cvr"})


def test_keras_3_gets_an_import_error_and_the_package_imports_no_tfrs():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = (
        "import sys, tf_mtl.integrations\n"
        "assert 'tensorflow_recommenders' not in sys.modules\n"
        "try:\n"
        "    import tf_mtl.integrations.tfrs\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Set TF_USE_LEGACY_KERAS=1" in result.stdout
