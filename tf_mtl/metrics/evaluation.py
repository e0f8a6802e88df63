"""Offline evaluation of a model: metrics per output, on the rows each output's metric term selects."""

import numpy as np
import tensorflow as tf

from tf_mtl.metrics.classification import auc, log_loss
from tf_mtl.metrics.group_auc import gauc
from tf_mtl.metrics.regression import mae, rmse

METRICS = {"classification": {"auc": auc, "log_loss": log_loss}, "regression": {"rmse": rmse, "mae": mae}}


def _any_batch(value):
    if isinstance(value, tf.Tensor) and value.shape.rank:
        return tf.TensorSpec([None] + value.shape[1:], value.dtype)
    return value


def for_any_batch_size(function):
    """``function``, a ``tf.function``, traced on its first call for inputs of any batch size.

    An epoch's last batch is usually smaller than the others; traced for the first batch's
    size only, the function would be traced again for it, which takes seconds for a model.
    """
    traced = []

    def call(*args):
        if not traced:
            function.get_concrete_function(*tf.nest.map_structure(_any_batch, args))
            traced.append(True)
        return function(*args)

    return call


def inference_function(model):
    """``model(x, training=False)`` as a ``tf.function`` for any batch size, made once per
    model (each new one would trace the model again)."""
    forward = getattr(model, "_tf_mtl_inference", None)
    if forward is None:
        forward = for_any_batch_size(tf.function(lambda x: model(x, training=False), reduce_retracing=True))
        # Kept off Keras' attribute tracking: a function, not part of the model.
        object.__setattr__(model, "_tf_mtl_inference", forward)
    return forward


def _batches(dataset):
    for batch in dataset:
        yield batch if isinstance(batch, (tuple, list)) else (batch, None)


def predict_with_labels(model, dataset, columns=()):
    """Runs ``model`` over a ``tf.data`` dataset of ``(x, y)`` batches.

    Returns ``(outputs, labels, values)``: numpy arrays keyed by output name, by task name (plus
    any other column of dict labels, e.g. a loss mask), and by each feature named in
    ``columns`` (e.g. the user id for GAUC).
    """
    forward = inference_function(model)
    outputs, labels, values = {}, {}, {}
    for x, y in _batches(dataset):
        if y is None:
            raise ValueError("evaluate: the dataset yields features only; it must yield (features, labels) pairs.")
        for name, value in forward(x).items():
            outputs.setdefault(name, []).append(np.asarray(value).reshape(-1))
        extra = {k: v for k, v in y.items() if k not in model.task_names} if isinstance(y, dict) else {}
        for name, value in {**model.label_dict(y), **extra}.items():
            labels.setdefault(name, []).append(np.asarray(value).reshape(-1))
        for name in columns:
            if name not in x:
                raise KeyError(f"evaluate: group_by feature {name!r} is not in the dataset's features {sorted(x)}.")
            values.setdefault(name, []).append(np.asarray(x[name]).reshape(-1))
    if not outputs:
        raise ValueError("evaluate: the dataset is empty.")
    return tuple({k: np.concatenate(v) for k, v in d.items()} for d in (outputs, labels, values))


def score(model, outputs, labels, groups=None):
    """Metrics per output from predictions and labels (numpy dicts, as ``predict_with_labels``
    returns them); ``groups`` (one id per row) adds GAUC to classification outputs."""
    terms = model.metric_terms({k: tf.constant(v) for k, v in labels.items()})
    results = {}
    for name, (task_type, label, mask) in terms.items():
        label, scores, rows = np.asarray(label), outputs[name], groups
        if mask is not None:
            keep = np.asarray(mask) > 0
            label, scores = label[keep], scores[keep]
            rows = None if rows is None else rows[keep]
        results[name] = {
            metric: fn(label, scores) if label.size else float("nan") for metric, fn in METRICS[task_type].items()
        }
        if rows is not None and task_type == "classification":
            results[name]["gauc"] = gauc(label, scores, rows) if label.size else float("nan")
    return results


def flat_figures(results):
    """``{"ctr/auc": ...}`` from ``{"ctr": {"auc": ...}}`` (``score``'s and ``evaluate``'s form): the
    names early stopping, tuning objectives and blessing thresholds use."""
    return {f"{output}/{metric}": value for output, metrics in results.items() for metric, value in metrics.items()}


def evaluate(model, dataset, group_by=None):
    """Metrics per output: ``{output_name: {"auc": ..., "log_loss": ...}}`` (or RMSE/MAE for
    regression), on the rows each output's metric term selects (ESMM's CVR: clicked rows).

    Args:
        group_by: a feature name (e.g. the user id): adds ``"gauc"``, the AUC per group
            weighted by the group's impressions, to classification outputs.
    """
    outputs, labels, values = predict_with_labels(model, dataset, () if group_by is None else (group_by,))
    return score(model, outputs, labels, None if group_by is None else values[group_by])
