"""Offline evaluation of a model: metrics per output, on the rows each output's metric term selects."""

import numpy as np
import tensorflow as tf

from tf_mtl.metrics.classification import auc, log_loss
from tf_mtl.metrics.regression import mae, rmse

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
