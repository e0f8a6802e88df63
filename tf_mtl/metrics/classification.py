"""Binary classification metrics: AUC (ties get the average rank) and log loss."""

import numpy as np

from tf_mtl.losses import EPSILON
from tf_mtl.metrics._inputs import check_lengths


def auc(labels, scores, weights=None):
    """Area under the ROC curve of binary ``labels`` for ``scores``; ``nan`` if one class is absent.

    Equals the probability that a random positive scores above a random negative (ties count
    one half), with optional per-row weights.
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    weights = np.ones_like(labels) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    check_lengths("auc", labels=labels, scores=scores, weights=weights)
    if labels.size == 0:
        return float("nan")
    # Tied scores are grouped below, so the sort need not be stable.
    order = np.argsort(scores)
    pos, neg = weights * labels, weights * (1.0 - labels)
    value, _, _ = sorted_group_auc(scores[order], pos[order], neg[order], np.zeros(1, dtype=np.int64))
    return float(value[0])


def sorted_group_auc(scores, pos, neg, group_starts):
    """The AUC of each group of rows, for rows sorted by group and, within a group, by score.

    The one place of the AUC formula: ``auc`` calls it with a single group, ``gauc`` with one
    group per user.

    Args:
        scores: float array `(n,)`, ascending within each group.
        pos: float array `(n,)`, each row's weight times its label.
        neg: float array `(n,)`, each row's weight times one minus its label.
        group_starts: int array `(g,)`, ascending, the index of each group's first row
            (the first is 0); `n >= 1`.

    Returns:
        `(auc, total_pos, total_neg)`, float arrays `(g,)`; `auc` is ``nan`` for a group
        without positive or without negative weight.
    """
    new_group = np.zeros(scores.size, dtype=bool)
    new_group[group_starts] = True
    new_block = new_group.copy()
    new_block[1:] |= scores[1:] != scores[:-1]
    # A tie block is a run of equal scores inside one group: a positive beats the negatives
    # below its block and half of its own block's.
    block_starts = np.flatnonzero(new_block)
    block_pos = np.add.reduceat(pos, block_starts)
    block_neg = np.add.reduceat(neg, block_starts)
    group_first_block = np.flatnonzero(new_group[block_starts])
    blocks_per_group = np.diff(np.append(group_first_block, block_starts.size))
    neg_before = np.cumsum(block_neg) - block_neg
    neg_below = neg_before - np.repeat(neg_before[group_first_block], blocks_per_group)
    pairs = np.add.reduceat(block_pos * (neg_below + 0.5 * block_neg), group_first_block)
    total_pos = np.add.reduceat(block_pos, group_first_block)
    total_neg = np.add.reduceat(block_neg, group_first_block)
    both = (total_pos > 0) & (total_neg > 0)
    value = np.full(group_starts.size, np.nan)
    value[both] = pairs[both] / (total_pos[both] * total_neg[both])
    return value, total_pos, total_neg


def log_loss(labels, probabilities, weights=None):
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), EPSILON, 1 - EPSILON)
    y = np.asarray(labels, dtype=np.float64).ravel()
    check_lengths("log_loss", labels=y, probabilities=p, weights=None if weights is None else np.ravel(weights))
    return float(np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=weights))
