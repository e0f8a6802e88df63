"""Offline metrics per output, with each model's metric terms (e.g. ESMM's CVR on clicked rows).

Classification: AUC (ties get the average rank) and log loss. Regression: RMSE and MAE.
"""

import numpy as np
import tensorflow as tf

from tf_mtl.losses import EPSILON


def auc(labels, scores, weights=None):
    """Area under the ROC curve of binary ``labels`` for ``scores``; ``nan`` if one class is absent.

    Equals the probability that a random positive scores above a random negative (ties count
    one half), with optional per-row weights.
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    weights = np.ones_like(labels) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    order = np.argsort(scores, kind="mergesort")
    scores, labels, weights = scores[order], labels[order], weights[order]
    pos, neg = weights * labels, weights * (1.0 - labels)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    # Group tied scores: a positive beats the negatives below its group and half of its own group's.
    _, starts = np.unique(scores, return_index=True)
    group_pos = np.add.reduceat(pos, starts)
    group_neg = np.add.reduceat(neg, starts)
    neg_below = np.cumsum(group_neg) - group_neg
    return float(np.sum(group_pos * (neg_below + 0.5 * group_neg)) / (total_pos * total_neg))


def log_loss(labels, probabilities, weights=None):
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), EPSILON, 1 - EPSILON)
    y = np.asarray(labels, dtype=np.float64).ravel()
    return float(np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=weights))


def rmse(labels, predictions, weights=None):
    err = np.asarray(predictions, dtype=np.float64).ravel() - np.asarray(labels, dtype=np.float64).ravel()
    return float(np.sqrt(np.average(err**2, weights=weights)))


def mae(labels, predictions, weights=None):
    err = np.asarray(predictions, dtype=np.float64).ravel() - np.asarray(labels, dtype=np.float64).ravel()
    return float(np.average(np.abs(err), weights=weights))


METRICS = {"classification": {"auc": auc, "log_loss": log_loss}, "regression": {"rmse": rmse, "mae": mae}}


def predict_with_labels(model, dataset):
    """Runs ``model`` over a ``tf.data`` dataset of ``(x, y)``; returns numpy outputs and labels
    as dicts (labels keyed by task name)."""
    forward = tf.function(lambda x: model(x, training=False))
    outputs, labels = {}, {}
    for batch in dataset:
        x, y = batch[0], batch[1]
        for name, value in forward(x).items():
            outputs.setdefault(name, []).append(np.asarray(value).reshape(-1))
        for name, value in model.label_dict(y).items():
            labels.setdefault(name, []).append(value.numpy())
    if not outputs:
        raise ValueError("evaluate: the dataset is empty.")
    return {k: np.concatenate(v) for k, v in outputs.items()}, {k: np.concatenate(v) for k, v in labels.items()}


def evaluate(model, dataset):
    """Metrics per output: ``{output_name: {"auc": ..., "log_loss": ...}}`` (or RMSE/MAE for
    regression), on the rows each output's metric term selects (ESMM's CVR: clicked rows)."""
    outputs, labels = predict_with_labels(model, dataset)
    terms = model.metric_terms({k: tf.constant(v) for k, v in labels.items()})
    results = {}
    for name, (task_type, label, mask) in terms.items():
        label, scores = np.asarray(label), outputs[name]
        if mask is not None:
            keep = np.asarray(mask) > 0
            label, scores = label[keep], scores[keep]
        results[name] = {
            metric: fn(label, scores) if label.size else float("nan") for metric, fn in METRICS[task_type].items()
        }
    return results


__all__ = ["METRICS", "auc", "evaluate", "log_loss", "mae", "predict_with_labels", "rmse"]
