import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.data import DataGenerator
from tf_mtl.features import SparseFeature
from tf_mtl.metrics import auc, evaluate, log_loss
from tf_mtl.metrics.evaluation import for_any_batch_size
from tf_mtl.models import ESMM, SharedBottom


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


def test_for_any_batch_size_traces_once_whatever_the_batch_sizes():
    traces = []

    @tf.function(reduce_retracing=True)
    def double(x, y):
        traces.append(1)
        return {"x": x * 2, "y": y["a"] + 1}

    call = for_any_batch_size(double)
    for rows in (4, 1, 7):
        out = call(tf.ones([rows, 3]), {"a": tf.zeros([rows])})
        assert out["x"].shape == (rows, 3) and out["y"].shape == (rows,)
    assert len(traces) == 1
