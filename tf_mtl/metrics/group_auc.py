"""Group AUC: the AUC within each group (e.g. each user), averaged over groups."""

import numpy as np

from tf_mtl.metrics._inputs import check_lengths
from tf_mtl.metrics.classification import sorted_group_auc


def gauc(labels, scores, groups, weights=None):
    """Group AUC (Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD 2018).

    GAUC = sum_g w_g * AUC_g / sum_g w_g, where AUC_g is ``auc`` on group g's rows (ties count
    one half, rows weighted by ``weights``) and w_g is the group's impression count, or the sum
    of its row weights when ``weights`` is given. A group with only positives or only negatives
    has no AUC and is left out of both sums. The rows are sorted once, by group then score, so
    a million rows take well under a second.

    Args:
        labels: array-like `(n,)` of 0/1.
        scores: array-like `(n,)` of floats (probabilities or logits), no ``nan``.
        groups: array-like `(n,)` of group ids (ints or strings, e.g. user ids).
        weights: optional array-like `(n,)` of non-negative row weights.

    Returns:
        A float; ``nan`` when no group has both classes.

    Example:
        >>> gauc([1, 0, 1, 0], [0.9, 0.1, 0.2, 0.8], ["u1", "u1", "u2", "u2"])
        0.5
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    groups = np.asarray(groups).ravel()
    weights = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    check_lengths("gauc", allow_empty=False, labels=labels, scores=scores, groups=groups, weights=weights)
    _check_values(labels, scores, groups, weights)
    try:
        order = np.lexsort((scores, groups))
    except TypeError as err:
        raise ValueError(
            f"gauc: `groups` must be ids of one type that sort (ints or strings). Received dtype "
            f"{groups.dtype} with values such as {list(dict.fromkeys(groups.tolist()))[:5]}."
        ) from err
    groups, scores, labels = groups[order], scores[order], labels[order]
    weights = np.ones_like(labels) if weights is None else weights[order]
    group_starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    value, _, _ = sorted_group_auc(scores, weights * labels, weights * (1.0 - labels), group_starts)
    group_weight = np.add.reduceat(weights, group_starts)
    both = ~np.isnan(value)
    if not both.any():
        return float("nan")
    return float(np.sum(group_weight[both] * value[both]) / np.sum(group_weight[both]))


def _check_values(labels, scores, groups, weights):
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        examples = np.unique(labels[bad])[:5].tolist()
        raise ValueError(f"gauc: `labels` must be 0 or 1. Received {bad.sum()} other values, e.g. {examples}.")
    if np.isnan(scores).any():
        raise ValueError(f"gauc: `scores` must not be nan. Received {np.isnan(scores).sum()} nan scores.")
    if groups.dtype.kind == "f" and np.isnan(groups).any():
        raise ValueError(f"gauc: `groups` must not be nan. Received {np.isnan(groups).sum()} nan group ids.")
    if weights is not None and not (np.isfinite(weights) & (weights >= 0)).all():
        bad_weights = weights[~(np.isfinite(weights) & (weights >= 0))]
        raise ValueError(f"gauc: `weights` must be finite and non-negative. Received e.g. {bad_weights[:5].tolist()}.")
