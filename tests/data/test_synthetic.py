"""Synthetic data: the MMoE paper's construction, and the click -> conversion funnel."""

import time

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.data import DataGenerator, click_conversion, mmoe_synthetic, mmoe_task_weights
from tf_mtl.features import features_from_json, features_to_json, tensor_specs


def _auc(labels, scores):
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties given their average rank."""
    order = np.argsort(scores, kind="mergesort")
    _, inverse, counts = np.unique(scores[order], return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2
    ranks = np.empty(len(scores))
    ranks[order] = average_rank[inverse]
    positive = labels == 1
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_auc_helper_on_a_known_case():
    assert _auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert _auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.5, 0.9])
def test_mmoe_weights_have_the_requested_cosine_and_norm(rho):
    w1, w2 = mmoe_task_weights(100, rho, scale=2.0, seed=3)
    np.testing.assert_allclose([np.linalg.norm(w1), np.linalg.norm(w2)], [2.0, 2.0])
    np.testing.assert_allclose(w1 @ w2, rho * 4.0, atol=1e-12)


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.5, 0.9])
def test_mmoe_linear_parts_correlate_as_requested(rho):
    data = mmoe_synthetic(20_000, rho, seed=1)
    w1, w2 = mmoe_task_weights(100, rho, seed=1)
    x = data.x["x"].astype(np.float64)
    assert abs(np.corrcoef(x @ w1, x @ w2)[0, 1] - rho) < 0.02


def test_mmoe_labels_follow_the_paper_formula():
    data = mmoe_synthetic(20_000, 1.0, seed=0)
    # With rho = 1 both tasks share one noise-free function; only eps ~ N(0, 0.01) differs.
    np.testing.assert_array_equal(data.oracle["task1"], data.oracle["task2"])
    assert np.corrcoef(data.y["task1"], data.y["task2"])[0, 1] > 0.99
    for task in ("task1", "task2"):
        noise = data.y[task] - data.oracle[task]
        assert abs(noise.std() - 0.1) < 0.003 and abs(noise.mean()) < 0.003
    # Without the sine terms the label is the linear part plus noise.
    linear = mmoe_synthetic(5_000, 0.3, n_sin=0, seed=2)
    w1, _ = mmoe_task_weights(100, 0.3, seed=2)
    np.testing.assert_allclose(linear.oracle["task1"], linear.x["x"].astype(np.float64) @ w1, atol=1e-5)


def test_mmoe_uncorrelated_tasks_have_uncorrelated_labels():
    data = mmoe_synthetic(20_000, 0.0, seed=0)
    assert abs(np.corrcoef(data.y["task1"], data.y["task2"])[0, 1]) < 0.05


def test_mmoe_spec_shapes_and_seeding():
    data = mmoe_synthetic(100, 0.5, input_dim=8, seed=4)
    assert data.task_names == ("task1", "task2") and data.task_types == ("regression", "regression")
    assert data.features[0].name == "x" and data.features[0].embed_dim == 8
    assert data.x["x"].shape == (100, 8) and data.x["x"].dtype == np.float32
    assert data.y["task1"].shape == (100,) and data.y["task1"].dtype == np.float32
    again, other = mmoe_synthetic(100, 0.5, input_dim=8, seed=4), mmoe_synthetic(100, 0.5, input_dim=8, seed=5)
    np.testing.assert_array_equal(again.y["task2"], data.y["task2"])
    assert not np.array_equal(other.x["x"], data.x["x"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"correlation": 1.5}, r"correlation must be a number in \[-1, 1\]. Received: correlation=1.5"),
        ({"input_dim": 1}, "input_dim must be an integer >= 2. Received: input_dim=1"),
        ({"n_samples": 0}, "n_samples must be an integer >= 1"),
        ({"scale": 0}, "scale must be a positive number"),
    ],
)
def test_mmoe_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mmoe_synthetic(**{"n_samples": 10, "correlation": 0.5, **kwargs})


@pytest.fixture(scope="module")
def funnel():
    start = time.perf_counter()
    data = click_conversion(100_000, seed=0)
    return data, time.perf_counter() - start


def test_click_conversion_is_fast(funnel):
    assert funnel[1] < 5.0


def test_click_conversion_label_rates(funnel):
    data, _ = funnel
    click, conversion = data.y["ctr"], data.y["cvr"]
    assert set(np.unique(click)) == {0.0, 1.0}
    assert 0.09 <= click.mean() <= 0.11
    assert 0.10 <= conversion[click == 1].mean() <= 0.25
    # Sample selection bias: no conversion without a click.
    assert conversion[click == 0].sum() == 0


def test_click_conversion_oracle_separates_the_labels(funnel):
    data, _ = funnel
    click = data.y["ctr"] == 1
    p_buy = data.oracle["cvr"] / data.oracle["ctr"]
    assert _auc(data.y["ctr"], data.oracle["ctr"]) >= 0.75
    assert _auc(data.y["cvr"][click], p_buy[click]) >= 0.70
    # The oracle is calibrated: its mean matches the observed rates.
    assert abs(data.oracle["ctr"].mean() - data.y["ctr"].mean()) < 0.005


def test_click_conversion_arrays_match_the_spec(funnel):
    data, _ = funnel
    assert data.task_names == ("ctr", "cvr") and data.task_types == ("classification", "classification")
    assert features_from_json(features_to_json(data.features)) == data.features
    specs = tensor_specs(data.features)
    for name, spec in specs.items():
        assert spec.is_compatible_with(tf.constant(data.x[name][:5])), name
    by_name = {f.name: f for f in data.features}
    for name in ("user_id", "item_id", "user_city"):
        assert 0 <= data.x[name].min() and data.x[name].max() < by_name[name].vocab_size
    assert set(data.x["item_category"]) <= set(by_name["item_category"].vocabulary)
    assert {f.name for f in data.features} == set(data.x)


def test_clicked_categories_are_distinct_known_and_padded_at_the_end(funnel):
    data, _ = funnel
    history = data.x["clicked_categories"][:2000]
    vocabulary = set(data.features[4].vocabulary)
    lengths = (history != "").sum(axis=1)
    assert history.shape == (2000, 10) and lengths.min() == 0 and lengths.max() == 10
    for row, length in zip(history, lengths):
        assert set(row[:length]) <= vocabulary and len(set(row[:length])) == length
        assert (row[length:] == "").all()


def test_click_conversion_is_seeded_and_feeds_a_data_generator():
    a, b, c = (click_conversion(500, seed=s) for s in (1, 1, 2))
    for name in a.x:
        np.testing.assert_array_equal(a.x[name], b.x[name])
    np.testing.assert_array_equal(a.y["cvr"], b.y["cvr"])
    assert not np.array_equal(a.x["user_id"], c.x["user_id"])
    train, _, _ = DataGenerator(a.x, a.y).generate_dataloader(split_ratio=[0.8, 0.1], batch_size=128)
    x, y = next(iter(train))
    assert x["clicked_categories"].dtype == tf.string and x["clicked_categories"].shape == (128, 10)
    assert y["ctr"].shape == (128,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"click_rate": 0.0}, r"click_rate must be a number in \(0, 1\). Received: click_rate=0.0"),
        ({"conversion_rate": 1}, r"conversion_rate must be a number in \(0, 1\)"),
        ({"max_len": 0}, "max_len must be an integer >= 1"),
    ],
)
def test_click_conversion_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        click_conversion(10, **kwargs)
