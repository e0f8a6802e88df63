"""Sample weights and compiled metrics through fit/evaluate, as both Keras versions hand them over."""

import numpy as np
import pytest

from tf_mtl.compat import keras
from tf_mtl.features import SparseFeature
from tf_mtl.models import ESMM, SharedBottom

C = "classification"
X = {"u": np.arange(64) % 10}
Y = {"task1": (np.arange(64) % 2).astype("float32"), "task2": (np.arange(64) % 3 == 0).astype("float32")}
W = np.linspace(0.5, 2.0, 64).astype("float32")


def log_loss(y, p, w=None):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=w)


def model():
    return SharedBottom([SparseFeature("u", 10, 2)], [C, C], {"dims": [4]}, [{}, {}])


@pytest.mark.parametrize("weights", [W, W[:, None], {"task1": W, "task2": W}], ids=["flat", "column", "dict"])
def test_sample_weights_in_every_form_give_the_weighted_mean(weights):
    m = model()
    pred = m(X)
    losses = m.compute_task_losses(Y, pred, weights)
    for task in ("task1", "task2"):
        np.testing.assert_allclose(losses[task].numpy(), log_loss(Y[task], pred[task].numpy(), W), rtol=1e-5)


def test_evaluate_with_sample_weight_matches_the_hand_computation():
    m = model()
    m.compile(optimizer="adam")
    result = m.evaluate(X, Y, sample_weight=W, batch_size=64, verbose=0, return_dict=True)
    pred = m.predict(X, verbose=0)
    for task in ("task1", "task2"):
        assert result[f"{task}_loss"] == pytest.approx(log_loss(Y[task], pred[task], W), rel=1e-5)


def test_one_metric_object_becomes_one_metric_per_output():
    m = model()
    m.compile(optimizer="adam", metrics=[keras.metrics.AUC(name="auc")])
    history = m.fit(X, Y, batch_size=64, epochs=1, verbose=0)
    assert {"task1_auc", "task2_auc"} <= set(history.history)


def test_compiled_metrics_score_esmm_cvr_on_clicked_rows():
    m = ESMM([SparseFeature("u", 10, 2)], [C, C], None, [{}, {}])
    # pCVR near sigmoid(2) = 0.88 rather than 0.5, where any 0/1 label has squared error 0.25 and
    # clicked and all rows would score alike whatever the random initialization.
    m.get_layer("cvr").output_unit.bias.assign([2.0])
    m.compile(optimizer="adam", metrics={"cvr": [keras.metrics.MeanSquaredError(name="mse")]})
    click = (np.arange(64) % 2).astype("float32")
    buy = click * (np.arange(64) % 4 == 1)
    result = m.evaluate(X, {"ctr": click, "cvr": buy}, batch_size=64, verbose=0, return_dict=True)
    scores = m.predict(X, verbose=0)["cvr"]
    clicked = click > 0
    assert result["cvr_mse"] == pytest.approx(np.mean((buy[clicked] - scores[clicked]) ** 2), rel=1e-5)
    assert result["cvr_mse"] != pytest.approx(np.mean((buy - scores) ** 2), rel=1e-3)
