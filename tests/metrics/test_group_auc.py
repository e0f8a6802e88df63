import numpy as np
import pytest

from tf_mtl.metrics import auc, gauc

# Four users. "a": its positive beats one of two negatives, AUC 1/2 over 3 impressions.
# "b": pairs (.7,.3) (.7,.1) (.3,.1) right and (.3,.3) tied, AUC 3.5/4 over 4 impressions.
# "c" (positives only) and "d" (a negative only) have no AUC and are skipped.
USERS = np.array(["a", "a", "a", "b", "b", "b", "b", "c", "c", "d"])
LABELS = np.array([1, 0, 0, 1, 1, 0, 0, 1, 1, 0])
SCORES = np.array([0.8, 0.5, 0.9, 0.7, 0.3, 0.3, 0.1, 0.2, 0.6, 0.4])


def loop_gauc(labels, scores, groups, weights=None):
    """The slow definition: ``auc`` on each group's rows, averaged by the group's weight."""
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    total = weighted = 0.0
    for group in np.unique(groups):
        rows = groups == group
        value = auc(labels[rows], scores[rows], weights[rows])
        if not np.isnan(value):
            total += weights[rows].sum()
            weighted += weights[rows].sum() * value
    return weighted / total if total else float("nan")


def test_gauc_by_hand():
    assert gauc(LABELS, SCORES, USERS) == pytest.approx((3 * 0.5 + 4 * 0.875) / 7, abs=1e-15)


def test_gauc_by_hand_with_weights():
    # "a" weights 2,1,1: 2 of 2*2 weighted pairs right, AUC 1/2, group weight 4.
    # "b" weights 1,3,1,1: 1 + 1 + 3*1/2 + 3 = 6.5 of 4*2 pairs, AUC 0.8125, group weight 6.
    weights = np.array([2, 1, 1, 1, 3, 1, 1, 5, 5, 5], dtype=float)
    assert gauc(LABELS, SCORES, USERS, weights) == pytest.approx((4 * 0.5 + 6 * 0.8125) / 10, abs=1e-15)


def test_gauc_does_not_depend_on_row_order_or_group_id_type():
    order = np.random.default_rng(0).permutation(len(LABELS))
    ids = np.unique(USERS, return_inverse=True)[1]
    expected = gauc(LABELS, SCORES, USERS)
    assert gauc(LABELS[order], SCORES[order], USERS[order]) == pytest.approx(expected, abs=1e-15)
    assert gauc(LABELS, SCORES, ids) == pytest.approx(expected, abs=1e-15)
    assert gauc(list(LABELS), list(SCORES), USERS.astype(object)) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("weighted", [False, True])
def test_gauc_matches_a_loop_over_groups_with_ties(seed, weighted):
    rng = np.random.default_rng(seed)
    n = 2_000
    groups = rng.integers(0, 150, n)  # about 13 rows a group: some have one class, some one row
    labels = (rng.random(n) < 0.2).astype(int)
    scores = rng.integers(0, 8, n) / 7.0  # many ties within groups
    weights = rng.uniform(0.0, 3.0, n) if weighted else None
    assert gauc(labels, scores, groups, weights) == pytest.approx(loop_gauc(labels, scores, groups, weights), abs=1e-12)


def test_gauc_matches_the_loop_on_a_million_rows():
    rng = np.random.default_rng(1)
    n = 1_000_000
    groups = rng.integers(0, 100, n)
    labels = (rng.random(n) < 0.05).astype(int)
    scores = np.round(rng.random(n), 3)
    weights = rng.uniform(0.5, 1.5, n)
    assert gauc(labels, scores, groups) == pytest.approx(loop_gauc(labels, scores, groups), abs=1e-12)
    assert gauc(labels, scores, groups, weights) == pytest.approx(loop_gauc(labels, scores, groups, weights), abs=1e-10)


def test_gauc_on_a_million_rows_and_half_a_million_groups():
    rng = np.random.default_rng(2)
    n = 1_000_000
    groups = rng.integers(0, 500_000, n)
    labels = rng.integers(0, 2, n)
    assert gauc(labels, labels + rng.random(n) * 0.5, groups) == 1.0
    assert gauc(labels, -labels, groups) == 0.0


def test_gauc_of_one_group_is_auc():
    rng = np.random.default_rng(3)
    labels, scores, weights = rng.integers(0, 2, 50), rng.integers(0, 5, 50) / 4, rng.uniform(0.1, 2.0, 50)
    assert gauc(labels, scores, np.zeros(50), weights) == pytest.approx(auc(labels, scores, weights), abs=1e-15)


def test_gauc_is_nan_when_no_group_has_both_classes():
    assert np.isnan(gauc([1, 1, 0], [0.2, 0.3, 0.4], ["a", "a", "b"]))
    # A group whose negatives all weigh zero has no negative either.
    assert np.isnan(gauc([1, 0], [0.2, 0.3], ["a", "a"], weights=[1.0, 0.0]))


@pytest.mark.parametrize(
    "args, message",
    [
        (([1, 0, 1], [0.1, 0.2], ["a", "a", "b"]), "Received lengths: labels=3, scores=2, groups=3."),
        (([1, 0], [0.1, 0.2], ["a"]), "Received lengths: labels=2, scores=2, groups=1."),
        (([1, 0], [0.1, 0.2], ["a", "a"], [1.0]), "Received lengths: labels=2, scores=2, groups=2, weights=1."),
        (([], [], []), "gauc: needs at least one row. Received lengths: labels=0, scores=0, groups=0."),
        (([1, 2], [0.1, 0.2], ["a", "a"]), "`labels` must be 0 or 1. Received 1 other values, e.g. [2.0]."),
        (([1, 0], [0.1, np.nan], ["a", "a"]), "`scores` must not be nan. Received 1 nan scores."),
        (([1, 0], [0.1, 0.2], [1.0, np.nan]), "`groups` must not be nan."),
        (([1, 0], [0.1, 0.2], ["a", "a"], [1.0, -1.0]), "`weights` must be finite and non-negative. Received e.g."),
        (([1, 0], [0.1, 0.2], np.array(["a", 3], dtype=object)), "`groups` must be ids of one type that sort"),
    ],
)
def test_gauc_errors_say_what_was_received(args, message):
    with pytest.raises(ValueError) as info:
        gauc(*args)
    assert message in str(info.value)
