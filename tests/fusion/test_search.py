import itertools

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_mtl.fusion import check_fusion, fuse, search_weights
from tf_mtl.metrics import auc, gauc

# Predictions are multiples of 1/8 and grid weights multiples of 1/4, so every fused sum is exact
# in any order of additions, and the search's scores must equal the loop's bit for bit.
PREDICTIONS = {
    "ctr": np.array([7, 3, 5, 1, 6, 2, 4, 0, 8, 3]) / 8,
    "cvr": np.array([2, 6, 1, 5, 3, 7, 0, 4, 2, 8]) / 8,
    "dwell": np.array([4, 4, 8, 2, 1, 5, 6, 3, 7, 0]) / 8,
}
LABELS = {
    "click": np.array([1, 0, 1, 0, 1, 0, 0, 1, 1, 0]),
    "buy": np.array([0, 1, 0, 0, 1, 1, 0, 0, 1, 0]),
    "user": np.array(["a", "a", "a", "b", "b", "b", "c", "c", "c", "c"]),
}


def brute_force(predictions, score_of, steps, fusion="sum"):
    """Every grid combination in a plain loop: ``[(weights, score)]`` in the order tried."""
    names = list(predictions)
    rows = []
    for ks in itertools.product(range(steps + 1), repeat=len(names)):
        if not any(ks):
            continue
        weights = [k / steps for k in ks]
        if fusion == "sum":
            fused = sum(w * predictions[name] for w, name in zip(weights, names))
        else:
            logs = sum(w * np.log(np.clip(predictions[name], 1e-7, 1.0)) for w, name in zip(weights, names))
            fused = np.exp(logs)
        rows.append((dict(zip(names, weights)), score_of(fused)))
    return rows


def assert_matches(result, rows):
    """``result`` holds ``rows``, sorted by score, and the best is the first maximum of the loop."""
    best_weights, best_score = max(rows, key=lambda row: row[1])
    assert result.best_weights == best_weights
    assert result.best_score == best_score
    in_order_tried = result.table.sort_index()
    assert in_order_tried[list(best_weights)].to_dict("records") == [weights for weights, _ in rows]
    assert in_order_tried["score"].tolist() == [score for _, score in rows]
    assert result.table["score"].is_monotonic_decreasing


def test_auc_grid_equals_brute_force():
    result = search_weights(PREDICTIONS, LABELS, "auc:click", grid_step=0.25)
    assert_matches(result, brute_force(PREDICTIONS, lambda s: auc(LABELS["click"], s), 4))
    assert len(result.table) == 5**3 - 1


def test_dict_metric_is_the_weighted_sum_of_aucs():
    metric = {"auc:click": 0.3, "auc:buy": 0.7}
    result = search_weights(PREDICTIONS, LABELS, metric, grid_step=0.25)
    rows = brute_force(PREDICTIONS, lambda s: 0.3 * auc(LABELS["click"], s) + 0.7 * auc(LABELS["buy"], s), 4)
    assert_matches(result, rows)


def test_gauc_metric_uses_the_group_column_of_labels():
    result = search_weights(PREDICTIONS, LABELS, "gauc:click:user", grid_step=0.5)
    assert_matches(result, brute_force(PREDICTIONS, lambda s: gauc(LABELS["click"], s, LABELS["user"]), 2))


def test_callable_metric_gets_the_fused_scores_and_the_labels():
    # The metric is the fused score of row 0, so the table holds sum_i w_i p_i0 and, for the
    # product, exp(sum_i w_i log p_i0), for every combination.
    predictions = {"ctr": np.array([0.3, 0.9]), "cvr": np.array([0.05, 0.5])}
    labels = {"click": np.array([1, 0])}

    def first_row(scores, received):
        assert received.keys() == {"click"} and received["click"].tolist() == [1, 0]
        return scores[0]

    for fusion, expected in [
        ("sum", lambda w: w["ctr"] * 0.3 + w["cvr"] * 0.05),
        ("product", lambda w: 0.3 ** w["ctr"] * 0.05 ** w["cvr"]),
    ]:
        table = search_weights(predictions, labels, first_row, grid_step=0.1, fusion=fusion).table
        for row in table.to_dict("records"):
            assert row["score"] == pytest.approx(expected(row), rel=1e-12)


def test_product_and_sum_choose_differently():
    # The third click has ctr 0: the product ranks it last as soon as ctr weighs anything.
    predictions = {"ctr": np.array([6, 8, 0, 6, 2, 4]) / 8, "cvr": np.array([8, 3, 6, 2, 3, 8]) / 8}
    labels = {"click": np.array([1, 1, 1, 0, 0, 0])}
    total = search_weights(predictions, labels, "auc:click", grid_step=0.5)
    # 0.5 ctr + cvr = [11, 7, 6 | 5, 4, 10] / 8: the clicks beat 3 + 2 + 2 of 9 pairs.
    assert total.as_fusion() == {"method": "sum", "weights": {"ctr": 0.5, "cvr": 1.0}}
    assert total.best_score == 7 / 9
    product = search_weights(predictions, labels, "auc:click", grid_step=0.5, fusion="product")
    # cvr alone, [8, 3, 6 | 2, 3, 8] / 8: 2.5 + 1.5 + 2 of 9 pairs (ties count one half).
    assert product.as_fusion() == {"method": "product", "weights": {"ctr": 0.0, "cvr": 0.5}}
    assert product.best_score == 6 / 9
    assert product.table.loc[4, "score"] == 5 / 9  # (0.5, 1.0), the sum's best
    assert_matches(product, brute_force(predictions, lambda s: auc(labels["click"], s), 2, "product"))


def test_ties_go_to_the_combination_tried_first():
    # Scaling every weight of a sum keeps its ranking: (0.5, 0.5) and (1, 1) tie, and so on.
    result = search_weights(PREDICTIONS, LABELS, "auc:click", grid_step=0.5)
    assert result.table.loc[3, "score"] == result.table.loc[7, "score"]  # (0, 0.5, 0.5) and (0, 1, 1)
    assert result.table.index[:2].tolist() == [8, 17]  # (0.5, 0, 0) and (1, 0, 0), AUC 0.8
    assert result.best_weights == {"ctr": 0.5, "cvr": 0.0, "dwell": 0.0} and result.best_score == 0.8
    for _, tied in result.table.groupby("score", sort=False):
        assert tied.index.is_monotonic_increasing


@pytest.mark.parametrize("grid_step, k", [(1.0, 2), (0.5, 1), (0.25, 3), (0.2, 4), (0.1, 3), (0.05, 2)])
def test_grid_size_and_points(grid_step, k):
    steps = round(1 / grid_step)
    predictions = np.random.default_rng(0).random((20, k))
    labels = {"click": np.arange(20) % 2}
    outputs = [f"o{i}" for i in range(k)]
    table = search_weights(predictions, labels, "auc:click", grid_step=grid_step, outputs=outputs).table
    assert len(table) == (steps + 1) ** k - 1
    weights = table[outputs].to_numpy()
    assert len({tuple(row) for row in weights}) == len(table)
    assert (weights.sum(axis=1) > 0).all()
    # Exact grid points: 0.3 is the float 0.3, not 3 * 0.1 = 0.30000000000000004.
    assert set(weights.ravel()) == {i / steps for i in range(0 if k > 1 else 1, steps + 1)}


def test_array_predictions_with_outputs_equal_the_dict():
    names = list(PREDICTIONS)
    array = np.stack([PREDICTIONS[name] for name in names], axis=1)
    from_array = search_weights(array, LABELS, "auc:buy", grid_step=0.5, outputs=names)
    from_dict = search_weights(PREDICTIONS, LABELS, "auc:buy", grid_step=0.5)
    pd.testing.assert_frame_equal(from_array.table, from_dict.table)
    # `outputs` of a dict picks and orders the outputs to fuse.
    picked = search_weights(PREDICTIONS, LABELS, "auc:buy", grid_step=0.5, outputs=["cvr", "ctr"])
    assert list(picked.table.columns) == ["cvr", "ctr", "score"]
    assert len(picked.table) == 8


def test_random_is_reproducible_and_in_bounds():
    run = lambda seed: search_weights(  # noqa: E731
        PREDICTIONS, LABELS, "auc:click", method="random", n_samples=50, seed=seed, fusion="product"
    )
    first, again, other = run(3), run(3), run(4)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.best_weights == again.best_weights and first.best_score == again.best_score
    assert not first.table.sort_index().equals(other.table.sort_index())
    weights = first.table.sort_index()[list(PREDICTIONS)].to_numpy()
    assert weights.shape == (50, 3) and (weights >= 0).all() and (weights < 1).all()
    np.testing.assert_array_equal(weights, np.random.default_rng(3).random((50, 3)))
    assert first.best_score == first.table["score"].max()
    assert first.as_fusion() == {"method": "product", "weights": first.best_weights}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "auc:clik"}, "unknown column 'clik'; did you mean 'click'"),
        ({"metric": "gauc:click:usr"}, "unknown column 'usr'; did you mean 'user'"),
        ({"metric": {"auc:click": 0.5, "auc:bought": 0.5}}, "unknown column 'bought'"),
        ({"metric": "ndcg:click"}, "metric names are 'auc:<label>' or 'gauc:<label>:<group>'. Received: 'ndcg:click'"),
        ({"metric": "gauc:click"}, "Received: 'gauc:click'"),
        ({"metric": {"auc:click": "high"}}, "finite weights. Received: 'auc:click': 'high'"),
        ({"metric": {}}, "non-empty dict"),
        ({"outputs": ["ctr", "cvt"]}, "unknown output 'cvt' in `outputs`; did you mean 'cvr'"),
        ({"grid_step": 0.3}, "must divide 1, e.g. 0.1, 0.05 or 0.25. Received: `grid_step=0.3`"),
        ({"grid_step": 0}, "must be a number in (0, 1]"),
        ({"grid_step": 0.01}, "1,030,300 combinations, more than 200,000; use a coarser `grid_step`, or method='random'"),
        ({"method": "random"}, "method='random' needs `n_samples`, a positive int. Received: `n_samples=None`"),
        ({"method": "random", "n_samples": 0}, "Received: `n_samples=0`"),
        ({"n_samples": 10}, "`n_samples` is for method='random'"),
        ({"method": "bayes"}, "`method` must be one of ['grid', 'random']. Received: `method='bayes'`"),
        ({"fusion": "max"}, "`fusion` must be one of ['sum', 'product']. Received: `fusion='max'`"),
        ({"labels": {"click": np.ones(3)}}, "must have shape (10,), one value per row of `predictions`"),
        ({"labels": {"click": np.ones(10)}}, "is nan for weights"),
        ({"predictions": np.zeros((10, 2))}, "with `outputs` naming its k columns. Received shape (10, 2) and `outputs=None`"),
        ({"predictions": {"ctr": np.zeros(10), "cvr": np.zeros(9)}}, "one shape (n,)"),
        ({"predictions": {"ctr": np.full(10, np.nan)}}, "nan or inf in outputs ['ctr']"),
        ({"predictions": {"score": np.zeros(10)}}, "none of them 'score'"),
    ],
)
def test_errors_say_what_was_received(kwargs, message):
    arguments = {"predictions": PREDICTIONS, "labels": LABELS, "metric": "auc:click", **kwargs}
    with pytest.raises(ValueError) as error:
        search_weights(**arguments)
    assert message in str(error.value)


@pytest.mark.large
def test_three_outputs_on_100k_rows():
    rng = np.random.default_rng(0)
    click = (rng.random(100_000) < 0.1).astype(float)
    predictions = {
        "ctr": np.clip(0.2 * click + 0.8 * rng.random(100_000), 0, 1),
        "cvr": rng.random(100_000),
        "dwell": np.clip(0.1 * click + 0.9 * rng.random(100_000), 0, 1),
    }
    result = search_weights(predictions, {"click": click}, "auc:click", fusion="product")
    assert len(result.table) == 1330
    fused = np.exp(sum(w * np.log(np.clip(predictions[name], 1e-7, 1)) for name, w in result.best_weights.items()))
    assert result.best_score == pytest.approx(auc(click, fused), abs=1e-12)
    assert result.best_weights["cvr"] == 0.0 and result.best_weights["ctr"] > result.best_weights["dwell"]


@pytest.mark.parametrize("fusion", ["sum", "product"])
def test_as_fusion_is_the_export_config_and_scores_the_same(fusion):
    result = search_weights(PREDICTIONS, LABELS, "auc:click", grid_step=0.25, fusion=fusion)
    method, names, weights = check_fusion(result.as_fusion(), list(PREDICTIONS))
    assert (method, weights) == (fusion, [result.best_weights[name] for name in names])
    served = fuse({name: tf.constant(values) for name, values in PREDICTIONS.items()}, names, weights, method)
    assert auc(LABELS["click"], served.numpy()) == result.best_score
