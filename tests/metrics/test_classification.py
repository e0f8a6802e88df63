import itertools

import numpy as np
import pytest

from tf_mtl.metrics import auc, log_loss


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


def test_auc_with_one_class_or_no_rows_is_nan():
    assert np.isnan(auc([1, 1], [0.2, 0.3]))
    assert np.isnan(auc([], []))


def test_log_loss():
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: auc([1, 0, 1], [0.1, 0.2]),
            "auc: `labels`, `scores`, `weights` must have the same length. "
            "Received lengths: labels=3, scores=2, weights=3.",
        ),
        (lambda: auc([1, 0], [0.1, 0.2], [1.0]), "Received lengths: labels=2, scores=2, weights=1."),
        (lambda: log_loss([1, 0, 1], [0.5]), "log_loss: `labels`, `probabilities` must have the same length"),
    ],
)
def test_mismatched_lengths_are_named(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
