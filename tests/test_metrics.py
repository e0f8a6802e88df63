import itertools

import numpy as np
import pytest

from tf_mtl.data import DataGenerator
from tf_mtl.features import SparseFeature
from tf_mtl.metrics import auc, evaluate, log_loss, mae, rmse
from tf_mtl.models import ESMM, SharedBottom


def pairwise_auc(labels, scores, weights):
    """The definition: weighted share of (positive, negative) pairs ordered right, ties half."""
    num = den = 0.0
    for i, j in itertools.product(range(len(labels)), repeat=2):
        if labels[i] == 1 and labels[j] == 0:
            w = weights[i] * weights[j]
            num += w * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0)
            den += w
    return num / den


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_the_pairwise_definition_with_ties_and_weights(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 40)
    scores = rng.integers(0, 6, 40) / 5.0  # many ties
    weights = rng.uniform(0.1, 2.0, 40)
    assert auc(labels, scores, weights) == pytest.approx(pairwise_auc(labels, scores, weights), abs=1e-12)
    assert auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores, np.ones(40)), abs=1e-12)


def test_auc_with_one_class_is_nan():
    assert np.isnan(auc([1, 1], [0.2, 0.3]))


def test_pointwise_metrics():
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)


def test_evaluate_scores_esmm_cvr_on_clicked_rows_only():
    features = [SparseFeature("item", 10, 2)]
    model = ESMM(features, ["classification", "classification"], None, [{}, {}])
    x = {"item": np.arange(8) % 10}
    y = {"ctr": np.array([1, 1, 1, 1, 0, 0, 0, 0], "float32"), "cvr": np.array([1, 0, 1, 0, 0, 0, 0, 0], "float32")}
    _, _, test = DataGenerator(x, y).generate_dataloader(x_test=x, y_test=y, x_val=x, y_val=y, batch_size=3)
    result = evaluate(model, test)
    scores = model.predict(x, verbose=0)
    assert result["cvr"]["auc"] == pytest.approx(auc(y["cvr"][:4], scores["cvr"][:4]))
    assert result["ctcvr"]["auc"] == pytest.approx(auc(y["ctr"] * y["cvr"], scores["ctcvr"]))
    assert result["ctr"]["log_loss"] == pytest.approx(log_loss(y["ctr"], scores["ctr"]), rel=1e-5)


def test_evaluate_scores_regression_with_rmse_and_mae_at_inference():
    features = [SparseFeature("item", 10, 2)]
    # Dropout in the regression tower: scores taken in training mode would be noisy.
    model = SharedBottom(features, ["regression", "classification"], {"dims": [4]}, [{"dims": [8], "dropout": 0.5}, {}])
    x = {"item": np.arange(40) % 10}
    y = {"task1": np.linspace(-1.0, 1.0, 40).astype("float32"), "task2": (np.arange(40) % 3 == 0).astype("float32")}
    _, _, test = DataGenerator(x, y).generate_dataloader(x_test=x, y_test=y, batch_size=16)
    result = evaluate(model, test)
    scores = model.predict(x, verbose=0)
    assert sorted(result["task1"]) == ["mae", "rmse"] and sorted(result["task2"]) == ["auc", "log_loss"]
    assert result["task1"]["rmse"] == pytest.approx(np.sqrt(np.mean((scores["task1"] - y["task1"]) ** 2)), rel=1e-5)
    assert result["task1"]["mae"] == pytest.approx(np.mean(np.abs(scores["task1"] - y["task1"])), rel=1e-5)
    assert result["task2"]["auc"] == pytest.approx(auc(y["task2"], scores["task2"]))
